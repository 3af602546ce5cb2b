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

/// `ext:python3 examples/ext/SCRIPT FLAGS`: a reference worker's model spec.
fn worker(script: &str, flags: &str) -> String {
    let script = repo(&format!("examples/ext/{script}"));
    format!("ext:python3 {} {flags}", path(&script))
        .trim_end()
        .to_string()
}

/// Fails (with how to fix it) unless python3 imports `modules` (comma-separated).
fn python_has(modules: &str) {
    let o = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .expect("python3 runs");
    assert!(
        o.status.success(),
        "the reference workers need python3 with {modules} (`pip install …`; .ci/run installs \
         them): {}",
        text(&o.stderr)
    );
}

#[test]
fn pytorch_adapters_drive_parm_and_parm_plus_deterministically() {
    python_has("torch, PIL");
    let tmp = tempfile::tempdir().unwrap();
    let generator = worker("torch_generator.py", "");
    let judge = worker("torch_judge.py", "");
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
        // The tiny model's images are not evalcot's world: the embedded detector only when forced.
        args.extend(["--detector", "embedded"]);
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
    args.extend(["--batch-prompts", "1", "--detector", "embedded"]);
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
            &[
                "--generator",
                "ext:/nonexistent/worker",
                "--detector",
                "embedded",
                "--limit",
                "1",
            ],
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

/// evalcot-ext/2: a generator that hands over an opaque state and a preview image with every
/// step (as a diffusion worker sends its latents and x0) runs PARM exactly as in process, also
/// over two worker processes, with the temperature passed as an option; one that makes whole
/// images only (`generate`) runs ORM exactly as in process and refuses PRM; PARM++ (re-masking
/// tokens) refuses an opaque state; an evalcot-ext/1 worker refuses options.
#[test]
fn protocol_2_opaque_states_whole_images_options_and_worker_pools() {
    let tmp = tempfile::tempdir().unwrap();
    let opaque = format!("ext:{} serve generator --state opaque", bin());
    let whole_images = format!("ext:{} serve generator --state whole", bin());
    let v1 = format!("ext:{} serve generator", bin());
    let with = |extra: &[&str]| {
        let mut a: Vec<String> = ["--judge", "zero-shot", "--temperature", "0.7"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        a.extend(SMALL.iter().map(|s| s.to_string()));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let go = |args: &[String], out: &Path| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, out, &[])
    };
    let (a, b) = (tmp.path().join("parm-in"), tmp.path().join("parm-opaque"));
    ok(go(&with(&["--strategy", "parm"]), &a));
    let ext = ["--generator", opaque.as_str(), "--detector", "embedded"];
    let mut args = with(&["--strategy", "parm", "--workers", "2"]);
    args.extend(ext.iter().map(|s| s.to_string()));
    ok(go(&args, &b));
    same_run(&a, &b);
    let config = std::fs::read_to_string(b.join("config.yaml")).unwrap();
    assert!(config.contains("temperature: 0.7"), "{config}");

    let (c, d) = (tmp.path().join("orm-in"), tmp.path().join("orm-whole"));
    ok(go(&with(&["--strategy", "orm"]), &c));
    let mut args = with(&["--strategy", "orm", "--generator", &whole_images]);
    args.extend(["--detector".to_string(), "embedded".to_string()]);
    ok(go(&args, &d));
    same_run(&c, &d);

    let mut args = with(&[
        "--strategy",
        "prm",
        "--generator",
        &whole_images,
        "--detector",
        "embedded",
    ]);
    args.extend(["--limit".to_string(), "1".to_string()]);
    refused(
        &go(&args, &tmp.path().join("prm")),
        &["makes whole images only"],
    );
    let args = with(&[
        "--strategy",
        "parm++",
        "--generator",
        &opaque,
        "--detector",
        "embedded",
    ]);
    refused(
        &go(&args, &tmp.path().join("pp")),
        &["parm++", "has no tokens"],
    );
    // Faults in the new operations stop the run naming them.
    let proxy = |inner: &str| {
        format!(
            "ext:python3 {} {} serve generator --state {inner}",
            path(&repo("tests/fixtures/faulty_worker.py")),
            bin()
        )
    };
    for (state, strategy, fault, needles) in [
        (
            "whole",
            "orm",
            "crash:generate:0",
            &["generate request", "boom: injected crash"][..],
        ),
        (
            "opaque",
            "parm",
            "badstate:step:1",
            &["step reply", "batch[0]", "\"state\": not base64"][..],
        ),
    ] {
        let g = proxy(state);
        let a = with(&[
            "--strategy",
            strategy,
            "--generator",
            &g,
            "--detector",
            "embedded",
        ]);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let out = tmp.path().join(format!("fault-{state}"));
        refused(&run(&a, &out, &[("EVALCOT_TEST_FAULT", fault)]), needles);
        whole(&out);
    }
    let args = with(&["--generator", &v1, "--detector", "embedded"]);
    refused(
        &go(&args, &tmp.path().join("v1")),
        &["temperature", "evalcot-ext/1, which carries no temperature"],
    );
}

/// The stub endpoint of tests/fixtures/openai_stub.py, started on 127.0.0.1: its port and the
/// file where it keeps its counts. Killed when dropped.
struct Stub {
    child: std::process::Child,
    port: String,
    stats: PathBuf,
}

impl Stub {
    fn start(dir: &Path, name: &str, flags: &[&str]) -> Stub {
        use std::io::BufRead;
        let stats = dir.join(format!("{name}.json"));
        let mut child = Command::new("python3")
            .arg(repo("tests/fixtures/openai_stub.py"))
            .args(["--stats", path(&stats)])
            .args(flags)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut port = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        Stub {
            child,
            port: port.trim().to_string(),
            stats,
        }
    }

    fn judge(&self, extra: &str) -> String {
        let url = format!("http://127.0.0.1:{}/v1", self.port);
        worker(
            "http_judge.py",
            &format!("--url {url} --model stub {extra}"),
        )
    }

    fn stats(&self) -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(&self.stats).unwrap()).unwrap()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// examples/ext/http_judge.py against an OpenAI-compatible stub: 96 images of one judge request
/// go out 64 at a time; injected HTTP 500s and replies later than the client's timeout are
/// retried within the budget and no verdict is lost (the run equals one against a stub without
/// faults); an endpoint that always fails stops the run naming the attempts and the status.
#[test]
fn the_http_judge_holds_64_requests_retries_faults_and_loses_no_verdict() {
    let tmp = tempfile::tempdir().unwrap();
    let args = |judge: &str| -> Vec<String> {
        [
            "--strategy",
            "orm",
            "--judge",
            judge,
            "--n",
            "16",
            "--steps",
            "4",
            "--per-tag",
            "1",
            "--images-per-prompt",
            "1",
            "--batch-prompts",
            "6",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let go = |args: &[String], out: &Path| {
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&a, out, &[])
    };
    let faulty = Stub::start(
        tmp.path(),
        "faulty",
        &[
            "--fail-every",
            "5",
            "--slow-every",
            "7",
            "--slow",
            "5",
            "--delay",
            "1",
        ],
    );
    // Each reply takes a second, so the first 64 requests overlap even on a loaded machine.
    let flags = "--timeout 3 --backoff 0.05 --retries 3";
    let a = tmp.path().join("faulty");
    ok(go(&args(&faulty.judge(flags)), &a));
    let s = faulty.stats();
    assert_eq!(s["max_in_flight"], 64, "{s}");
    assert!(s["injected_500"].as_u64().unwrap() > 0, "{s}");
    assert!(s["injected_slow"].as_u64().unwrap() > 0, "{s}");
    let injected = s["injected_500"].as_u64().unwrap() + s["injected_slow"].as_u64().unwrap();
    assert_eq!(s["requests"].as_u64().unwrap(), 96 + injected, "{s}");

    let clean = Stub::start(tmp.path(), "clean", &[]);
    let b = tmp.path().join("clean");
    ok(go(&args(&clean.judge(flags)), &b));
    same_run(&a, &b);
    let gen = std::fs::read_to_string(a.join("generation.jsonl")).unwrap();
    assert!(gen.contains("\"judge_calls\":16"), "{gen}");

    let down = Stub::start(tmp.path(), "down", &["--always-500", "--delay", "0"]);
    let mut bad = args(&down.judge("--backoff 0.01 --retries 2"));
    bad.extend(["--limit".to_string(), "1".to_string()]);
    refused(
        &go(&bad, &tmp.path().join("down")),
        &["ext judge", "no answer after 3 attempts", "HTTP 500"],
    );
}

/// The reference workers on tiny random models: examples/ext/diffusers_generator.py (UNet, VAE
/// and DDIM over evalcot-ext/2, the latents as opaque state and each step's decoded x0 as preview)
/// drives PARM, which judges the previews, and ORM, both judged by examples/ext/transformers_judge.py
/// (a LLaVA's P("yes")); examples/ext/transformers_detector.py (a Mask2Former and CLIP colours,
/// as GenEval's evaluator) scores them. A second run over two processes of each worker is
/// identical.
#[test]
fn diffusers_and_transformers_workers_run_parm_and_orm_deterministically() {
    python_has("torch, PIL, diffusers, transformers, scipy");
    let tmp = tempfile::tempdir().unwrap();
    let generator = worker("diffusers_generator.py", "--tiny");
    let judge = worker("transformers_judge.py", "--tiny");
    let detector = worker("transformers_detector.py", "--tiny");
    for strategy in ["parm", "orm"] {
        let mut args = vec!["--strategy", strategy, "--generator", &generator];
        args.extend(["--judge", &judge, "--detector", &detector]);
        args.extend(["--n", "3", "--per-tag", "1", "--images-per-prompt", "1"]);
        let (a, b) = (
            tmp.path().join(format!("{strategy}-a")),
            tmp.path().join(format!("{strategy}-b")),
        );
        ok(run(&args, &a, &[]));
        let summary = std::fs::read_to_string(a.join("summary.json")).unwrap();
        assert!(summary.contains("tiny-mask2former-clip"), "{summary}");
        args.extend(["--workers", "2"]);
        ok(run(&args, &b, &[]));
        same_run(&a, &b);
        let gen = std::fs::read_to_string(a.join("generation.jsonl")).unwrap();
        for line in gen.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["generator"], "tiny-diffusers-ddim");
            // Four DDIM steps with guidance: two UNet passes each, per candidate.
            assert!(v["forwards"].as_u64().unwrap() >= 8, "{line}");
            assert!(v["judge_calls"].as_u64().unwrap() > 0, "{line}");
        }
    }
}

