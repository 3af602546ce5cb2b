//! `evalcot run`: the official layout with compute records, resumption, thread-count
//! independence and clear errors for bad settings.

mod common;
use common::{evalcot, evalcot_with, path, samples, text};

fn run(out: &std::path::Path, extra: &[&str], threads: Option<&str>) -> std::process::Output {
    let mut args = vec![
        "run",
        "geneval",
        "--indices",
        "0,100,300",
        "--images-per-prompt",
        "2",
        "--steps",
        "6",
        "--out",
        path(out),
    ];
    args.extend_from_slice(extra);
    evalcot_with(&args, threads)
}

fn sorted_results(dir: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("results.jsonl")).unwrap();
    let mut lines: Vec<String> = text
        .lines()
        .map(|l| l.replace(&dir.display().to_string(), "RUN"))
        .collect();
    lines.sort();
    lines
}

#[test]
fn baseline_and_oracle_runs_write_the_layout_resume_and_ignore_thread_count() {
    let a = tempfile::tempdir().unwrap();
    let o = run(a.path(), &["--strategy", "baseline"], Some("1"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("Overall score"));
    for f in [
        "config.yaml",
        "generation.jsonl",
        "results.jsonl",
        "summary.json",
    ] {
        assert!(a.path().join(f).exists(), "{f}");
    }
    assert!(a.path().join("00100/samples/0001.png").exists());
    let results = sorted_results(a.path());
    assert_eq!(results.len(), 6);
    // Wall time: one record per image, beside (not inside) the deterministic records.
    let timing = std::fs::read_to_string(a.path().join("timing.jsonl")).unwrap();
    assert_eq!(timing.lines().count(), 6, "{timing}");
    for line in timing.lines() {
        let t: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(t["seconds"].as_f64().is_some_and(|s| s > 0.0), "{line}");
        assert_eq!(t["threads"], 1, "{line}");
    }
    let first: serde_json::Value = serde_json::from_str(&results[0]).unwrap();
    assert_eq!(first["forwards"], 12); // 6 steps × the CFG pair
    assert_eq!(first["strategy"], "baseline");
    let config = std::fs::read_to_string(a.path().join("config.yaml")).unwrap();
    assert!(
        config.contains("steps: 6") && config.contains("cfg_scale: 1.75"),
        "{config}"
    );

    // Same command, two threads, in another folder: identical results.
    let b = tempfile::tempdir().unwrap();
    let o = run(b.path(), &["--strategy", "baseline"], Some("2"));
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(results, sorted_results(b.path()));

    // Rerunning a finished run generates nothing and gives the same results.
    let o = run(a.path(), &["--strategy", "baseline"], None);
    assert!(
        text(&o.stderr).contains("0 images generated now (6 resumed)"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(results, sorted_results(a.path()));

    // Another configuration in the same folder is refused.
    let o = run(a.path(), &["--strategy", "baseline", "--seed", "5"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("another configuration"),
        "{}",
        text(&o.stderr)
    );

    // The oracle never does worse than its first candidate (the baseline's image: candidate 0
    // has the same seed) and counts N candidates.
    let c = tempfile::tempdir().unwrap();
    let o = run(c.path(), &["--strategy", "oracle", "--n", "3"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let oracle = sorted_results(c.path());
    assert_eq!(oracle.len(), results.len());
    let mut improved = 0;
    for (b, o) in results.iter().zip(&oracle) {
        let b: serde_json::Value = serde_json::from_str(b).unwrap();
        let o: serde_json::Value = serde_json::from_str(o).unwrap();
        assert_eq!(b["filename"], o["filename"]);
        assert_eq!(o["forwards"], 36);
        assert_eq!(o["judge_calls"], 3);
        let verdicts: Vec<bool> = o["trace"]["candidate_correct"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_bool().unwrap())
            .collect();
        assert_eq!(verdicts.len(), 3, "{o}");
        // Candidate 0's verdict is the baseline's; the oracle is right whenever any is.
        assert_eq!(verdicts[0], b["correct"].as_bool().unwrap(), "{o}");
        assert_eq!(
            o["correct"].as_bool().unwrap(),
            verdicts.contains(&true),
            "{o}"
        );
        improved += usize::from(o["correct"] == true && b["correct"] == false);
    }
    eprintln!(
        "oracle N=3 right where the baseline was wrong: {improved} of {}",
        results.len()
    );
}

/// PRM and PARM draw every random decision (forks, PARM's sampled yes/no) from the seed path,
/// never from thread order: one thread and two give the same results.
#[test]
fn prm_and_parm_ignore_thread_count() {
    for strategy in ["prm", "parm"] {
        let args = [
            "--strategy",
            strategy,
            "--judge",
            "zero-shot",
            "--n",
            "2",
            "--batch-prompts",
            "1",
        ];
        let one = tempfile::tempdir().unwrap();
        let o = run(one.path(), &args, Some("1"));
        assert!(o.status.success(), "{strategy}: {}", text(&o.stderr));
        let two = tempfile::tempdir().unwrap();
        let o = run(two.path(), &args, Some("2"));
        assert!(o.status.success(), "{strategy}: {}", text(&o.stderr));
        let results = sorted_results(one.path());
        assert_eq!(results.len(), 6, "{strategy}");
        assert_eq!(results, sorted_results(two.path()), "{strategy}");
        let pngs = samples(one.path());
        assert_eq!(pngs.len(), 6, "{strategy}");
        assert!(pngs == samples(two.path()), "{strategy}: the images differ");
    }
}

#[test]
fn bad_run_settings_are_named_errors() {
    let d = tempfile::tempdir().unwrap();
    for (args, expect) in [
        (vec!["--n", "0"], "n: must be at least 1"),
        (vec!["--strategy", "magic"], "unknown strategy \"magic\""),
        (vec!["--tags", "colour"], "tags"),
        (vec!["--generator", "nonexistent"], "nonexistent"),
        (
            vec!["--temperature=-1"],
            "temperature: must be a finite number ≥ 0",
        ),
        (
            vec!["--option", "sampler"],
            "--option \"sampler\": expected KEY=VALUE",
        ),
        (
            vec!["--option", "sampler=ddim", "--limit", "1"],
            "options: \"sampler\" is for external generators",
        ),
        (
            vec!["--device", "tpu"],
            "expected cpu, cuda, cuda-f16 or cuda-bf16",
        ),
    ] {
        let o = run(d.path(), &args, None);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(
            text(&o.stderr).contains(expect),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
    let yaml = d.path().join("run.yaml");
    std::fs::write(&yaml, "strategy: baseline\nsamples: 3\n").unwrap();
    let o = evalcot(&["run", "--config", path(&yaml), "--out", path(d.path())]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("run.yaml") && text(&o.stderr).contains("samples"),
        "{}",
        text(&o.stderr)
    );
}

/// `--temperature` reaches the sampler and the resolved configuration; without it the
/// configuration has no such field (runs made before it existed resume unchanged).
#[test]
fn the_temperature_override_is_used_and_recorded() {
    let d = tempfile::tempdir().unwrap();
    let (plain, greedy) = (d.path().join("plain"), d.path().join("greedy"));
    for (out, extra) in [(&plain, vec![]), (&greedy, vec!["--temperature", "0"])] {
        let o = run(out, &extra, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let config = |dir: &std::path::Path| std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(!config(&plain).contains("temperature"));
    assert!(
        config(&greedy).contains("temperature: 0.0"),
        "{}",
        config(&greedy)
    );
    let png = |dir: &std::path::Path| std::fs::read(dir.join("00000/samples/0000.png")).unwrap();
    assert_ne!(
        png(&plain),
        png(&greedy),
        "temperature 0 draws other tokens"
    );
}

/// `--device cpu` is the default device, written as absent so that runs made before the flag
/// resume; a GPU device in a build without the `cuda` feature is refused by name before
/// anything is written.
#[test]
fn the_device_is_recorded_and_a_missing_backend_is_named() {
    let d = tempfile::tempdir().unwrap();
    let (plain, cpu) = (d.path().join("plain"), d.path().join("cpu"));
    for (out, extra) in [(&plain, vec![]), (&cpu, vec!["--device", "cpu"])] {
        let o = run(out, &extra, None);
        assert!(o.status.success(), "{}", text(&o.stderr));
    }
    let config = |dir: &std::path::Path| std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(!config(&plain).contains("device"));
    assert_eq!(config(&plain), config(&cpu));
    assert_eq!(sorted_results(&plain), sorted_results(&cpu));
    if !cfg!(feature = "cuda") {
        let gpu = d.path().join("gpu");
        let o = run(&gpu, &["--device", "cuda-bf16"], None);
        assert_eq!(o.status.code(), Some(2));
        assert!(
            text(&o.stderr)
                .contains("device cuda-bf16: this evalcot was built without the `cuda` feature"),
            "{}",
            text(&o.stderr)
        );
        assert!(!gpu.join("config.yaml").exists());
    }
}

/// The second generator family, shipped as `ar`, under step-level search (which judges its
/// previews). Its refusal of re-masked trajectories is tested in `models/src/ar/tests.rs`.
#[test]
fn the_autoregressive_generator_runs_prm() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("prm");
    let o = common::evalcot(&[
        "run",
        "geneval",
        "--generator",
        "ar",
        "--strategy",
        "prm",
        "--judge",
        "zero-shot",
        "--n",
        "2",
        "--steps",
        "4",
        "--limit",
        "2",
        "--images-per-prompt",
        "1",
        "--out",
        common::path(&out),
    ]);
    assert!(o.status.success(), "{}", common::text(&o.stderr));
    let gen = std::fs::read_to_string(out.join("generation.jsonl")).unwrap();
    assert_eq!(gen.lines().count(), 2);
    assert!(gen.contains("\"generator\":\"ar\""), "{gen}");
}

/// `--profile` times the phases of a run (`profile.json`, a table on stderr) and changes no
/// result and no recorded configuration.
#[test]
fn profiling_times_the_phases_and_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let (plain, timed) = (d.path().join("plain"), d.path().join("timed"));
    let parm = ["--strategy", "parm", "--n", "2", "--judge", "zero-shot"];
    let o = run(&plain, &parm, None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(&timed, &[&parm[..], &["--profile"]].concat(), None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("generator.step.forward"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(sorted_results(&plain), sorted_results(&timed));
    let config = |dir: &std::path::Path| std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert_eq!(config(&plain), config(&timed));
    assert!(!plain.join("profile.json").exists());
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(timed.join("profile.json")).unwrap())
            .unwrap();
    let phase = |name: &str| {
        p["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["phase"] == name)
            .unwrap_or_else(|| panic!("no {name} in {p}"))
            .clone()
    };
    for name in [
        "generator.step",
        "generator.step.forward",
        "generator.step.draw",
        "generator.decode",
        "judge",
        "judge.forward",
        "detector",
    ] {
        assert!(phase(name)["calls"].as_u64().unwrap() > 0, "{name}: {p}");
        assert!(
            phase(name)["seconds"].as_f64().unwrap() > 0.0,
            "{name}: {p}"
        );
    }
    // Nested phases fit inside their parents.
    let secs = |name: &str| phase(name)["seconds"].as_f64().unwrap();
    assert!(secs("generator.step.forward") + secs("generator.step.draw") <= secs("generator.step"));
    assert!(secs("judge.forward") <= secs("judge"));
}

/// `--draws device` draws where the network runs: recorded in config.yaml (`host`, the
/// default, is written as absent), a finished run, and a named refusal for the autoregressive
/// generator, which draws on the host only.
#[test]
fn device_draws_are_recorded_and_refused_where_unsupported() {
    let d = tempfile::tempdir().unwrap();
    let (host, device) = (d.path().join("host"), d.path().join("device"));
    let o = run(&host, &["--draws", "host"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(&device, &["--draws", "device"], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let config = |dir: &std::path::Path| std::fs::read_to_string(dir.join("config.yaml")).unwrap();
    assert!(!config(&host).contains("draws"), "{}", config(&host));
    assert!(
        config(&device).contains("draws: device"),
        "{}",
        config(&device)
    );
    assert_eq!(sorted_results(&device).len(), 6);
    let ar = d.path().join("ar");
    let o = run(&ar, &["--draws", "device", "--generator", "ar"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("draws on the host only"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&ar, &["--draws", "gpu"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("expected host or device"),
        "{}",
        text(&o.stderr)
    );
}

/// `--forward-batch` and `--slice-rows` regroup a step's work and change no image: one
/// trajectory per forward and per slice gives the default run's PNGs byte for byte. Both are
/// recorded in config.yaml; a zero and the autoregressive generator are refused by name.
#[test]
fn step_batching_changes_no_image_and_is_recorded() {
    let d = tempfile::tempdir().unwrap();
    let (wide, narrow) = (d.path().join("default"), d.path().join("narrow"));
    let o = run(&wide, &[], None);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let o = run(
        &narrow,
        &["--forward-batch", "1", "--slice-rows", "3"],
        None,
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(samples(&wide).len(), 6);
    assert!(
        samples(&wide) == samples(&narrow),
        "regrouped steps drew other images"
    );
    assert_eq!(sorted_results(&wide), sorted_results(&narrow));
    let config = std::fs::read_to_string(narrow.join("config.yaml")).unwrap();
    assert!(
        config.contains("forward_batch: 1") && config.contains("slice_rows: 3"),
        "{config}"
    );
    let default = std::fs::read_to_string(wide.join("config.yaml")).unwrap();
    assert!(!default.contains("forward_batch"), "{default}");

    let bad = d.path().join("bad");
    let o = run(&bad, &["--forward-batch", "0"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("forward_batch: must be at least 1"),
        "{}",
        text(&o.stderr)
    );
    let o = run(&bad, &["--slice-rows", "4", "--generator", "ar"], None);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("slice_rows") && text(&o.stderr).contains("autoregressive"),
        "{}",
        text(&o.stderr)
    );
}
