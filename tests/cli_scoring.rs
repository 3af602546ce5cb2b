//! End-to-end tests of `evalcot score --detections`, `evalcot summary` and `evalcot suite`
//! through the real binary.

mod common;
use common::*;

use std::path::Path;

const DOG: &str = r#"{"tag": "single_object", "include": [{"class": "dog", "count": 1}], "prompt": "a photo of a dog"}"#;
const RED_CAT: &str = r#"{"tag": "colors", "include": [{"class": "cat", "count": 1, "color": "red"}], "prompt": "a photo of a red cat"}"#;

fn line(folder: &str, image: &str, meta: &str, dets: &str) -> String {
    format!(
        r#"{{"folder": "{folder}", "image": "{image}", "metadata": {meta}, "detections": {dets}}}"#
    )
}

fn write(path: &Path, lines: &[String]) {
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[test]
fn score_writes_official_results_summary_and_prints_the_official_text() {
    let dir = tempfile::tempdir().unwrap();
    let dets = dir.path().join("dets.jsonl");
    write(
        &dets,
        &[
            line(
                "00000",
                "0000.png",
                DOG,
                r#"[{"class": "dog", "score": 0.9, "box": [0, 0, 10, 10]}]"#,
            ),
            line("00000", "0001.png", DOG, "[]"),
            line(
                "00000",
                "0002.png",
                DOG,
                r#"[{"class": "dog", "score": 0.31, "box": [0, 0, 10, 10]}]"#,
            ),
            line(
                "00001",
                "0000.png",
                RED_CAT,
                r#"[{"class": "cat", "score": 0.99, "box": [0, 0, 10, 10], "color": "blue"}]"#,
            ),
        ],
    );
    let out = dir.path().join("out/results.jsonl");
    let o = score_detections(&dets, &out, &[]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let stdout = text(&o.stdout);
    assert_eq!(
        stdout,
        "Summary\n=======\nTotal images: 4\nTotal prompts: 2\n% correct images: 50.00%\n% correct prompts: 50.00%\n\nTask breakdown\n==============\nsingle_object    = 66.67% (2 / 3)\ncolors           = 0.00% (0 / 1)\n\nOverall score (avg. over tasks): 0.33333\n"
    );
    let results = std::fs::read_to_string(&out).unwrap();
    let first: serde_json::Value = serde_json::from_str(results.lines().next().unwrap()).unwrap();
    let keys: Vec<&str> = first
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        ["filename", "tag", "prompt", "correct", "reason", "metadata", "details"]
    );
    assert_eq!(first["filename"], "00000/samples/0000.png");
    assert_eq!(first["metadata"], DOG);
    assert_eq!(
        first["details"],
        r#"{"dog": [[0.0, 0.0, 10.0, 10.0, 0.9]]}"#
    );
    let last: serde_json::Value = serde_json::from_str(results.lines().nth(3).unwrap()).unwrap();
    assert_eq!(
        last["reason"],
        "expected red cat>=1, found 0 red; and 1 blue"
    );
    let summary: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["total_images"], 4);
    assert!((summary["overall"].as_f64().unwrap() - 1.0 / 3.0).abs() < 1e-12);

    // `summary` reproduces the same text from the file.
    let o = evalcot(&["summary", out.to_str().unwrap()]);
    assert!(o.status.success());
    assert_eq!(text(&o.stdout), stdout);

    // Thresholds are configurable: at 0.35 the 0.31 dog is dropped.
    let out2 = dir.path().join("out2");
    let o = score_detections(&dets, &out2, &["--threshold", "0.35"]);
    assert!(o.status.success());
    assert!(text(&o.stdout).contains("single_object    = 33.33% (1 / 3)"));
    assert!(out2.join("results.jsonl").exists() && out2.join("summary.json").exists());
}

#[test]
fn summary_reads_the_official_evaluators_pandas_output() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("official.jsonl");
    // pandas to_json escapes '/' and writes no spaces.
    let row = |img: &str, tag: &str, meta: &str, correct: bool| {
        format!(
            "{{\"filename\":\"imgs\\/00000\\/samples\\/{img}\",\"tag\":\"{tag}\",\"prompt\":\"p\",\"correct\":{correct},\"reason\":\"\",\"metadata\":{},\"details\":\"{{}}\"}}",
            serde_json::to_string(meta).unwrap()
        )
    };
    write(
        &p,
        &[
            row("0000.png", "single_object", DOG, true),
            row("0001.png", "single_object", DOG, false),
            row("0000.png", "colors", RED_CAT, false),
        ],
    );
    let o = evalcot(&["summary", p.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout)
        .contains("Total prompts: 2\n% correct images: 33.33%\n% correct prompts: 50.00%"));
    assert!(text(&o.stdout).ends_with("Overall score (avg. over tasks): 0.25000\n"));
}

