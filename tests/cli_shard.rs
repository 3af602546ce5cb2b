//! Scale-out: a run split into shards that run as parallel processes — driven through the
//! shipped Slurm scripts (with a stand-in `sbatch`) and the Kubernetes Indexed Job's own command
//! lines — merges into exactly the unsharded run; a missing, foreign, unfinished or duplicated
//! shard is refused with its name, and nothing is written.

mod common;
use common::{evalcot, path, samples, sorted_results, text};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SHARD_VARS: [&str; 7] = [
    "EVALCOT_SHARD",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_ARRAY_TASK_MIN",
    "SLURM_ARRAY_TASK_STEP",
    "SLURM_ARRAY_TASK_COUNT",
    "JOB_COMPLETION_INDEX",
    "RAYON_NUM_THREADS",
];

/// ORM with two candidates and the shipped zero-shot judge on one prompt of each tag × 2 images.
const RUN_YAML: &str = "suite: geneval
strategy: orm
judge: zero-shot
n: 2
images_per_prompt: 2
steps: 3
per_tag: 1
batch_prompts: 2
";
const IMAGES: usize = 12;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A command with no scheduler variables of the calling environment.
fn clean(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut c = Command::new(program);
    for v in SHARD_VARS {
        c.env_remove(v);
    }
    c.env("EVALCOT", env!("CARGO_BIN_EXE_evalcot"));
    c
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    o
}

/// Exit 2 with a message containing every needle; returns stderr.
fn refused(o: Output, needles: &[&str]) -> String {
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    for n in needles {
        assert!(err.contains(n), "{n:?} not in: {err}");
    }
    err
}

fn evalcot_clean(args: &[&str]) -> Output {
    clean(env!("CARGO_BIN_EXE_evalcot"))
        .args(args)
        .output()
        .unwrap()
}

/// The merged run equals the unsharded one: the same config, generation records (byte for
/// byte), results (sorted, with the folder name replaced), summary and PNG bytes.
fn assert_same_run(merged: &Path, full: &Path) {
    for f in ["config.yaml", "generation.jsonl", "summary.json"] {
        assert_eq!(
            std::fs::read_to_string(merged.join(f)).unwrap(),
            std::fs::read_to_string(full.join(f)).unwrap(),
            "{f}"
        );
    }
    assert_eq!(sorted_results(merged), sorted_results(full));
    assert_eq!(sorted_results(full).len(), IMAGES);
    // Wall time differs between machines; what must hold is one record per image.
    let timed = |dir: &Path| {
        let text = std::fs::read_to_string(dir.join("timing.jsonl")).unwrap();
        let mut keys: Vec<(u64, u64)> = text
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                (
                    v["prompt_index"].as_u64().unwrap(),
                    v["image_index"].as_u64().unwrap(),
                )
            })
            .collect();
        keys.sort();
        keys.dedup(); // a rerun shard may time an image twice; the last record counts
        keys
    };
    assert_eq!(timed(merged), timed(full));
    assert_eq!(timed(full).len(), IMAGES);
    assert_eq!(samples(merged), samples(full));
    assert_eq!(samples(full).len(), IMAGES);
}

