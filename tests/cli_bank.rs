//! Banks and replays end to end: a replay writes the run that `evalcot run` writes with the same
//! settings, byte for byte and compute included; banks resume, shard and merge; bad banks are
//! refused naming the file and what differs.

mod common;

use common::{evalcot, path, samples, sorted_results, text};
use std::path::Path;
use std::process::Output;

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", text(&o.stderr));
    o
}

fn refused(o: Output, needles: &[&str]) {
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
}

/// Four prompts of each tag: 24 prompts, one image each, three candidates of four steps.
const SUITE: [&str; 7] = [
    "geneval",
    "--per-tag",
    "4",
    "--images-per-prompt",
    "1",
    "--steps",
    "4",
];

fn bank(out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["bank"];
    args.extend_from_slice(&SUITE);
    args.extend_from_slice(&["--n", "3", "--out", path(out)]);
    args.extend_from_slice(extra);
    evalcot(&args)
}

/// Every file a run writes except timing.jsonl (wall time), with results' paths made relative.
fn assert_same_run(live: &Path, replay: &Path, what: &str) {
    for f in ["config.yaml", "generation.jsonl", "summary.json"] {
        let (a, b) = (
            std::fs::read(live.join(f)).unwrap(),
            std::fs::read(replay.join(f)).unwrap(),
        );
        assert!(a == b, "{what}: {f} differs");
    }
    assert_eq!(sorted_results(live), sorted_results(replay), "{what}");
    let (a, b) = (samples(live), samples(replay));
    assert_eq!(a.len(), 24, "{what}");
    assert!(a == b, "{what}: the images differ");
}

#[test]
fn replays_equal_live_runs_for_every_bankable_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("bank");
    ok(bank(&b, &[]));
    for (strategy, n) in [
        ("baseline", "3"),
        ("orm", "3"),
        ("orm", "2"),
        ("parm", "3"),
        ("oracle", "3"),
    ] {
        let live = dir.path().join(format!("live-{strategy}-{n}"));
        let replay = dir.path().join(format!("replay-{strategy}-{n}"));
        let mut args = vec!["run"];
        args.extend_from_slice(&SUITE);
        args.extend_from_slice(&["--n", n, "--strategy", strategy, "--judge", "zero-shot"]);
        args.extend_from_slice(&["--out", path(&live)]);
        ok(evalcot(&args));
        ok(evalcot(&[
            "replay",
            path(&b),
            "--strategy",
            strategy,
            "--n",
            n,
            "--judge",
            "zero-shot",
            "--out",
            path(&replay),
        ]));
        assert_same_run(&live, &replay, &format!("{strategy} N={n}"));
    }

    // The verifier benchmark's N′ = N pick is ORM's choice, its N′ = N oracle the oracle's and
    // its candidate 0 the baseline's: the same overall scores as those runs.
    let report = dir.path().join("judges").join("judges.md");
    ok(evalcot(&[
        "eval",
        "judge",
        "--bank",
        path(&b),
        "--judges",
        "zero-shot,evidence",
        "--resamples",
        "50",
        "--ablations",
        "--potential",
        "2",
        "--rollouts",
        "2",
        "--out",
        path(&report),
    ]));
    let md = std::fs::read_to_string(&report).unwrap();
    assert!(
        md.contains("## Ablations") && md.contains("## Calibration") && md.contains("## Potential"),
        "{md}"
    );
    // Values of every candidate's state after step 2 of each image with mixed outcomes: shares
    // of two rollouts.
    let values =
        std::fs::read_to_string(dir.path().join("judges").join("judges-values.csv")).unwrap();
    let rows: Vec<&str> = values.lines().skip(1).collect();
    assert!(!rows.is_empty() && rows.len().is_multiple_of(3), "{values}");
    for r in rows {
        let v: f64 = r.rsplit(',').next().unwrap().parse().unwrap();
        assert!([0.0, 0.5, 1.0].contains(&v), "{r}");
    }
    assert!(
        md.contains("within-image AUROC") && md.contains("24 images of 24 prompts"),
        "{md}"
    );
    let overall = |run: &str| {
        let s: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(run).join("summary.json")).unwrap(),
        )
        .unwrap();
        s["overall"].as_f64().unwrap()
    };
    let csv = std::fs::read_to_string(dir.path().join("judges").join("judges.csv")).unwrap();
    let row: Vec<f64> = csv
        .lines()
        .find(|l| l.starts_with("zero-shot,3,"))
        .expect("the N′ = 3 row")
        .split(',')
        .skip(1)
        .map(|v| v.parse().unwrap())
        .collect();
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(row[1], overall("replay-orm-3")), "{csv}");
    assert!(close(row[7], overall("replay-oracle-3")), "{csv}");
    assert!(close(row[8], overall("replay-baseline-3")), "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("evidence,3,")), "{csv}");
    // With a blank image every candidate of an image gets the same P(yes) from a deterministic
    // judge: every within-image pair ties.
    for judge in ["zero-shot,3,", "evidence,3,"] {
        let blank: f64 = csv
            .lines()
            .find(|l| l.starts_with(judge))
            .and_then(|l| l.split(',').nth(13))
            .and_then(|v| v.parse().ok())
            .expect("blank_within_auroc");
        assert_eq!(blank, 0.5, "{csv}");
    }
    for f in ["judges-scores.csv", "judges.png", "judges.svg"] {
        assert!(dir.path().join("judges").join(f).is_file(), "{f}");
    }
}