#[test]
fn bad_input_exits_2_with_file_line_and_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dets = dir.path().join("dets.jsonl");
    let out = dir.path().join("out");
    let cases: Vec<(String, &str)> = vec![
        (
            line(
                "00000",
                "0000.png",
                DOG,
                r#"[{"class": "wolf", "score": 0.9, "box": [0, 0, 1, 1]}]"#,
            ),
            "dets.jsonl:2: field `detections[0].class`: unknown class \"wolf\"",
        ),
        (
            line(
                "00000",
                "0000.png",
                RED_CAT,
                r#"[{"class": "cat", "score": 0.9, "box": [0, 0, 1, 1]}]"#,
            ),
            "dets.jsonl:2: field `detections[0].color`: missing",
        ),
        (
            line(
                "00000",
                "0000.png",
                &DOG.replace("\"count\": 1", "\"count\": 0"),
                "[]",
            ),
            "dets.jsonl:2: field `metadata.include[0].count`",
        ),
        (
            line(
                "00000",
                "0000.png",
                &DOG.replace("single_object", "singles"),
                "[]",
            ),
            "dets.jsonl:2: field `metadata.tag`: unknown tag",
        ),
        (
            "{\"folder\": \"00000\", \"image\": ".to_string(),
            "dets.jsonl:2: malformed JSON",
        ),
    ];
    for (bad, want) in cases {
        write(&dets, &[line("00000", "0000.png", DOG, "[]"), bad]);
        let o = score_detections(&dets, &out, &[]);
        assert_eq!(o.status.code(), Some(2), "{want}");
        let err = text(&o.stderr);
        assert!(err.contains(want), "expected {want:?} in {err:?}");
        assert!(!out.exists(), "nothing may be written on bad input");
    }
    // Missing file.
    let o = evalcot(&[
        "score",
        "--detections",
        "/nonexistent/d.jsonl",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("/nonexistent/d.jsonl"));
    // A non-finite rule setting.
    write(&dets, &[line("00000", "0000.png", DOG, "[]")]);
    let o = score_detections(&dets, &out, &["--threshold", "NaN"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("threshold must be a finite number"));
}

#[test]
fn unwritable_output_is_an_error_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let dets = dir.path().join("dets.jsonl");
    write(&dets, &[line("00000", "0000.png", DOG, "[]")]);
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let out = blocker.join("results.jsonl");
    let o = score_detections(&dets, &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains(blocker.to_str().unwrap()),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn suite_validates_and_selects() {
    let o = evalcot(&["suite", "--tags", "position", "--limit", "3"]);
    assert!(o.status.success());
    let out = text(&o.stdout);
    assert_eq!(out.lines().count(), 3);
    assert!(
        out.starts_with("00353  position       a photo of a dog right of a teddy bear\n"),
        "{out}"
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("m.jsonl");
    std::fs::write(
        &p,
        format!("{DOG}\n{}\n", DOG.replace("\"dog\"", "\"wolf\"")),
    )
    .unwrap();
    let o = evalcot(&["suite", "--metadata", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("m.jsonl:2: field `include[0].class`: unknown class \"wolf\""));
    let o = evalcot(&["suite", "--indices", "600-700"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("matches no prompt"));
}

/// A GenEval folder from another model (512×512 JPEG and WebP): the embedded detector, trained on
/// evalcot's 64×64 world, is never chosen silently; `--detector embedded` forces it, and the
/// summary's first line and `summary.json` say so. A run of an external generator is the same.
#[test]
fn images_not_of_evalcots_world_need_an_explicit_detector() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("sdxl");
    std::fs::create_dir_all(folder.join("00000/samples")).unwrap();
    std::fs::write(folder.join("00000/metadata.jsonl"), format!("{DOG}\n")).unwrap();
    let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(512, 512, |x, y| {
        image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
    }));
    img.save(folder.join("00000/samples/0000.jpg")).unwrap();
    img.save(folder.join("00000/samples/0001.webp")).unwrap();

    let o = evalcot(&["score", path(&folder)]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for needle in [
        "not images of evalcot's world",
        "--detector ext:CMD",
        "evalcot score --detections FILE",
        "--detector embedded",
    ] {
        assert!(err.contains(needle), "{needle:?} not in {err}");
    }
    assert!(!folder.join("results.jsonl").exists());

    let o = evalcot(&["score", path(&folder), "--detector", "embedded"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.starts_with("NOTE: ") && out.contains("not a GenEval score"),
        "{out}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("summary.json")).unwrap())
            .unwrap();
    assert!(
        summary["detector"].as_str().unwrap().contains("forced"),
        "{summary}"
    );
    let results = std::fs::read_to_string(folder.join("results.jsonl")).unwrap();
    assert!(
        results.contains("0000.jpg") && results.contains("0001.webp"),
        "{results}"
    );

    let run = dir.path().join("run");
    let o = evalcot(&[
        "run",
        "geneval",
        "--generator",
        "ext:true",
        "--limit",
        "1",
        "--out",
        path(&run),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("the images of the external generator `ext:true`"),
        "{err}"
    );
    assert!(!run.join("results.jsonl").exists());
}
