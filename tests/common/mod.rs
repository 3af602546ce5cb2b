//! Helpers shared by the end-to-end tests: run the real binary and read its output.

#![allow(dead_code)] // each test file uses a subset

use std::path::Path;
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
    let seed = seed.to_string();
    let o = evalcot(&[
        "world",
        "suite",
        "--images-per-prompt",
        "1",
        "--seed",
        &seed,
        "--out",
        path(out),
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
}
