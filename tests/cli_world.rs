//! End-to-end tests of `evalcot world …` through the real binary.

mod common;
use common::*;

#[test]
fn ground_truth_suite_scores_one_on_every_tag() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gt");
    world_suite_one_image(&out, 7);
    assert!(out.join("00552/samples/0000.png").exists());
    let dets = out.join("detections.jsonl");
    let o = evalcot(&[
        "score",
        "--detections",
        dets.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let summary = text(&o.stdout);
    assert!(
        summary.contains("Total images: 553\nTotal prompts: 553\n"),
        "{summary}"
    );
    for tag in [
        "single_object",
        "two_object",
        "counting",
        "colors",
        "position",
        "color_attr",
    ] {
        assert!(
            summary
                .lines()
                .any(|l| l.starts_with(tag) && l.contains("= 100.00%")),
            "{tag} not perfect in\n{summary}"
        );
    }
    assert!(summary.ends_with("Overall score (avg. over tasks): 1.00000\n"));
}

#[test]
fn render_is_deterministic_and_unknown_words_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.png");
    let b = dir.path().join("b.png");
    for p in [&a, &b] {
        let o = evalcot(&[
            "world",
            "render",
            "--prompt",
            "a photo of three clocks",
            "--seed",
            "3",
            "--out",
            p.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let o = evalcot(&[
        "world",
        "render",
        "--prompt",
        "a photo of a red wolf",
        "--out",
        a.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("unknown word \"wolf\""),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn datasets_do_not_depend_on_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let mut annotations = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("d{threads}"));
        let o = evalcot_with(
            &[
                "world",
                "dataset",
                "--n",
                "40",
                "--seed",
                "5",
                "--kind",
                "detector",
                "--out",
                out.to_str().unwrap(),
            ],
            Some(threads),
        );
        assert!(o.status.success(), "{}", text(&o.stderr));
        annotations.push(std::fs::read(out.join("annotations.jsonl")).unwrap());
        assert!(out.join("images/0000039.png").exists());
    }
    assert_eq!(annotations[0], annotations[1]);
    assert_eq!(text(&annotations[0]).lines().count(), 40);
}

#[test]
fn development_prompts_are_held_out_and_run_as_a_suite() {
    let dir = tempfile::tempdir().unwrap();
    let (val, train) = (dir.path().join("val.jsonl"), dir.path().join("train.jsonl"));
    for (split, path) in [("val", &val), ("train", &train)] {
        let o = evalcot(&[
            "world",
            "prompts",
            "--seed",
            "21",
            "--split",
            split,
            "--per-tag",
            "3",
            "--out",
            path.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let read = |p: &std::path::Path| -> Vec<serde_json::Value> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (v, t) = (read(&val), read(&train));
    let official = std::fs::read_to_string("data/geneval/evaluation_metadata.jsonl").unwrap();
    let prompt = |m: &serde_json::Value| m["prompt"].as_str().unwrap().to_string();
    // At most 3 per tag, no official prompt, and the two sides never share a prompt.
    assert!(v.len() <= 18 && v.len() >= 10, "{}", v.len());
    for m in &v {
        assert!(!official.contains(&format!("\"{}\"", prompt(m))), "{m}");
        assert!(
            t.iter().all(|n| prompt(n) != prompt(m)),
            "{m} on both sides"
        );
    }
    // The file is a suite `evalcot suite --metadata` reads back, prompt for prompt.
    let o = evalcot(&["suite", "--metadata", val.to_str().unwrap(), "--jsonl"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout).lines().count(), v.len());
}
