//! Helpers shared by the end-to-end tests: run the real binary and read its output.

#![allow(dead_code)] // each test file uses a subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `evalcot ARGS…`, optionally with `RAYON_NUM_THREADS`.
pub fn evalcot_with(args: &[&str], threads: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_evalcot"));
    cmd.args(args);
    if let Some(t) = threads {
        cmd.env("RAYON_NUM_THREADS", t);
    }
    cmd.output().expect("evalcot runs")
}

pub fn evalcot(args: &[&str]) -> Output {
    evalcot_with(args, None)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `evalcot score --detections DETS --out OUT EXTRA…`.
pub fn score_detections(dets: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["score", "--detections", path(dets), "--out", path(out)];
    args.extend_from_slice(extra);
    evalcot(&args)
}

pub fn path(p: &Path) -> &str {
    p.to_str().expect("temporary paths are UTF-8")
}

/// `evalcot world suite --images-per-prompt 1 --seed SEED --out OUT`, asserting success.
pub fn world_suite_one_image(out: &Path, seed: u64) {
    world_suite(out, seed, &[]);
}

/// The same for a few prompts (`--indices INDICES`): the same images as in the whole suite. For
/// tests that need a folder in the layout, not all 553 prompts.
pub fn world_suite_prompts(out: &Path, seed: u64, indices: &str) {
    world_suite(out, seed, &["--indices", indices]);
}

fn world_suite(out: &Path, seed: u64, extra: &[&str]) {
    let seed = seed.to_string();
    let mut args = vec![
        "world",
        "suite",
        "--images-per-prompt",
        "1",
        "--seed",
        &seed,
        "--out",
        path(out),
    ];
    args.extend_from_slice(extra);
    let o = evalcot(&args);
    assert!(o.status.success(), "{}", text(&o.stderr));
}

/// results.jsonl with the run folder replaced, sorted.
pub fn sorted_results(dir: &Path) -> Vec<String> {
    sorted_lines(&dir.join("results.jsonl"), dir)
}

pub fn sorted_lines(file: &Path, dir: &Path) -> Vec<String> {
    let root = format!("{}/", dir.display());
    let mut lines: Vec<String> = std::fs::read_to_string(file)
        .unwrap()
        .lines()
        .map(|l| l.replace(&root, "RUN/"))
        .collect();
    lines.sort();
    lines
}

/// Every file under `dir`, relative, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            if e.path().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path().strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// The sample PNGs (visible names only) and their bytes.
pub fn samples(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(dir)
        .into_iter()
        .filter(|p| {
            p.extension().is_some_and(|e| e == "png")
                && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .map(|p| {
            let bytes = std::fs::read(dir.join(&p)).unwrap();
            (p, bytes)
        })
        .collect()
}

/// `run geneval` on one prompt with `generator`; returns generation.jsonl.
pub fn run_one(generator: &str, out: &Path) -> String {
    let o = evalcot(&[
        "run",
        "geneval",
        "--generator",
        generator,
        "--limit",
        "1",
        "--images-per-prompt",
        "1",
        "--steps",
        "2",
        "--out",
        path(out),
    ]);
    assert!(o.status.success(), "{generator}: {}", text(&o.stderr));
    std::fs::read_to_string(out.join("generation.jsonl")).unwrap()
}

/// Writes `config` to DIR/KIND.yaml and runs `evalcot train KIND` on it into DIR/OUT; returns
/// the output and the output folder.
pub fn train(kind: &str, config: &str, dir: &Path, out: &str) -> (Output, PathBuf) {
    let cfg = dir.join(format!("{kind}.yaml"));
    std::fs::write(&cfg, config).expect("config written");
    let out = dir.join(out);
    let o = evalcot(&["train", kind, "--config", path(&cfg), "--out", path(&out)]);
    (o, out)
}
