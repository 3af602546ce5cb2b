//! `evalcot score IMAGEDIR` with the embedded detector (both stages and the first alone), and
//! the detector's error paths.
//! The quality bar of the shipped detector lives in docs/detector.md; this test checks that
//! the embedded detector is wired in and really looks at the pixels.

mod common;
use common::*;

fn overall(summary: &str) -> f64 {
    summary
        .lines()
        .find_map(|l| l.strip_prefix("Overall score (avg. over tasks): "))
        .and_then(|v| v.trim().parse().ok())
        .expect("summary has an overall score")
}

#[test]
fn embedded_detector_scores_ground_truth_renders_and_mismatched_images_low() {
    let dir = tempfile::tempdir().unwrap();
    let gt = dir.path().join("gt");
    world_suite_one_image(&gt, 99);
    let o = evalcot(&["score", gt.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let score = overall(&text(&o.stdout));
    assert!(
        score >= 0.6,
        "ground truth through the detector scored {score}\n{}",
        text(&o.stdout)
    );
    assert!(gt.join("results.jsonl").exists() && gt.join("summary.json").exists());

    // `--detector first-stage` is the embedded detector without its second stage: still a
    // detector (evaluator-v2), and measurably weaker on the suite's counting prompts.
    let first_out = dir.path().join("first-stage.jsonl");
    let o = evalcot(&[
        "score",
        gt.to_str().unwrap(),
        "--detector",
        "first-stage",
        "--out",
        first_out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let first = overall(&text(&o.stdout));
    assert!(
        first >= 0.6 && first < score,
        "first stage {first}, both stages {score}"
    );
    // Each summary names the detector that scored it.
    let scored_by = |p: &std::path::Path| {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        json["detector"].as_str().unwrap_or_default().to_string()
    };
    let both = scored_by(&gt.join("summary.json"));
    let alone = scored_by(&dir.path().join("summary.json"));
    assert!(both.starts_with("evaluator-v2-rescored"), "{both}");
    assert!(alone.starts_with("evaluator-v2 (first stage of"), "{alone}");

    // The same folder with every image replaced by another prompt's render must score low:
    // the detector really looks at the pixels.
    let shuffled = dir.path().join("shuffled");
    std::fs::create_dir_all(&shuffled).unwrap();
    for p in 0..553usize {
        let src = gt.join(format!("{p:05}"));
        let dst = shuffled.join(format!("{p:05}"));
        std::fs::create_dir_all(dst.join("samples")).unwrap();
        std::fs::copy(src.join("metadata.jsonl"), dst.join("metadata.jsonl")).unwrap();
        let other = gt.join(format!("{:05}/samples/0000.png", (p + 277) % 553));
        std::fs::copy(other, dst.join("samples/0000.png")).unwrap();
    }
    // Still evalcot's world (its marker copied along), so the embedded detector is the default.
    std::fs::copy(gt.join("world.json"), shuffled.join("world.json")).unwrap();
    let o = evalcot(&["score", shuffled.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let wrong = overall(&text(&o.stdout));
    assert!(wrong < 0.25, "mismatched images scored {wrong}");
}

#[test]
fn a_detector_folder_of_another_architecture_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let det = dir.path().join("det");
    std::fs::create_dir_all(&det).unwrap();
    std::fs::write(
        det.join("detector.json"),
        "{\"format\": \"evalcot-detector-1\"}",
    )
    .unwrap();
    std::fs::write(det.join("detector.bpk"), b"garbage").unwrap();
    let gt = dir.path().join("gt");
    world_suite_prompts(&gt, 0, "0-7");
    let o = evalcot(&[
        "score",
        gt.to_str().unwrap(),
        "--detector",
        det.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("detector.json"),
        "{}",
        text(&o.stderr)
    );
}
