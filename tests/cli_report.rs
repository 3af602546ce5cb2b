//! `evalcot report` and `evalcot gate` on small run folders written here in the exact formats
//! `evalcot run` writes (config.yaml, generation.jsonl, results.jsonl, the official layout).

mod common;
use common::{evalcot, path, text};
use std::fmt::Write;
use std::path::Path;

const PROMPTS: &[(usize, &str, &str)] = &[
    (0, "single_object", "a photo of a bench"),
    (1, "single_object", "a photo of a cow"),
    (2, "single_object", "a photo of a bed"),
    (3, "single_object", "a photo of a cake"),
    (10, "counting", "a photo of two benches"),
    (11, "counting", "a photo of three cows"),
    (12, "counting", "a photo of four cakes"),
    (13, "counting", "a photo of two beds"),
];

/// A run folder as `evalcot run` leaves it: 4 images per prompt, image `(p, i)` correct when
/// `correct(p, i)`. ORM and oracle records carry every candidate's verdict
/// (`trace.candidate_correct`; ORM also `trace.p_yes`), as the strategies write them: the last
/// candidate is the chosen one (highest score), candidate `c < n - 1` is correct when
/// `(p + i + c)` is even.
fn fake_run(dir: &Path, strategy: &str, n: usize, correct: impl Fn(usize, usize) -> bool) {
    let images = 4;
    let forwards = 36 * n;
    let judge_calls = if strategy == "baseline" { 0 } else { n };
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("config.yaml"),
        format!("suite: geneval\nstrategy: {strategy}\ngenerator: base\nn: {n}\nimages_per_prompt: {images}\nsteps: 18\ncfg_scale: 1.75\nseed: 1234\ntags: null\nindices: null\nper_tag: null\nlimit: null\nbatch_prompts: 8\njudge: zero-shot\ndecision: sample\n"),
    )
    .unwrap();
    let (mut gen, mut res) = (String::new(), String::new());
    for &(p, tag, prompt) in PROMPTS {
        let folder = dir.join(format!("{p:05}"));
        std::fs::create_dir_all(folder.join("samples")).unwrap();
        let meta = format!(
            "{{\"tag\": \"{tag}\", \"include\": [{{\"class\": \"bench\", \"count\": 1}}], \"prompt\": \"{prompt}\"}}"
        );
        std::fs::write(folder.join("metadata.jsonl"), format!("{meta}\n")).unwrap();
        for i in 0..images {
            let png = folder.join("samples").join(format!("{i:04}.png"));
            image::RgbImage::from_pixel(8, 8, image::Rgb([30 * i as u8, 90, p as u8]))
                .save(&png)
                .unwrap();
            let ok = correct(p, i);
            let verdicts: Vec<bool> = (0..n)
                .map(|c| if c == n - 1 { ok } else { (p + i + c) % 2 == 0 })
                .collect();
            let trace = match strategy {
                "orm" => serde_json::json!({
                    "chosen": n - 1,
                    "p_yes": (0..n).map(|c| 0.1 + 0.8 * c as f64 / n as f64).collect::<Vec<_>>(),
                    "candidate_correct": verdicts,
                }),
                "oracle" => serde_json::json!({"chosen": n - 1, "candidate_correct": verdicts}),
                _ => serde_json::json!({}),
            };
            let g = format!("\"strategy\":\"{strategy}\",\"generator\":\"base\",\"forwards\":{forwards},\"judge_calls\":{judge_calls},\"candidates\":{n},\"truncated\":0,\"trace\":{trace}");
            let _ = writeln!(gen, "{{\"prompt_index\":{p},\"image_index\":{i},{g}}}");
            let official = serde_json::json!({
                "filename": png.display().to_string(),
                "tag": tag,
                "prompt": prompt,
                "correct": ok,
                "reason": if ok { "" } else { "expected bench>=1, found 0" },
                "metadata": meta,
                "details": "{}",
            })
            .to_string();
            // The official keys, then the generation record's (as the runner merges them).
            let _ = writeln!(res, "{},{g}}}", &official[..official.len() - 1]);
        }
    }
    std::fs::write(dir.join("generation.jsonl"), gen).unwrap();
    std::fs::write(dir.join("results.jsonl"), res).unwrap();
}

