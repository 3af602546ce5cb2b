//! The trained evidence judge end to end: an annotator-labelled bank of training prompts, a
//! head trained on it (deterministic for its config), the head as a judge of `eval judge`, and
//! a bank labelled by the evaluation detector refused as training data.

mod common;

use common::{evalcot, path, text};
use std::process::Output;

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

#[test]
fn a_head_trains_on_annotator_labels_and_judges_a_bank() {
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
        &format!("evidence,{}", path(&heads[0])),
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
}
