//! External models (evalcot-ext/1): evalcot's own models served as workers score exactly as in
//! process; the PyTorch reference adapters in examples/ext drive full PARM and PARM++ runs; a
//! worker that crashes, hangs, writes garbage, answers another id, returns too few tokens or an
//! error stops the run with a message naming the command and the request, leaves the run folder
//! whole, and a rerun resumes to the uninterrupted result; a NaN fails only its image.

mod common;
use common::{path, samples, sorted_results, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_evalcot")
}

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

/// `evalcot run geneval ARGS --out OUT` with extra environment variables.
fn run(args: &[&str], out: &Path, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(["run", "geneval"])
        .args(args)
        .args(["--out", path(out)]);
    c.env_remove("EVALCOT_TEST_FAULT")
        .env_remove("EVALCOT_EXT_TIMEOUT");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

fn refused(o: &Output, needles: &[&str]) {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

fn same_run(a: &Path, b: &Path) {
    assert_eq!(sorted_results(a), sorted_results(b));
    assert_eq!(
        std::fs::read_to_string(a.join("generation.jsonl")).unwrap(),
        std::fs::read_to_string(b.join("generation.jsonl")).unwrap()
    );
    assert_eq!(samples(a), samples(b));
}

/// What a stopped run leaves: whole record lines, each naming a PNG that decodes.
fn whole(dir: &Path) -> usize {
    let text = std::fs::read_to_string(dir.join("generation.jsonl")).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'));
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v.get("error").is_none() {
            let png = dir.join(format!(
                "{:05}/samples/{:04}.png",
                v["prompt_index"].as_u64().unwrap(),
                v["image_index"].as_u64().unwrap()
            ));
            image::open(&png).unwrap();
        }
    }
    text.lines().count()
}

/// Whether process `pid` still runs (a zombie waiting to be reaped by init counts as gone).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

const SMALL: [&str; 8] = [
    "--n",
    "3",
    "--steps",
    "4",
    "--per-tag",
    "1",
    "--images-per-prompt",
    "1",
];

#[test]
fn served_models_score_exactly_as_in_process() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let mut args = vec!["--strategy", "parm", "--judge", "zero-shot"];
    args.extend(SMALL);
    ok(run(&args, &a, &[]));
    let generator = format!("ext:{} serve generator", bin());
    let judge = format!("ext:{} serve judge --model zero-shot", bin());
    let detector = format!("ext:{} serve detector", bin());
    let mut ext = vec!["--strategy", "parm", "--generator", &generator];
    ext.extend(["--judge", &judge, "--detector", &detector]);
    ext.extend(SMALL);
    ok(run(&ext, &b, &[]));
    same_run(&a, &b);
    let config = std::fs::read_to_string(b.join("config.yaml")).unwrap();
    assert!(config.contains("detector: ext:"), "{config}");
    // `score` through a served detector too.
    let scored = tmp.path().join("scored.jsonl");
    ok(Command::new(bin())
        .args([
            "score",
            path(&a),
            "--detector",
            &detector,
            "--out",
            path(&scored),
        ])
        .output()
        .unwrap());
    assert_eq!(
        common::sorted_lines(&scored, &a),
        common::sorted_lines(&a.join("results.jsonl"), &a)
            .into_iter()
            .map(|l| {
                // `run` adds compute and trace fields after the official ones.
                let v: serde_json::Value = serde_json::from_str(&l).unwrap();
                let keep = [
                    "filename", "tag", "prompt", "correct", "reason", "metadata", "details",
                ];
                let m: serde_json::Map<_, _> = v
                    .as_object()
                    .unwrap()
                    .iter()
                    .filter(|(k, _)| keep.contains(&k.as_str()))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                serde_json::to_string(&m).unwrap()
            })
            .collect::<Vec<_>>()
    );
}

fn torch_available() {
    let o = Command::new("python3")
        .args(["-c", "import torch, PIL"])
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "the PyTorch adapters need python3 with torch and pillow (`pip install torch pillow`; \
         .ci/run installs them): {}",
        text(&o.stderr)
    );
}

#[test]
fn pytorch_adapters_drive_parm_and_parm_plus_deterministically() {
    torch_available();
    let tmp = tempfile::tempdir().unwrap();
    let generator = format!(
        "ext:python3 {}",
        path(&repo("examples/ext/torch_generator.py"))
    );
    let judge = format!("ext:python3 {}", path(&repo("examples/ext/torch_judge.py")));
    for strategy in ["parm", "parm++"] {
        let mut args = vec![
            "--strategy",
            strategy,
            "--generator",
            &generator,
            "--judge",
            &judge,
        ];
        args.extend(["--n", "3", "--per-tag", "1", "--images-per-prompt", "1"]);
        let (a, b) = (
            tmp.path().join(format!("{strategy}-a")),
            tmp.path().join(format!("{strategy}-b")),
        );
        let err = text(&ok(run(&args, &a, &[])).stderr);
        assert!(err.contains("6 images generated"), "{err}");
        ok(run(&args, &b, &[]));
        same_run(&a, &b);
        let gen = std::fs::read_to_string(a.join("generation.jsonl")).unwrap();
        for line in gen.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["generator"], "tiny-torch-maskgit");
            assert!(v["forwards"].as_u64().unwrap() > 0 && v["judge_calls"].as_u64().unwrap() > 0);
        }
        if strategy == "parm++" {
            assert!(gen.contains("reflection_round"), "{gen}");
        }
    }
}