#[test]
fn banks_resume_shard_merge_and_bad_banks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("bank");
    ok(bank(&b, &[]));
    let job = b.join("jobs").join("00000-0000.evb");
    let whole = std::fs::read(&job).unwrap();

    // A killed bank lacks job files: a replay refuses it, the same command finishes it.
    std::fs::remove_file(&job).unwrap();
    let replay = |out: &str, extra: &[&str]| {
        let out = dir.path().join(out);
        let mut args = vec!["replay", path(&b), "--strategy", "orm", "--out"];
        args.push(path(&out));
        args.extend_from_slice(extra);
        evalcot(&args)
    };
    refused(
        replay("r1", &[]),
        &["00000-0000.evb", "incomplete", "1 of 24"],
    );
    let o = ok(bank(&b, &[]));
    assert!(text(&o.stderr).contains("1 images × 3 candidates banked now (23 were there)"));
    assert_eq!(
        std::fs::read(&job).unwrap(),
        whole,
        "the resumed job is the same"
    );

    // A corrupt or foreign job file, and a bank of another generator or settings.
    std::fs::write(&job, &whole[..whole.len() / 2]).unwrap();
    refused(replay("r2", &[]), &["00000-0000.evb", "gzip"]);
    std::fs::write(&job, &whole).unwrap();
    let manifest = b.join("bank.json");
    let text_of = std::fs::read_to_string(&manifest).unwrap();
    // Another build: refused unless --any-build, and then only after the spot check.
    let built = serde_json::from_str::<serde_json::Value>(&text_of).unwrap()["code_version"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(&manifest, text_of.replace(&built, "0.0.0 (elsewhere)")).unwrap();
    refused(replay("r6", &[]), &["bank.json", "build", "--any-build"]);
    let o = ok(replay("r6", &["--any-build"]));
    assert!(text(&o.stderr).contains("regenerated and decoded identically"));
    std::fs::write(&manifest, text_of.replace("\"base\"", "\"dpo\"")).unwrap();
    refused(
        replay("r3", &[]),
        &["00000-0000.evb", "generator dpo", "another generator"],
    );
    std::fs::write(&manifest, &text_of).unwrap();
    refused(
        bank(&b, &["--seed", "7"]),
        &["bank.json", "another bank", "seed"],
    );
    refused(replay("r4", &["--n", "4"]), &["3 candidates"]);
    for live_only in ["prm", "parm++"] {
        refused(
            evalcot(&["replay", path(&b), "--strategy", live_only]),
            &["run it live"],
        );
    }
    refused(
        evalcot(&["replay", path(dir.path()), "--strategy", "orm"]),
        &["not a bank"],
    );

    // Two shards merge into the unsharded bank, job files byte for byte.
    for k in ["0/2", "1/2"] {
        ok(bank(&dir.path().join("sharded"), &["--shard", k]));
    }
    let shards: Vec<_> = ["sharded.shard-0-of-2", "sharded.shard-1-of-2"]
        .map(|s| dir.path().join(s))
        .to_vec();
    let merged = dir.path().join("merged");
    refused(
        evalcot(&["merge", path(&shards[0]), "--out", path(&merged)]),
        &["shard 1 of 2 is missing"],
    );
    ok(evalcot(&[
        "merge",
        path(&shards[0]),
        path(&shards[1]),
        "--out",
        path(&merged),
    ]));
    assert_eq!(common::files(&merged), common::files(&b));
    // A bank shard replays as the same shard of the run.
    let live = dir.path().join("live");
    let mut args = vec!["run"];
    args.extend_from_slice(&SUITE);
    args.extend_from_slice(&["--n", "3", "--strategy", "orm", "--shard", "1/2"]);
    args.extend_from_slice(&["--out", path(&live)]);
    ok(evalcot(&args));
    let rep = dir.path().join("rep");
    refused(
        evalcot(&[
            "replay",
            path(&shards[1]),
            "--strategy",
            "orm",
            "--shard",
            "0/2",
        ]),
        &["can replay only shard 1/2"],
    );
    ok(evalcot(&[
        "replay",
        path(&shards[1]),
        "--strategy",
        "orm",
        "--out",
        path(&rep),
    ]));
    let (l, r) = (
        dir.path().join("live.shard-1-of-2"),
        dir.path().join("rep.shard-1-of-2"),
    );
    for f in ["config.yaml", "generation.jsonl", "shard.json"] {
        assert!(
            std::fs::read(l.join(f)).unwrap() == std::fs::read(r.join(f)).unwrap(),
            "{f}"
        );
    }
    for f in common::files(&b) {
        assert!(
            std::fs::read(b.join(&f)).unwrap() == std::fs::read(merged.join(&f)).unwrap(),
            "{}",
            f.display()
        );
    }
}