/// A stand-in for Slurm's `sbatch --parsable [--array=LO-HI] [--dependency=…] SCRIPT ARGS…`: runs
/// the array's tasks at once as parallel processes with the variables Slurm sets, waits for
/// them (so a dependency is met by order), and prints a job id.
const FAKE_SBATCH: &str = r#"#!/bin/bash
set -euo pipefail
array=""
while [[ $1 == --* ]]; do
    case $1 in --array=*) array=${1#--array=} ;; esac
    shift
done
script=$1
shift
id=$RANDOM
if [[ -n $array ]]; then
    lo=${array%-*}
    hi=${array#*-}
    pids=()
    for ((k = lo; k <= hi; k++)); do
        SLURM_ARRAY_JOB_ID=$id SLURM_ARRAY_TASK_ID=$k SLURM_ARRAY_TASK_MIN=$lo \
            SLURM_ARRAY_TASK_MAX=$hi SLURM_ARRAY_TASK_STEP=1 \
            SLURM_ARRAY_TASK_COUNT=$((hi - lo + 1)) SLURM_CPUS_PER_TASK=1 \
            bash "$script" "$@" >"$LOGS/task-$k.log" 2>&1 &
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
else
    bash "$script" "$@" >"$LOGS/job-$id.log" 2>&1
fi
echo "$id"
"#;

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
    full: PathBuf,
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().to_path_buf();
    let config = root.join("run.yaml");
    std::fs::write(&config, RUN_YAML).unwrap();
    let full = root.join("full");
    ok(evalcot_clean(&[
        "run",
        "--config",
        path(&config),
        "--out",
        path(&full),
    ]));
    Fixture {
        _tmp: tmp,
        root,
        config,
        full,
    }
}

#[test]
fn slurm_array_shards_merge_into_the_unsharded_run_and_bad_shard_sets_are_refused() {
    let fx = fixture();
    let bin = fx.root.join("bin");
    let logs = fx.root.join("logs");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::create_dir_all(&logs).unwrap();
    let sbatch = bin.join("sbatch");
    std::fs::write(&sbatch, FAKE_SBATCH).unwrap();
    Command::new("chmod")
        .arg("+x")
        .arg(&sbatch)
        .status()
        .unwrap();
    let run = fx.root.join("slurm/parm");
    std::fs::create_dir_all(run.parent().unwrap()).unwrap();
    let o = clean("bash")
        .arg(repo().join("deploy/slurm/submit.sh"))
        .args(["3", path(&fx.config), path(&run)])
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("LOGS", &logs)
        .output()
        .unwrap();
    let log_text = || {
        common::files(&logs)
            .iter()
            .map(|f| std::fs::read_to_string(logs.join(f)).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(o.status.success(), "{}\n{}", text(&o.stderr), log_text());
    assert!(
        text(&o.stdout).contains("merge: job"),
        "{}",
        text(&o.stdout)
    );
    assert_same_run(&run, &fx.full);
    let merged = std::fs::read_to_string(run.join("merge.json")).unwrap();
    assert!(merged.contains("\"run_images\": 12"), "{merged}");

    // The merged run is an ordinary run: report and gate take it, and not a shard alone.
    let shard = |k: usize| fx.root.join(format!("slurm/parm.shard-{k}-of-3"));
    let report = fx.root.join("report");
    ok(evalcot(&["report", path(&run), "--out", path(&report)]));
    refused(
        evalcot(&["report", path(&shard(1)), "--out", path(&report)]),
        &["shard.json", "evalcot merge"],
    );
    let baseline = fx.root.join("baseline.json");
    ok(evalcot(&[
        "gate",
        "--run",
        path(&fx.full),
        "--write-baseline",
        path(&baseline),
    ]));
    ok(evalcot(&[
        "gate",
        "--baseline",
        path(&baseline),
        "--run",
        path(&run),
    ]));
    refused(
        evalcot(&[
            "gate",
            "--baseline",
            path(&baseline),
            "--run",
            path(&shard(0)),
        ]),
        &["shard"],
    );

    let merge = |dirs: &[PathBuf], out: &Path| {
        let mut args = vec!["merge".to_string()];
        args.extend(dirs.iter().map(|d| path(d).to_string()));
        args.extend(["--out".into(), path(out).into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        evalcot(&args)
    };
    let out = fx.root.join("bad");
    // A missing shard is named.
    refused(merge(&[shard(0), shard(2)], &out), &["1/3", "missing"]);
    assert!(!out.exists());
    // The same shard twice.
    refused(
        merge(&[shard(0), shard(1), shard(1), shard(2)], &out),
        &["again", "shard-1-of-3"],
    );
    // A shard of another configuration (seed) is named with the differing line.
    let other = fx.root.join("other/parm");
    ok(evalcot_clean(&[
        "run",
        "--config",
        path(&fx.config),
        "--seed",
        "99",
        "--shard",
        "1/3",
        "--out",
        path(&other),
    ]));
    let other_shard = fx.root.join("other/parm.shard-1-of-3");
    refused(
        merge(&[shard(0), other_shard, shard(2)], &out),
        &["another run", "seed: 99", "config.yaml"],
    );
    // An unfinished shard: never scored, then an image short.
    let copy = fx.root.join("copy/parm.shard-2-of-3");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    assert!(Command::new("cp")
        .arg("-r")
        .arg(shard(2))
        .arg(&copy)
        .status()
        .unwrap()
        .success());
    std::fs::remove_file(copy.join("results.jsonl")).unwrap();
    refused(
        merge(&[shard(0), shard(1), copy.clone()], &out),
        &["unfinished", "2/3", "no results.jsonl"],
    );
    let png = samples(&copy)[0].0.clone();
    std::fs::remove_file(copy.join(png)).unwrap();
    refused(
        merge(&[shard(0), shard(1), copy.clone()], &out),
        &["unfinished", "of its 4 images generated"],
    );
    // Rerunning the shard's command finishes it, and then it merges.
    ok(evalcot_clean(&[
        "run",
        "--config",
        path(&fx.config),
        "--shard",
        "2/3",
        "--out",
        path(&fx.root.join("copy/parm")),
    ]));
    ok(merge(&[shard(0), shard(1), copy], &out));
    assert_same_run(&out, &fx.full);
    // An existing run is never overwritten.
    refused(
        merge(&[shard(0), shard(1), shard(2)], &fx.full),
        &["not empty"],
    );
    assert!(!fx
        .root
        .read_dir()
        .unwrap()
        .flatten()
        .any(|e| e.file_name().to_string_lossy().ends_with(".tmp")));
}

/// `run` arguments of a two-prompt, one-image, two-step baseline as shard `shard` into `out`
/// (the last four: `--shard`, `shard`, `--out`, `out`).
fn tiny_shard_args(shard: &str, out: &Path) -> Vec<String> {
    [
        "run",
        "geneval",
        "--strategy",
        "baseline",
        "--limit",
        "2",
        "--images-per-prompt",
        "1",
        "--steps",
        "2",
        "--shard",
        shard,
        "--out",
        path(out),
    ]
    .map(String::from)
    .into()
}

#[test]
fn shard_flags_and_folders_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let args = |shard: &'static str| tiny_shard_args(shard, &out);
    let run = |shard: &'static str, env: &[(&str, &str)]| {
        let mut c = clean(env!("CARGO_BIN_EXE_evalcot"));
        c.args(args(shard));
        for (k, v) in env {
            c.env(k, v);
        }
        c.stdout(Stdio::null()).output().unwrap()
    };
    refused(run("3/3", &[]), &["out of range", "0-based"]);
    refused(
        run("auto", &[]),
        &["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"],
    );
    refused(run("auto", &[("JOB_COMPLETION_INDEX", "1")]), &["auto/N"]);
    refused(
        run("2/3", &[]),
        &["shard 2/3 has no image", "at most 2 shards"],
    );
    let o = ok(run("auto/2", &[("JOB_COMPLETION_INDEX", "1")]));
    assert!(
        text(&o.stderr).contains("evalcot merge"),
        "{}",
        text(&o.stderr)
    );
    let folder = tmp.path().join("run.shard-1-of-2");
    assert!(folder.join("shard.json").is_file());
    assert_eq!(samples(&folder).len(), 1);
    // A shard folder is not reused for another shard or an unsharded run.
    std::fs::rename(&folder, &out).unwrap();
    let mut plain = clean(env!("CARGO_BIN_EXE_evalcot"));
    let mut a = args("0/1");
    a.truncate(a.len() - 4);
    a.extend(["--out".into(), path(&out).into()]);
    refused(
        plain.args(&a).output().unwrap(),
        &["shard 1/2", "shard.json"],
    );
}

#[test]
fn kubernetes_indexed_job_commands_shard_and_merge() {
    let dir = repo().join("deploy/kubernetes");
    let docs = |file: &str| -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(dir.join(file)).unwrap();
        serde_norway::Deserializer::from_str(&text)
            .map(|d| serde::Deserialize::deserialize(d).unwrap())
            .collect()
    };
    let kind = |docs: &[serde_json::Value], k: &str| {
        docs.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("no {k}"))
            .clone()
    };
    let shards = docs("evalcot-shards.yaml");
    let (pvc, config_map, job) = (
        kind(&shards, "PersistentVolumeClaim"),
        kind(&shards, "ConfigMap"),
        kind(&shards, "Job"),
    );
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    let n = job["spec"]["completions"].as_u64().unwrap();
    let pod = &job["spec"]["template"]["spec"];
    let command: Vec<String> =
        serde_json::from_value(pod["containers"][0]["command"].clone()).unwrap();
    let at = command.iter().position(|a| a == "--shard").unwrap();
    assert_eq!(
        command[at + 1],
        format!("auto/{n}"),
        "shard count = completions"
    );
    let volumes = pod["volumes"].as_array().unwrap();
    assert!(volumes
        .iter()
        .any(|v| v["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]));
    assert!(volumes
        .iter()
        .any(|v| v["configMap"]["name"] == config_map["metadata"]["name"]));
    // The shipped run configuration is a valid one, at the paper's scale.
    let run_yaml = config_map["data"]["run.yaml"].as_str().unwrap();
    let cfg: harness::run::RunConfig = serde_norway::from_str(run_yaml).unwrap();
    assert_eq!(
        (cfg.strategy.as_str(), cfg.n, cfg.images_per_prompt),
        ("parm", 20, 4)
    );

    // Run the pods' command lines here, on the test's small configuration, all at once.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let config = root.join("run.yaml");
    std::fs::write(&config, RUN_YAML).unwrap();
    let runs = root.join("runs");
    std::fs::create_dir_all(&runs).unwrap();
    let local = |a: &str| {
        a.replace("/config/run.yaml", path(&config))
            .replace("/runs", path(&runs))
    };
    let children: Vec<_> = (0..n)
        .map(|k| {
            clean(env!("CARGO_BIN_EXE_evalcot"))
                .args(command[1..].iter().map(|a| local(a)))
                .env("JOB_COMPLETION_INDEX", k.to_string())
                .env("RAYON_NUM_THREADS", "1")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        ok(c.wait_with_output().unwrap());
    }
    let merge_job = kind(&docs("evalcot-merge.yaml"), "Job");
    let merge_cmd: Vec<String> = serde_json::from_value(
        merge_job["spec"]["template"]["spec"]["containers"][0]["command"].clone(),
    )
    .unwrap();
    assert_eq!(merge_cmd[..2], ["sh".to_string(), "-c".to_string()]);
    let script = local(&merge_cmd[2]).replace(
        "exec evalcot",
        &format!("exec {}", env!("CARGO_BIN_EXE_evalcot")),
    );
    ok(Command::new("sh").args(["-c", &script]).output().unwrap());
    let merged = runs.join("parm");
    let full = root.join("full");
    ok(evalcot_clean(&[
        "run",
        "--config",
        path(&config),
        "--out",
        path(&full),
    ]));
    assert_same_run(&merged, &full);
}

/// Shards run with `--profile` merge into one profile (phases added up, threads of all shards);
/// when only some shards were profiled, merge writes none and names the others.
#[test]
fn shard_profiles_merge_only_when_every_shard_has_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("run");
    let shard = |k: &str, profile: bool| {
        let mut c = clean(env!("CARGO_BIN_EXE_evalcot"));
        c.args(tiny_shard_args(k, &out));
        if profile {
            c.arg("--profile");
        }
        ok(c.stdout(Stdio::null()).output().unwrap());
    };
    shard("0/2", true);
    shard("1/2", true);
    let folders = |n: usize| -> Vec<String> {
        (0..n)
            .map(|k| path(&tmp.path().join(format!("run.shard-{k}-of-2"))).to_string())
            .collect()
    };
    let merge = |to: &Path| {
        let mut args = vec!["merge".to_string()];
        args.extend(folders(2));
        args.extend(["--out".to_string(), path(to).to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(evalcot(&args))
    };
    let merged = tmp.path().join("merged");
    merge(&merged);
    let read = |p: PathBuf| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
    };
    let parts: Vec<serde_json::Value> = folders(2)
        .iter()
        .map(|f| read(Path::new(f).join("profile.json")))
        .collect();
    let whole = read(merged.join("profile.json"));
    let threads = |v: &serde_json::Value| v["threads"].as_u64().unwrap();
    assert_eq!(threads(&whole), threads(&parts[0]) + threads(&parts[1]));
    let calls = |v: &serde_json::Value, name: &str| {
        v["phases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["phase"] == name)
            .unwrap()["calls"]
            .as_u64()
            .unwrap()
    };
    for name in ["generator.step", "detector"] {
        assert_eq!(
            calls(&whole, name),
            calls(&parts[0], name) + calls(&parts[1], name),
            "{name}"
        );
    }
    // Shard 1 rerun without --profile: its profile is gone, and so is the merged one.
    std::fs::remove_dir_all(tmp.path().join("run.shard-1-of-2")).unwrap();
    shard("1/2", false);
    let partial = tmp.path().join("partial");
    let o = merge(&partial);
    assert!(!partial.join("profile.json").exists());
    assert!(
        text(&o.stderr).contains("1 of the shards were run without --profile"),
        "{}",
        text(&o.stderr)
    );
}
