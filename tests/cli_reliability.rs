//! Reliability of `evalcot run`: a run killed with SIGKILL at any moment and rerun finishes with
//! the results of an uninterrupted run (no image lost, none counted twice, no half-written PNG
//! counted), and results do not depend on RAYON_NUM_THREADS. A full disk fails cleanly and
//! resumes (root only: it mounts a small tmpfs).

mod common;
use common::{files, path, samples, sorted_lines, sorted_results, text};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// 8 prompts × 2 images, ORM with two candidates and the shipped zero-shot judge, one prompt per
/// batch so that records land often.
fn run_args(out: &Path) -> Vec<String> {
    [
        "run",
        "geneval",
        "--strategy",
        "orm",
        "--judge",
        "zero-shot",
        "--n",
        "2",
        "--indices",
        "0-7",
        "--images-per-prompt",
        "2",
        "--steps",
        "3",
        "--batch-prompts",
        "1",
        "--out",
        path(out),
    ]
    .map(String::from)
    .to_vec()
}

const IMAGES: usize = 16;

fn spawn(out: &Path, threads: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_evalcot"))
        .args(run_args(out))
        .env("RAYON_NUM_THREADS", threads)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("evalcot starts")
}

/// Runs to completion, asserting success.
fn finish(out: &Path, threads: &str) -> String {
    let o = spawn(out, threads).wait_with_output().unwrap();
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    err
}

/// What a killed run folder may hold: complete record lines (a last line without newline is a
/// torn write, dropped on resume), one per image, each naming a PNG that is whole; and every
/// visible PNG decodes (it was renamed into place only once complete). Returns the records.
fn check_killed_folder(dir: &Path) -> usize {
    let gen = dir.join("generation.jsonl");
    let text = std::fs::read_to_string(&gen).unwrap_or_default();
    let complete = &text[..text.rfind('\n').map_or(0, |i| i + 1)];
    let mut keys = BTreeSet::new();
    for line in complete.lines() {
        let v: serde_json::Value = serde_json::from_str(line).expect("whole record line");
        let key = (
            v["prompt_index"].as_u64().unwrap(),
            v["image_index"].as_u64().unwrap(),
        );
        assert!(keys.insert(key), "image {key:?} recorded twice");
        let png = dir.join(format!("{:05}/samples/{:04}.png", key.0, key.1));
        image::open(&png).unwrap_or_else(|e| panic!("{}: {e}", png.display()));
    }
    for (p, bytes) in samples(dir) {
        image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    }
    keys.len()
}

/// Complete record lines of `generation.jsonl` so far.
fn recorded(dir: &Path) -> usize {
    std::fs::read(dir.join("generation.jsonl"))
        .map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count())
}

/// When to kill: after `records` images are recorded, plus `jitter` (so that kills land inside
/// a PNG write, a record append, a batch, or the final scoring). Deterministic pseudo-random, plus
/// one kill during start-up and one during scoring.
fn kill_points() -> Vec<(usize, Duration)> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut points = vec![(0, Duration::from_millis(150))];
    let mut at = 0;
    for _ in 0..5 {
        at += 1 + next(3) as usize;
        points.push((at, Duration::from_millis(next(60))));
    }
    points.push((IMAGES, Duration::from_millis(next(40))));
    points
}

