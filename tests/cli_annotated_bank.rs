//! An annotator-labelled bank of training prompts as training data, end to end: the evidence
//! head trained on it (deterministic for its config) and used as a judge by `eval judge`, DPO
//! pairs taken from it; a bank labelled by the evaluation detector is refused by both.

mod common;

use common::{evalcot, path, text};
use std::process::Output;

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

#[test]
fn heads_and_dpo_pairs_learn_from_annotator_labels_never_the_evaluation_detector_s() {
    let dir = tempfile::tempdir().unwrap();
    let prompts = dir.path().join("train.jsonl");
    ok(evalcot(&[
        "world",
        "prompts",
        "--seed",
        "21",
        "--split",
        "train",
        "--per-tag",
        "3",
        "--out",
        path(&prompts),
    ]));
    let bank = |out: &std::path::Path, detector: Option<&str>| {
        let mut args = vec![
            "bank",
            path(&prompts),
            "--n",
            "4",
            "--images-per-prompt",
            "1",
            "--steps",
            "4",
            "--out",
            path(out),
        ];
        if let Some(d) = detector {
            args.extend_from_slice(&["--detector", d]);
        }
        ok(evalcot(&args));
    };
    let labelled = dir.path().join("annotated");
    bank(&labelled, Some("models/weights/annotator"));
    let config = |bank: &std::path::Path| {
        let c = dir.path().join(format!(
            "{}.yaml",
            bank.file_name().unwrap().to_string_lossy()
        ));
        std::fs::write(
            &c,
            format!(
                "name: test-head\nbank: {}\nannotator: models/weights/annotator\nseed: 3\nval_share: 0.3\niterations: 60\nlr: 0.05\nrank_weight: 1.0\ncalibration_weight: 1.0\ntag_l2: 0.05\n",
                bank.display()
            ),
        )
        .unwrap();
        c
    };
    let cfg = config(&labelled);
    let heads = [dir.path().join("head-a"), dir.path().join("head-b")];
    for h in &heads {
        ok(evalcot(&[
            "train",
            "evidence-head",
            "--config",
            path(&cfg),
            "--out",
            path(h),
        ]));
    }
    let weights = |h: &std::path::Path| {
        let mut v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(h.join("head.json")).unwrap()).unwrap();
        v.as_object_mut().unwrap().remove("made_by");
        v
    };
    assert_eq!(weights(&heads[0]), weights(&heads[1]));
    assert_eq!(weights(&heads[0])["detector"], "models/weights/annotator");
    let report = std::fs::read_to_string(heads[0].join("report.md")).unwrap();
    assert!(
        report.contains("within-image AUROC") && report.contains("evidence product"),
        "{report}"
    );
    // The head judges a bank beside the untrained evidence judge.
    let md = dir.path().join("judges.md");
    ok(evalcot(&[
        "eval",
        "judge",
        "--bank",
        path(&labelled),
        "--judges",
        &format!("evidence,evidence-fine-tuned,{}", path(&heads[0])),
        "--ablations",
        "--resamples",
        "20",
        "--out",
        path(&md),
    ]));
    let md = std::fs::read_to_string(&md).unwrap();
    assert!(md.contains(&format!("| {} | ", path(&heads[0]))), "{md}");
    // Labels by the evaluation detector are not training data for a judge.
    let graded = dir.path().join("graded");
    bank(&graded, None);
    let o = evalcot(&[
        "train",
        "evidence-head",
        "--config",
        path(&config(&graded)),
        "--out",
        path(&dir.path().join("refused")),
    ]);
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("bank.json") && err.contains("annotator"),
        "{err}"
    );

    // DPO pairs from the labelled bank: one right and one wrong candidate of each prompt that
    // has both, and no sampling.
    let dpo = |bank: &std::path::Path, name: &str| {
        let c = dir.path().join(format!("{name}.yaml"));
        std::fs::write(
            &c,
            format!(
                "name: {name}\nseed: 3\ninit: base\npairs:\n  judge: bank\n  bank: {}\n  prompts: 15\n  samples_per_prompt: 4\n  seed: 4\nepochs: 1\nbatch_size: 2\nlr: 0.0001\nwarmup_ratio: 0.0\nweight_decay: 0.01\nbeta: 0.1\ncheckpoint_every: 100\nlog_every: 1\n",
                bank.display()
            ),
        )
        .unwrap();
        evalcot(&[
            "train",
            "dpo",
            "--config",
            path(&c),
            "--out",
            path(&dir.path().join(name)),
        ])
    };
    let o = ok(dpo(&labelled, "dpo-annotated"));
    let err = text(&o.stderr);
    assert!(err.contains("from 15 prompts"), "{err}");
    let stats: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("dpo-annotated").join("pairs.json")).unwrap(),
    )
    .unwrap();
    let s = &stats[1];
    assert_eq!(
        s["pairs"].as_u64().unwrap()
            + s["all_yes"].as_u64().unwrap()
            + s["all_no"].as_u64().unwrap(),
        15,
        "{stats}"
    );
    assert_eq!(stats[0]["bank"], path(&labelled));
    let pairs =
        std::fs::read_to_string(dir.path().join("dpo-annotated").join("pairs.jsonl")).unwrap();
    for line in pairs.lines() {
        let p: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            (p["p_chosen"].as_f64(), p["p_rejected"].as_f64()),
            (Some(1.0), Some(0.0))
        );
    }
    // The zero-shot head: the world's scenes through the tokenizer, no generator sample.
    let zero = dir.path().join("zero.yaml");
    std::fs::write(
        &zero,
        "name: zero\nworld:\n  prompts: 8\n  per_prompt: 2\n  seed: 5\n  held_out_split: 21\n  tokenizer: models/weights/tokenizer-canonical-8k\nannotator: models/weights/annotator\nseed: 3\nval_share: 0.25\niterations: 30\nlr: 0.05\nrank_weight: 1.0\ncalibration_weight: 1.0\ntag_l2: 0.05\n",
    )
    .unwrap();
    let zero_out = dir.path().join("head-zero");
    ok(evalcot(&[
        "train",
        "evidence-head",
        "--config",
        path(&zero),
        "--out",
        path(&zero_out),
    ]));
    let report = std::fs::read_to_string(zero_out.join("report.md")).unwrap();
    assert!(report.contains("no generator sample"), "{report}");
    let o = dpo(&graded, "dpo-graded");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("evaluation detector"),
        "{}",
        text(&o.stderr)
    );
}
