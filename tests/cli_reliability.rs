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

/// Deterministic pseudo-random jitters (xorshift), so that kills land inside a PNG write, a
/// record append, a batch, the start-up or the final scoring.
struct Jitter(u64);

impl Jitter {
    fn next(&mut self, below_ms: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(self.0 % below_ms.max(1))
    }
}

/// One kill: what it waited for, the jitter, whether the process was still running, and how
/// many images the folder held afterwards.
type Kill = (&'static str, u128, bool, usize);

/// Starts the run in `dir`, waits until `ready(dir)` or the run ends (or `patience` passes),
/// then `jitter` more, and SIGKILLs it if it still runs. Checks what the folder holds.
fn kill_once(
    dir: &Path,
    threads: &str,
    what: &'static str,
    ready: impl Fn(&Path) -> bool,
    patience: Duration,
    jitter: Duration,
) -> Kill {
    let mut child = spawn(dir, threads);
    let deadline = Instant::now() + patience;
    while !ready(dir) && child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(jitter);
    let killed = child.try_wait().unwrap().is_none();
    if killed {
        child.kill().unwrap(); // SIGKILL
    }
    let status = child.wait().unwrap();
    assert!(killed || status.success(), "{what}: run failed: {status}");
    (what, jitter.as_millis(), killed, check_killed_folder(dir))
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
    let started = Instant::now();
    let err = finish(eight.path(), "8");
    let resume = started.elapsed();
    assert!(
        err.contains(&format!("0 images generated now ({IMAGES} resumed)")),
        "{err}"
    );
    assert_eq!(sorted_results(eight.path()), want);

    // Killed with SIGKILL at pseudo-random moments, alternating one and two threads, each time
    // rerun in the same folder: once during start-up, then each time just after the run records
    // a new image (mid-generation), then once the images are all there (start-up or scoring).
    // (Batches run one per thread at once, so with eight threads all 16 images start together:
    // no kill could fall between.) Each kill waits for progress rather than for a fixed time,
    // so a slow or stalled machine cannot make them all land after the last image; should one
    // still do so, the folder is checked, and the round starts again in a fresh folder.
    let mut jitter = Jitter(0x9e37_79b9_7f4a_7c15);
    let patience = duration * 4;
    let mut kills: Vec<Kill> = Vec::new();
    let mut mid_run = 0;
    let threads = |i: usize| if i.is_multiple_of(2) { "1" } else { "2" };
    let scoring = resume.as_millis() as u64 + 200;
    for round in 0..3 {
        let cut = tempfile::tempdir().unwrap();
        let dir = cut.path();
        kills.push(kill_once(
            dir,
            "1",
            "start-up",
            |_| false,
            Duration::ZERO,
            Duration::from_millis(150),
        ));
        let mut i = 1;
        while recorded(dir) < IMAGES && i < 4 * IMAGES {
            let before = recorded(dir);
            let k = kill_once(
                dir,
                threads(i),
                "a new record",
                |d| recorded(d) > before,
                patience,
                jitter.next(60),
            );
            mid_run += usize::from(k.2 && k.3 < IMAGES);
            kills.push(k);
            i += 1;
        }
        kills.push(kill_once(
            dir,
            threads(i),
            "all recorded",
            |_| true,
            Duration::ZERO,
            jitter.next(scoring),
        ));
        if round == 0 {
            // A stale temporary from a killed writer is never counted, and is tidied away on
            // resume.
            let stale = dir.join("00003/samples/.0001.png.999999.tmp");
            std::fs::create_dir_all(stale.parent().unwrap()).unwrap();
            std::fs::write(&stale, b"\x89PNG\r\n\x1a\n half").unwrap();
        }
        finish(dir, "2");
        assert_eq!(sorted_results(dir), want);
        assert_eq!(
            sorted_lines(&dir.join("generation.jsonl"), dir),
            want_gen,
            "one record per image, none twice"
        );
        assert_eq!(samples(dir), want_png);
        let leftovers: Vec<_> = files(dir)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
        if mid_run >= 3 {
            break;
        }
    }
    eprintln!("(waited for, + ms, killed, images recorded): {kills:?}");
    assert!(
        mid_run >= 3,
        "too few kills mid-run in three folders: {kills:?}"
    );
}

/// Unmounts on drop, so that a failing assertion leaves no mount behind.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Needs root (mounts a 200 KiB tmpfs): `cargo test --test cli_reliability -- --ignored`, as
/// `.ci/run` does.
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
    // Run on purpose (CI does, as root): a machine that cannot mount fails the test rather
    // than passing it untested.
    assert!(ok, "cannot mount a tmpfs at {} (needs root)", mnt.display());
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