#[test]
fn sigkill_at_random_moments_then_rerun_equals_an_uninterrupted_run_at_any_thread_count() {
    // Uninterrupted, one thread.
    let reference = tempfile::tempdir().unwrap();
    let started = Instant::now();
    finish(reference.path(), "1");
    let duration = started.elapsed();
    let want = sorted_results(reference.path());
    assert_eq!(want.len(), IMAGES);
    let want_gen = sorted_lines(&reference.path().join("generation.jsonl"), reference.path());
    let want_png = samples(reference.path());
    assert_eq!(want_png.len(), IMAGES);

    // Uninterrupted, eight threads, twice (the second run of the same folder resumes nothing):
    // the same results, records and PNG bytes.
    let eight = tempfile::tempdir().unwrap();
    finish(eight.path(), "8");
    assert_eq!(sorted_results(eight.path()), want);
    assert_eq!(samples(eight.path()), want_png);
    let err = finish(eight.path(), "8");
    assert!(
        err.contains(&format!("0 images generated now ({IMAGES} resumed)")),
        "{err}"
    );
    assert_eq!(sorted_results(eight.path()), want);

    // Killed with SIGKILL at pseudo-random moments (start-up, generation, scoring), alternating
    // one and two threads, each time rerun in the same folder. (Batches run one per thread at
    // once, so with eight threads all 16 images start together: no kill could fall between.)
    let cut = tempfile::tempdir().unwrap();
    let mut kills = Vec::new();
    for (i, (records, jitter)) in kill_points().into_iter().enumerate() {
        let threads = if i % 2 == 0 { "1" } else { "2" };
        let mut child = spawn(cut.path(), threads);
        let deadline = Instant::now() + duration * 4;
        while recorded(cut.path()) < records
            && child.try_wait().unwrap().is_none()
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(jitter);
        let killed = child.try_wait().unwrap().is_none();
        if killed {
            child.kill().unwrap(); // SIGKILL
        }
        let status = child.wait().unwrap();
        assert!(killed || status.success(), "run {i} failed: {status}");
        let done = check_killed_folder(cut.path());
        kills.push((records, jitter.as_millis(), killed, done));
    }
    eprintln!("(kill after records, + ms, killed, images recorded): {kills:?}");
    let mid_run = kills.iter().filter(|k| k.2 && k.3 < IMAGES).count();
    assert!(mid_run >= 3, "too few kills mid-run: {kills:?}");
    // A stale temporary from a killed writer is never counted, and is tidied away on resume.
    let stale = cut.path().join("00003/samples/.0001.png.999999.tmp");
    std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
    std::fs::write(&stale, b"\x89PNG\r\n\x1a\n half").unwrap();
    finish(cut.path(), "2");
    assert_eq!(sorted_results(cut.path()), want);
    assert_eq!(
        sorted_lines(&cut.path().join("generation.jsonl"), cut.path()),
        want_gen,
        "one record per image, none twice"
    );
    assert_eq!(samples(cut.path()), want_png);
    let leftovers: Vec<_> = files(cut.path())
        .into_iter()
        .filter(|p| p.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Unmounts on drop, so that a failing assertion leaves no mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Needs root (mounts a 200 KiB tmpfs): `cargo test --test cli_reliability -- --ignored`.
#[test]
#[ignore = "mounts a tmpfs: root only"]
fn a_full_disk_fails_cleanly_and_the_run_resumes_after_space_is_freed() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs", path(&mnt)])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("skipped: cannot mount a tmpfs here");
        return;
    }
    let _guard = Mount(mnt.clone());
    let args = |out: &Path| {
        [
            "run",
            "geneval",
            "--indices",
            "0-19",
            "--images-per-prompt",
            "2",
            "--steps",
            "2",
            "--out",
            path(out),
        ]
        .map(String::from)
        .to_vec()
    };
    let out = mnt.join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_evalcot"))
        .args(args(&out))
        .output()
        .unwrap();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    assert!(err.contains(path(&out)), "{err}");
    let recorded = check_killed_folder(&out);
    assert!(recorded < 40, "{recorded}");
    assert!(!out.join("results.jsonl").exists());
    assert!(files(&out)
        .iter()
        .all(|p| !p.to_string_lossy().ends_with(".tmp")));
    // More space: the same command finishes with an uninterrupted run's results.
    let st = Command::new("mount")
        .args(["-o", "remount,size=8m", path(&mnt)])
        .status()
        .unwrap();
    assert!(st.success());
    let o = Command::new(env!("CARGO_BIN_EXE_evalcot"))
        .args(args(&out))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    let reference = dir.path().join("reference");
    let o = Command::new(env!("CARGO_BIN_EXE_evalcot"))
        .args(args(&reference))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(sorted_results(&out), sorted_results(&reference));
}
