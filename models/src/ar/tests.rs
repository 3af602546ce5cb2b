//! The AR family's unit tests.
use crate::maskgit::data::{prompt_ids, to_device, HostBatch};
use crate::maskgit::dpo::{DpoTrainConfig, Pair};
use crate::maskgit::generator::{GeneratorMeta, GENERATOR_FORMAT};
use crate::maskgit::{MaskGit, MaskGitConfig};
use crate::store::module_from_bytes;
use crate::train_loop::{self};
use burn::prelude::*;
use harness::generator::{Generator, Trajectory, MASK};

use super::data::*;
use super::dpo::*;
use super::inference::*;
use super::model::*;
use super::training::*;
use crate::Cpu;

fn tiny() -> ArGenerator<Cpu> {
    let (net, bytes, tokenizer) = crate::testutil::tiny_net(true, 2, 5, 1);
    let meta = ArMeta {
        format: AR_FORMAT.into(),
        name: "ar-tiny".into(),
        net,
        tokenizer: tokenizer.meta.name.clone(),
        sampling: ArSampling {
            top_k: 50,
            ..ArSampling::default()
        },
        train: serde_json::Value::Null,
    };
    ArGenerator::from_parts(meta, bytes, tokenizer, "ar", &Default::default()).unwrap()
}

#[test]
fn cached_decoding_matches_the_full_forward() {
    // Greedy continuation through the cache must pick what the teacher-forced forward
    // ranks first at every position.
    let g = ArGenerator {
        sampling: ArSampling {
            temperature: 0.0,
            cfg_scale: 0.0,
            ..ArSampling::default()
        },
        ..tiny()
    };
    let mut t = vec![g.start("a photo of a dog", 1, 8)];
    g.run_to_end(&mut t).unwrap();
    let cfg = g.meta.net;
    let d = Default::default();
    let text = Tensor::<Cpu, 2, Int>::from_data(
        TensorData::new(prompt_ids("a photo of a dog").unwrap(), [1, cfg.text_len]),
        &d,
    );
    let input: Vec<i64> = std::iter::once(bos(&cfg) as i64)
        .chain(t[0].tokens[..63].iter().map(|&v| v as i64))
        .collect();
    let image = Tensor::<Cpu, 2, Int>::from_data(TensorData::new(input, [1, 64]), &d);
    let full: Vec<i64> = g
        .net
        .forward(text, image)
        .argmax(2)
        .into_data()
        .convert::<i64>()
        .to_vec()
        .unwrap();
    let got: Vec<i64> = t[0].tokens.iter().map(|&v| v as i64).collect();
    assert_eq!(got, full);
}

#[test]
fn steps_commit_rows_preview_the_rest_and_repeat_per_seed() {
    let g = tiny();
    let mut a = vec![
        g.start("a photo of a red cat", 3, 8),
        g.start("a photo of a cake", 4, 8),
    ];
    g.step(&mut a).unwrap();
    assert_eq!(
        a[0].tokens.iter().filter(|&&t| t != MASK).count(),
        8,
        "one row a step"
    );
    assert_eq!(a[0].prediction.len(), 64);
    assert_eq!(&a[0].prediction[..8], &a[0].tokens[..8]);
    assert!(
        a[0].forwards > 2,
        "the preview costs forwards: {}",
        a[0].forwards
    );
    g.run_to_end(&mut a).unwrap();
    assert!(a
        .iter()
        .all(|t| t.done() && !t.tokens.contains(&MASK) && t.tokens == t.prediction));
    // Alone or in a batch, the same seed gives the same image, and so does `run_to_end`
    // (one pass, no previews) against stepping: draws are per position, not per step.
    let mut alone = vec![g.start("a photo of a cake", 4, 8)];
    g.run_to_end(&mut alone).unwrap();
    assert_eq!(alone[0].tokens, a[1].tokens);
    assert!(alone[0].done() && alone[0].forwards < a[1].forwards);
    let mut stepped = vec![g.start("a photo of a cake", 4, 8)];
    while !stepped[0].done() {
        g.step(&mut stepped).unwrap();
    }
    assert_eq!(stepped[0].tokens, alone[0].tokens);
    assert_ne!(a[0].tokens, a[1].tokens);
    assert_eq!(g.decode(&a).unwrap()[0].dimensions(), (64, 64));
    let lp = g.log_prob("a photo of a cake", &a[1].tokens, 0).unwrap();
    assert!(lp.is_finite() && lp < 0.0);
    // Re-opened regions are refused with a reason.
    let r = a[0].remask(&[3], 2, 9).unwrap();
    assert!(g
        .step(&mut [r])
        .unwrap_err()
        .message()
        .contains("raster order"));
}

/// Unguided sequence log-probabilities of `grids` under `net` (what AR DPO compares).
fn sequence_lp(net: &MaskGit<Cpu>, cfg: &MaskGitConfig, rows: &[(&str, &[u32])]) -> Vec<f32> {
    let mut host = HostBatch::default();
    for (prompt, grid) in rows {
        push_raster(&mut host, &prompt_ids(prompt).unwrap(), grid, cfg);
    }
    let (t, i, g, m) = to_device::<Cpu>(host, cfg.text_len, &Default::default());
    net.masked_log_prob(t, i, g, m)
        .into_data()
        .to_vec()
        .unwrap()
}