#[test]
fn misbehaving_workers_stop_the_run_cleanly_and_a_rerun_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let proxy = |inner: &str| {
        format!(
            "ext:python3 {} {}",
            path(&repo("tests/fixtures/faulty_worker.py")),
            inner
        )
    };
    let generator = proxy(&format!("{} serve generator", bin()));
    let judge = proxy(&format!("{} serve judge --model zero-shot", bin()));
    let mut args = vec![
        "--strategy",
        "parm",
        "--generator",
        &generator,
        "--judge",
        &judge,
    ];
    args.extend(SMALL);
    args.extend(["--batch-prompts", "1"]);
    let reference = tmp.path().join("reference");
    ok(run(&args, &reference, &[]));

    let cases: [(&str, &[&str]); 8] = [
        (
            "crash:step:9",
            &[
                "ext generator",
                "step request",
                "exited (exit status: 3)",
                "boom: injected crash",
            ],
        ),
        (
            "hang:judge:3",
            &["ext judge", "judge request", "no reply within 2 s"],
        ),
        (
            "garbage:step:5",
            &["malformed reply", "not JSON", "this is not json"],
        ),
        ("wrong_id:decode:2", &["does not carry \"id\""]),
        (
            "short:step:1",
            &["step reply", "63 tokens for a grid of 64"],
        ),
        (
            "error:judge:0",
            &["the worker answered with an error: injected failure"],
        ),
        (
            "fewer:judge:1",
            &[
                "judge reply",
                "\"verdicts\" has",
                "items for",
                "in the request",
            ],
        ),
        (
            "improbable:judge:2",
            &[
                "judge reply",
                "verdicts[0]",
                "\"p_yes\": 1.5 is not a probability",
            ],
        ),
    ];
    for (i, (fault, needles)) in cases.iter().enumerate() {
        let out = tmp.path().join(format!("case{i}"));
        let pids = tmp.path().join(format!("case{i}.pids"));
        let o = run(
            &args,
            &out,
            &[
                ("EVALCOT_TEST_FAULT", fault),
                ("EVALCOT_EXT_TIMEOUT", "2"),
                ("EVALCOT_TEST_PIDFILE", path(&pids)),
            ],
        );
        refused(&o, needles);
        whole(&out);
        // A stopped worker leaves no process behind (the proxy and the worker it started).
        // The worker exits on its own once its input closes; an orphan would live on, so a
        // grace of a few seconds (for a loaded machine) still catches one.
        let listed = std::fs::read_to_string(&pids).unwrap_or_default();
        assert!(!listed.is_empty(), "{fault}: the proxy wrote no pid");
        let grace = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while listed.lines().any(alive) && std::time::Instant::now() < grace {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        for pid in listed.lines() {
            assert!(
                !alive(pid),
                "{fault}: worker process {pid} outlived the run"
            );
        }
        if i < 3 {
            // The same command without the fault resumes to the uninterrupted result.
            ok(run(&args, &out, &[]));
            same_run(&out, &reference);
        }
    }
    // A worker of another role, and a command that does not exist.
    let out = tmp.path().join("role");
    let wrong = format!("ext:{} serve generator", bin());
    refused(
        &run(
            &["--strategy", "orm", "--judge", &wrong, "--limit", "1"],
            &out,
            &[],
        ),
        &["hello request 0", "this worker is a generator"],
    );
    refused(
        &run(
            &["--generator", "ext:/nonexistent/worker", "--limit", "1"],
            &out,
            &[],
        ),
        &[
            "ext generator `/nonexistent/worker`",
            "exited (exit status: 127)",
            "not found",
        ],
    );
    // A NaN verdict fails only the images whose prompt produced it; the run completes.
    let out = tmp.path().join("nan");
    let o = ok(run(
        &args,
        &out,
        &[("EVALCOT_TEST_FAULT", "nan:judge:clocks")],
    ));
    assert!(text(&o.stderr).contains("failed:"), "{}", text(&o.stderr));
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let failed: Vec<&str> = results
        .lines()
        .filter(|l| l.contains("non-finite"))
        .collect();
    assert_eq!(failed.len(), 1, "{results}");
    assert!(failed[0].contains("clocks"), "{}", failed[0]);
    assert_eq!(results.lines().count(), 6);
}