/// examples/ext/official_to_detections.py turns an official-format results.jsonl (here the
/// embedded detector's, whose `details` are GenEval's) into `score --detections` input: every
/// verdict without a colour clause comes back the same; colour clauses are classified again (a
/// tiny random CLIP here) and score without error.
#[test]
fn official_results_become_detections_that_rescore_the_same() {
    python_has("torch, PIL, transformers");
    let tmp = tempfile::tempdir().unwrap();
    let gt = tmp.path().join("gt");
    common::world_suite_prompts(&gt, 5, "0-30,100-130,200-230,300-330,400-430,500-530");
    let scored = gt.join("results.jsonl");
    ok(Command::new(bin())
        .args(["score", path(&gt), "--out", path(&scored)])
        .output()
        .unwrap());
    let dets = tmp.path().join("dets.jsonl");
    ok(Command::new("python3")
        .arg(repo("examples/ext/official_to_detections.py"))
        .args([path(&scored), "--out", path(&dets), "--tiny"])
        .output()
        .unwrap());
    let again = tmp.path().join("again.jsonl");
    ok(Command::new(bin())
        .args(["score", "--detections", path(&dets), "--out", path(&again)])
        .output()
        .unwrap());
    let verdicts = |p: &Path| -> std::collections::BTreeMap<String, (bool, bool)> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let f = v["filename"].as_str().unwrap();
                let key: Vec<&str> = f.rsplit('/').take(3).collect();
                let colour = v["metadata"].as_str().unwrap().contains("\"color\"");
                (key.join("/"), (v["correct"].as_bool().unwrap(), colour))
            })
            .collect()
    };
    let (before, after) = (verdicts(&scored), verdicts(&again));
    assert_eq!(before.len(), 186);
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    let mut compared = 0;
    for (k, (correct, colour)) in &before {
        if !colour {
            assert_eq!(after[k].0, *correct, "{k}");
            compared += 1;
        }
    }
    assert!(compared > 100, "{compared}");
}