fn dpo_config(reward: bool) -> DpoTrainConfig {
    use crate::maskgit::dpo::{PairRule, PairsConfig, RewardConfig};
    DpoTrainConfig {
        name: "ar-dpo-test".into(),
        seed: 1,
        init: "ar-tiny".into(),
        reference: None,
        pairs: PairsConfig {
            sampler: None,
            bank: None,
            judge: "none".into(),
            prompts: 2,
            samples_per_prompt: 2,
            steps: None,
            seed: 2,
            rule: PairRule::Ranked,
            min_gap: 0.0,
        },
        epochs: 8,
        batch_size: 2,
        lr: 3e-3,
        warmup_ratio: 0.0,
        weight_decay: 0.0,
        beta: 0.1,
        reward: reward.then(|| RewardConfig {
            judge: "none".into(),
            task: harness::judge::JudgeTask::Final,
            weight: 0.1,
            samples_per_step: 2,
            samples_per_prompt: 2,
            normalize: true,
            steps: None,
        }),
        checkpoint_every: 100,
        log_every: 1,
    }
}

#[test]
fn dpo_starts_at_ln2_and_shifts_probability_to_the_chosen_sequences() {
    let g = tiny();
    let prompts = ["a photo of a red cat", "a photo of a cake"];
    let mut t: Vec<Trajectory> = (0..4)
        .map(|k| g.start(prompts[k / 2], 10 + k as u64, 8))
        .collect();
    g.run_to_end(&mut t).unwrap();
    let pairs: Vec<Pair> = (0..2)
        .map(|j| Pair {
            prompt: prompts[j].into(),
            chosen: t[2 * j].tokens.clone(),
            rejected: t[2 * j + 1].tokens.clone(),
            p_chosen: 0.9,
            p_rejected: 0.1,
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let d = Default::default();
    let refused = train_dpo::<crate::CpuTrain>(
        &dpo_config(true),
        &pairs,
        &g,
        &g,
        dir.path(),
        &d,
        &mut |_, _, _| {},
    );
    assert!(refused
        .unwrap_err()
        .to_string()
        .contains("masked-token family only"));
    train_dpo::<crate::CpuTrain>(
        &dpo_config(false),
        &pairs,
        &g,
        &g,
        dir.path(),
        &d,
        &mut |_, _, _| {},
    )
    .unwrap();
    let csv = std::fs::read_to_string(dir.path().join("losses.csv")).unwrap();
    let first: f64 = csv
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!((first - std::f64::consts::LN_2).abs() < 1e-4, "{csv}");
    let meta = read_meta(dir.path()).unwrap().expect("an AR folder");
    assert_eq!(meta.name, "ar-dpo-test");
    let bytes = std::fs::read(dir.path().join("generator.bpk")).unwrap();
    let trained = ArGenerator::from_parts(meta, bytes, g.tokenizer.clone(), "trained", &d).unwrap();
    let rows: Vec<(&str, &[u32])> = pairs
        .iter()
        .flat_map(|p| {
            [
                (p.prompt.as_str(), &p.chosen[..]),
                (p.prompt.as_str(), &p.rejected[..]),
            ]
        })
        .collect();
    let before = sequence_lp(&g.net, &g.meta.net, &rows);
    let after = sequence_lp(&trained.net, &g.meta.net, &rows);
    for j in 0..2 {
        let margin = (after[2 * j] - before[2 * j]) - (after[2 * j + 1] - before[2 * j + 1]);
        assert!(margin > 0.0, "pair {j}: implicit reward margin {margin}");
    }
}

#[test]
fn warm_start_takes_a_masked_generators_weights_and_names_a_mismatch() {
    use crate::maskgit::SamplingConfig;
    let (net, bytes, tokenizer) = crate::testutil::tiny_net(false, 2, 5, 1);
    let dir = tempfile::tempdir().unwrap();
    let meta = GeneratorMeta {
        format: GENERATOR_FORMAT.into(),
        name: "masked".into(),
        net,
        tokenizer: tokenizer.meta.name.clone(),
        sampling: SamplingConfig::default(),
        train: serde_json::Value::Null,
    };
    train_loop::write_json(&dir.path().join("generator.json"), &meta).unwrap();
    std::fs::write(dir.path().join("generator.bpk"), &bytes).unwrap();
    let d = Default::default();
    let mut warm = warm_start::<Cpu>(dir.path(), &net, &tokenizer.meta.name, &d).unwrap();
    assert!(warm.causal);
    // Made bidirectional again, it is the masked-token network exactly.
    warm.causal = false;
    let masked = module_from_bytes(net.init::<Cpu>(&d), bytes, "masked").unwrap();
    let text = Tensor::<Cpu, 2, Int>::from_data(
        TensorData::new(prompt_ids("a photo of a dog").unwrap(), [1, net.text_len]),
        &d,
    );
    let image = Tensor::<Cpu, 2, Int>::from_data(
        TensorData::new((0..64).map(|v| v % 7).collect::<Vec<i64>>(), [1, 64]),
        &d,
    );
    warm.forward(text.clone(), image.clone())
        .into_data()
        .assert_approx_eq::<f32>(&masked.forward(text, image).into_data(), Default::default());
    let other = MaskGitConfig { layers: 1, ..net };
    let e = warm_start::<Cpu>(dir.path(), &other, &tokenizer.meta.name, &d).unwrap_err();
    assert!(e.to_string().contains("init: network"), "{e}");
    let e = warm_start::<Cpu>(dir.path(), &net, "another-tokenizer", &d).unwrap_err();
    assert!(e.to_string().contains("another-tokenizer"), "{e}");
    // Another family's folder is named as such, before its fields are read.
    let mut other_family = serde_json::to_value(&meta).unwrap();
    other_family["format"] = AR_FORMAT.into();
    other_family["sampling"]["top_k"] = 5.into();
    train_loop::write_json(&dir.path().join("generator.json"), &other_family).unwrap();
    let e = warm_start::<Cpu>(dir.path(), &net, &tokenizer.meta.name, &d).unwrap_err();
    assert!(
        e.to_string().contains("init: format \"evalcot-ar-1\""),
        "{e}"
    );
}