#[test]
fn report_writes_tables_plots_and_page() {
    let d = tempfile::tempdir().unwrap();
    let base = d.path().join("runs/baseline");
    let orm = d.path().join("runs/orm");
    fake_run(&base, "baseline", 1, |p, i| (p + i) % 2 == 0);
    fake_run(&orm, "orm", 4, |p, i| (p + i) % 4 != 0);
    let out = d.path().join("report");
    let o = evalcot(&["report", path(&base), path(&orm), "--out", path(&out)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("orm N=4 (zero-shot)"),
        "{}",
        text(&o.stdout)
    );
    for f in [
        "results.md",
        "results.csv",
        "results.tex",
        "accuracy_by_tag.png",
        "accuracy_by_tag.svg",
        "accuracy_vs_compute.png",
        "accuracy_vs_compute.svg",
        "scaling.csv",
        "scaling.png",
        "scaling.svg",
        "index.html",
    ] {
        let len = std::fs::metadata(out.join(f)).map(|m| m.len()).unwrap_or(0);
        assert!(len > 0, "{f} missing or empty");
    }
    let md = std::fs::read_to_string(out.join("results.md")).unwrap();
    assert!(
        md.contains("| baseline | 0.500 [") && md.contains("| orm N=4 (zero-shot) | 0.750 ["),
        "{md}"
    );
    assert!(
        md.contains(
            "| orm N=4 (zero-shot) | orm | 4 | zero-shot | base | 8 | 32 | 0 | 144 | 4 | 4 | 0 |"
        ),
        "{md}"
    );
    // Best-of-N′ from the ORM run's candidates: the first candidate (plain sampling) and the
    // pick among two are right half the time; among all four, the run's own 0.75.
    assert!(
        md.contains("## Best-of-N scaling")
            && md.contains("| run | N | N′=1 | N′=2 | N′=4 |")
            && md.contains("| orm N=4 (zero-shot) | 4 | 0.500 | 0.500 | 0.750 |"),
        "{md}"
    );
    assert!(!md.contains("are not drawn"), "{md}");
    let csv = std::fs::read_to_string(out.join("scaling.csv")).unwrap();
    assert!(
        csv.contains("orm N=4 (zero-shot),") && csv.contains(",4,4,overall,32,24,0.750000"),
        "{csv}"
    );
    for f in ["accuracy_by_tag.png", "scaling.png"] {
        let png = image::open(out.join(f)).unwrap().to_rgb8();
        assert!(png.pixels().any(|p| p.0 != [255, 255, 255]), "blank {f}");
    }
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(html.contains("src=\"../runs/orm/00012/samples/0003.png\""));
    assert!(html.contains("<img src=\"accuracy_vs_compute.svg\""));
    assert!(html.contains("<img src=\"scaling.svg\"") && html.contains("href=\"scaling.png\""));
    // No leftovers of the atomic writes.
    let names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");

    // A broken input is a named error (exit 2) and names the file and line.
    std::fs::write(orm.join("results.jsonl"), "{\"filename\": 3}\n").unwrap();
    let o = evalcot(&["report", path(&base), path(&orm), "--out", path(&out)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("results.jsonl:1"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn gate_passes_equal_runs_fails_a_large_drop_and_refuses_bad_input() {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("good");
    let same = d.path().join("same");
    let worse = d.path().join("worse");
    fake_run(&good, "orm", 4, |p, i| (p + i) % 4 != 0); // 0.75 in both tags
    fake_run(&same, "orm", 4, |p, i| (p + i) % 4 != 0);
    fake_run(&worse, "orm", 4, |p, i| p >= 10 && (p + i) % 4 != 0); // single_object: 0
    let baseline = d.path().join("baseline.json");
    let o = evalcot(&[
        "gate",
        "--run",
        path(&good),
        "--write-baseline",
        path(&baseline),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let b: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&baseline).unwrap()).unwrap();
    assert_eq!(b["format"], "evalcot-baseline/1");
    assert_eq!(b["images"].as_array().unwrap().len(), 32);
    assert_eq!(b["overall"], 0.75);

    let gate = |run: &Path, extra: &[&str]| {
        let mut args = vec!["gate", "--baseline", path(&baseline), "--run", path(run)];
        args.extend_from_slice(extra);
        evalcot(&args)
    };
    let o = gate(&same, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("result: PASS"),
        "{}",
        text(&o.stdout)
    );

    // single_object loses all 12 correct images: a drop of 0.75, p = 2^-12.
    let o = gate(&worse, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    assert!(
        out.contains("single_object") && out.contains("FAIL"),
        "{out}"
    );
    assert!(
        out.contains("result: FAIL (single_object, overall"),
        "{out}"
    );
    // The same verdict for dashboards: JSON and JUnit XML, with the same exit code.
    let o = gate(&worse, &["--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let j: serde_json::Value = serde_json::from_str(&text(&o.stdout)).unwrap();
    assert_eq!(j["result"], "FAIL");
    let single = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "single_object")
        .unwrap();
    assert_eq!(single["fail"], true);
    assert_eq!(single["lost"], 12);
    let o = gate(&worse, &["--format", "junit"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let xml = text(&o.stdout);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 2, "{xml}");
    assert_eq!(
        xml.matches("<testcase ").count(),
        j["rows"].as_array().unwrap().len()
    );
    assert!(xml.contains(r#"name="single_object""#), "{xml}");
    let o = gate(&same, &["--format", "junit"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!text(&o.stdout).contains("<failure"), "{}", text(&o.stdout));
    // The same drop under a looser max-drop passes.
    let o = gate(&worse, &["--max-drop", "0.8"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));

    // Unusable input: malformed baseline, other prompt set, missing images.
    let bad = d.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"format\": \"evalcot-baseline/1\",\n \"images\": 3}\n",
    )
    .unwrap();
    let o = evalcot(&["gate", "--baseline", path(&bad), "--run", path(&same)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("bad.json:2"),
        "{}",
        text(&o.stderr)
    );
    let results = std::fs::read_to_string(same.join("results.jsonl")).unwrap();
    std::fs::write(
        same.join("results.jsonl"),
        results.replace("a photo of a cow", "a photo of a dog"),
    )
    .unwrap();
    let o = gate(&same, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("not the same prompt set"),
        "{}",
        text(&o.stderr)
    );
    let kept: String = results.lines().skip(1).map(|l| format!("{l}\n")).collect();
    std::fs::write(same.join("results.jsonl"), kept).unwrap();
    let o = gate(&same, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("missing 1 of 32") && text(&o.stderr).contains("prompt 0 image 0"),
        "{}",
        text(&o.stderr)
    );
    let o = gate(&same, &["--alpha", "0"]);
    assert_eq!(o.status.code(), Some(2));
}
