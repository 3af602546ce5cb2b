//! The autoregressive family's training commands end to end at a tiny scale: `train ar` started
//! from the shipped masked-token generator, and `train dpo` with an AR policy, each writing a
//! generator folder that `run` takes; configurations the family cannot honour are named errors.

mod common;
use common::{path, text};

const AR: &str = "name: ar-smoke
seed: 5
steps: 2
batch_size: 2
lr: 0.0001
warmup_steps: 0
weight_decay: 0.01
uncond_prob: 0.1
tokenizer: models/weights/tokenizer-canonical-8k
init: models/weights/generator
checkpoint_every: 1
log_every: 1
net: {text_len: 16, text_vocab: 106, image_tokens: 64, codebook: 8192, d_model: 192, heads: 6, layers: 4, d_ff: 768, pos_init: sincos}
sampling: {steps: 2}
";

const DPO: &str = "name: ar-dpo-smoke
seed: 3
init: ar
pairs:
  judge: zero-shot
  prompts: 4
  samples_per_prompt: 3
  steps: 2
  seed: 4
  rule: ranked
epochs: 1
batch_size: 2
lr: 0.0001
warmup_ratio: 0.0
weight_decay: 0.01
beta: 0.1
checkpoint_every: 1
log_every: 1
";

#[test]
fn train_ar_starts_from_the_masked_generator_and_refuses_another_network() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, out) = common::train("ar", AR, tmp.path(), "ar");
    assert!(o.status.success(), "{}", text(&o.stderr));
    let meta = std::fs::read_to_string(out.join("generator.json")).unwrap();
    assert!(
        meta.contains("evalcot-ar-1") && meta.contains("\"init\""),
        "{meta}"
    );
    let gen = common::run_one(path(&out), &tmp.path().join("run"));
    assert!(gen.contains("\"generator\":\"ar-smoke\""), "{gen}");

    // A network the init folder does not hold is named with both shapes.
    let (o, _) = common::train(
        "ar",
        &AR.replace("layers: 4", "layers: 3"),
        tmp.path(),
        "other",
    );
    assert!(!o.status.success());
    let err = text(&o.stderr);
    assert!(
        err.contains("init: network") && err.contains("generator.json"),
        "{err}"
    );
}

#[test]
fn train_dpo_aligns_the_autoregressive_generator() {
    let tmp = tempfile::tempdir().unwrap();
    let (o, out) = common::train("dpo", DPO, tmp.path(), "dpo");
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("pairs from 4 prompts") && err.contains("use it with --generator"),
        "{err}"
    );
    let losses = std::fs::read_to_string(out.join("losses.csv")).unwrap();
    assert!(
        losses.starts_with("step,lr,total,dpo,accuracy,margin\n"),
        "{losses}"
    );
    let meta = std::fs::read_to_string(out.join("generator.json")).unwrap();
    assert!(
        meta.contains("evalcot-ar-1") && meta.contains("\"beta\": 0.1"),
        "{meta}"
    );
    let gen = common::run_one(path(&out), &tmp.path().join("run"));
    assert!(gen.contains("\"generator\":\"ar-dpo-smoke\""), "{gen}");

    // The reward term exists for the masked-token family only.
    let guided = DPO.replace(
        "checkpoint_every: 1",
        "reward: {judge: zero-shot, weight: 0.1, samples_per_step: 2}\ncheckpoint_every: 1",
    );
    let (o, _) = common::train("dpo", &guided, tmp.path(), "guided");
    assert!(!o.status.success());
    assert!(
        text(&o.stderr).contains("masked-token family only"),
        "{}",
        text(&o.stderr)
    );
}
