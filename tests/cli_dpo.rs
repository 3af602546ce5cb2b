//! `evalcot train dpo` end to end on the shipped base generator and zero-shot judge at a tiny
//! scale: pairs are built and cached, training writes a generator folder that `run` takes, a
//! rerun resumes instead of starting over, and bad configs are named errors.

mod common;
use common::{evalcot, path, text};

const CONFIG: &str = "name: dpo-smoke
seed: 3
init: base
pairs:
  judge: zero-shot
  prompts: 8
  samples_per_prompt: 3
  steps: 3
  seed: 4
epochs: 1
batch_size: 2
lr: 0.0001
warmup_ratio: 0.0
weight_decay: 0.01
beta: 0.1
reward:
  judge: zero-shot
  weight: 0.1
  samples_per_step: 2
  steps: 2
checkpoint_every: 1
log_every: 1
";

#[test]
fn train_dpo_writes_a_runnable_generator_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, out) = common::train("dpo", CONFIG, tmp.path(), "dpo");
    let cfg = tmp.path().join("dpo.yaml");
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("pairs from 8 prompts"), "{err}");
    for f in [
        "generator.json",
        "generator.bpk",
        "losses.csv",
        "pairs.jsonl",
        "pairs.json",
        "samples.jsonl",
        "samples.json",
        "train.yaml",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let meta = std::fs::read_to_string(out.join("generator.json")).unwrap();
    assert!(
        meta.contains("\"name\": \"dpo-smoke\"") && meta.contains("\"beta\": 0.1"),
        "{meta}"
    );
    let losses = std::fs::read_to_string(out.join("losses.csv")).unwrap();
    assert!(
        losses.starts_with("step,lr,total,dpo,accuracy,margin,reward,reward_term"),
        "{losses}"
    );
    let pairs = std::fs::read_to_string(out.join("pairs.jsonl")).unwrap();

    // A finished run reruns from its checkpoint and cached pairs: same files.
    let o = evalcot(&["train", "dpo", "--config", path(&cfg), "--out", path(&out)]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert_eq!(
        std::fs::read_to_string(out.join("losses.csv")).unwrap(),
        losses
    );
    assert_eq!(
        std::fs::read_to_string(out.join("pairs.jsonl")).unwrap(),
        pairs
    );
    // The rerun read the cached samples: a broken cache is named by file and line.
    let samples = out.join("samples.jsonl");
    let cache = std::fs::read_to_string(&samples).unwrap();
    std::fs::write(&samples, cache.replacen('{', "{oops", 1)).unwrap();
    let o = evalcot(&["train", "dpo", "--config", path(&cfg), "--out", path(&out)]);
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("samples.jsonl:1"),
        "{}",
        text(&o.stderr)
    );
    std::fs::write(&samples, cache).unwrap();

    // The aligned generator runs like any other, and so do the shipped ones by name.
    let trained = path(&out).to_string();
    for (generator, name) in [
        (trained.as_str(), "dpo-smoke"),
        ("dpo", "dpo"),
        ("dpo-iter", "dpo-iter"),
        ("dpo-iter-guided", "dpo-iter-guided"),
    ] {
        let gen = common::run_one(generator, &tmp.path().join(format!("run-{name}")));
        assert!(gen.contains(&format!("\"generator\":\"{name}\"")), "{gen}");
    }

    // Named errors: a bad config value.
    let (o, _) = common::train(
        "dpo",
        &CONFIG.replace("beta: 0.1", "beta: 0"),
        tmp.path(),
        "y",
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("dpo.yaml") && text(&o.stderr).contains("beta"),
        "{}",
        text(&o.stderr)
    );
}