#[test]
fn autoregressive_replays_charge_what_the_live_run_charges() {
    // The AR generator finishes fresh candidates in one cached pass (fewer forwards than
    // stepping) and PARM's fallback finishes a partly stepped path: both must be charged as live.
    let dir = tempfile::tempdir().unwrap();
    let b = dir.path().join("bank");
    let suite = [
        "geneval",
        "--indices",
        "0,300",
        "--images-per-prompt",
        "1",
        "--n",
        "2",
        "--generator",
        "ar",
    ];
    let mut args = vec!["bank"];
    args.extend_from_slice(&suite);
    args.extend_from_slice(&["--out", path(&b)]);
    ok(evalcot(&args));
    for strategy in ["orm", "parm"] {
        let live = dir.path().join(format!("live-{strategy}"));
        let replay = dir.path().join(format!("replay-{strategy}"));
        let mut args = vec!["run"];
        args.extend_from_slice(&suite);
        args.extend_from_slice(&["--strategy", strategy, "--judge", "zero-shot"]);
        args.extend_from_slice(&["--out", path(&live)]);
        ok(evalcot(&args));
        ok(evalcot(&[
            "replay",
            path(&b),
            "--strategy",
            strategy,
            "--judge",
            "zero-shot",
            "--out",
            path(&replay),
        ]));
        for f in ["config.yaml", "generation.jsonl", "summary.json"] {
            assert!(
                std::fs::read(live.join(f)).unwrap() == std::fs::read(replay.join(f)).unwrap(),
                "{strategy}: {f} differs"
            );
        }
        assert!(
            samples(&live) == samples(&replay),
            "{strategy}: images differ"
        );
    }
}
