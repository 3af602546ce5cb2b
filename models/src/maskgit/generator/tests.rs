//! The masked-token generator's unit tests.
use crate::maskgit::data::cosine_mask_for;
use crate::maskgit::model::MaskGitConfig;
use burn::prelude::*;
use harness::generator::{Draws, Generator, Trajectory, MASK};
use harness::rng::Rng;

use super::batching::*;
use super::inference::*;
use super::meta::*;
use super::sampling::*;

#[test]
fn batching_takes_the_device_default_and_the_runs_choices() {
    let none = BatchingChoice::default();
    assert!(!none.is_set());
    assert_eq!(Batching::resolve(false, none), Batching::CPU);
    assert_eq!(Batching::resolve(true, none), Batching::GPU);
    let rows = BatchingChoice {
        slice_rows: Some(100),
        ..none
    };
    assert_eq!(Batching::resolve(true, rows).trajectories_per_forward, 512);
    assert_eq!(Batching::resolve(true, rows).rows_per_slice, 100);
    let wide = BatchingChoice {
        forward_batch: Some(64),
        ..none
    };
    assert!(wide.is_set());
    let b = Batching::resolve(false, wide);
    assert_eq!((b.trajectories_per_forward, b.rows_per_slice), (64, 512));
}
use crate::Cpu;

/// A tiny grouped generator (2×2 groups over the shipped 8×8 tokenizer), random weights.
fn tiny_grouped() -> BurnGenerator<Cpu> {
    crate::testutil::tiny_generator("tiny-g2", 2, 6)
}

/// A step over a large mixed batch (several forwards, many slices of masked rows,
/// trajectories at different steps, one finished) leaves every trajectory as stepping it
/// alone does, under each batching.
#[test]
fn batched_steps_equal_single_steps() {
    let narrow = Batching {
        trajectories_per_forward: 4,
        rows_per_slice: 16,
    };
    for batching in [Batching::CPU, narrow] {
        for mut g in [
            crate::testutil::tiny_generator("tiny", 1, 6),
            tiny_grouped(),
        ] {
            g.batching = batching;
            batched_step_equals_single_steps(&g);
        }
    }
}

fn batched_step_equals_single_steps(g: &BurnGenerator<Cpu>) {
    let prompts = ["a photo of a red dog", "a photo of two cups", ""];
    let mut batch: Vec<Trajectory> = (0..45)
        .map(|i| g.start(prompts[i % 3], 100 + i as u64, 6))
        .collect();
    // Different steps (so different masked counts), and one trajectory finished.
    for (i, t) in batch.iter_mut().enumerate() {
        for _ in 0..(i % 3) {
            g.step(std::slice::from_mut(t)).unwrap();
        }
    }
    while !batch[7].done() {
        g.step(std::slice::from_mut(&mut batch[7])).unwrap();
    }
    let mut alone = batch.clone();
    g.step(&mut batch).unwrap();
    for t in alone.iter_mut() {
        g.step(std::slice::from_mut(t)).unwrap();
    }
    for (a, b) in batch.iter().zip(&alone) {
        assert_eq!(a.tokens, b.tokens);
        assert_eq!(a.prediction, b.prediction);
        assert_eq!(a.step, b.step);
    }
}

/// The device's draw is the host's inverse CDF: on rows with known probabilities and
/// uniforms away from the bin edges, every temperature picks the host's code, with the same
/// guided log-probability.
#[test]
fn device_draws_pick_the_hosts_codes() {
    let device = Default::default();
    let k = 8;
    let cond: Vec<f32> = (0..3 * k)
        .map(|i| ((i * 7) % 11) as f32 * 0.4 - 1.0)
        .collect();
    let unc: Vec<f32> = (0..3 * k).map(|i| ((i * 5) % 7) as f32 * 0.3).collect();
    let logits =
        Tensor::<Cpu, 2>::from_data(TensorData::new([cond, unc].concat(), [6, k]), &device);
    for temperature in [1.0, 0.6, 0.0] {
        let mut checked = 0;
        let sampling = SamplingConfig {
            temperature,
            ..SamplingConfig::default()
        };
        let host = guided_log_probs(logits.clone(), 3, sampling.cfg_scale, "t").unwrap();
        for u in [0.03f64, 0.31, 0.52, 0.77, 0.96] {
            // Skip a uniform that lands within 1e-4 of an edge of its row's CDF.
            let near_edge = host.chunks(k).any(|row| {
                let top = row.iter().cloned().fold(f32::MIN, f32::max) as f64;
                let t = if temperature == 0.0 { 1.0 } else { temperature };
                let w: Vec<f64> = row.iter().map(|&l| ((l as f64 - top) / t).exp()).collect();
                let total: f64 = w.iter().sum();
                let mut acc = 0.0;
                w.iter().any(|x| {
                    acc += x / total;
                    (acc - u).abs() < 1e-4
                })
            });
            if near_edge && temperature != 0.0 {
                continue;
            }
            let picks = device_draws(logits.clone(), &[u as f32; 3], sampling, "t").unwrap();
            for (row, (code, lp)) in host.chunks(k).zip(picks) {
                let want = draw(row, u, temperature);
                assert_eq!(code as usize, want, "temperature {temperature}, u {u}");
                assert!((lp - row[want]).abs() < 1e-6);
                checked += 1;
            }
        }
        assert!(
            checked >= 9,
            "temperature {temperature}: {checked} draws checked"
        );
    }
}

/// A NaN or +∞ logit is an error naming the generator, on the device as on the host.
#[test]
fn device_draws_refuse_non_finite_logits() {
    let device = Default::default();
    for bad in [f32::NAN, f32::INFINITY] {
        let mut v = vec![0.5f32; 2 * 4];
        v[1] = bad;
        let logits = Tensor::<Cpu, 2>::from_data(TensorData::new(v, [2, 4]), &device);
        for temperature in [1.0, 0.5, 0.0] {
            let sampling = SamplingConfig {
                temperature,
                ..SamplingConfig::default()
            };
            let e = device_draws(logits.clone(), &[0.3], sampling, "g7").unwrap_err();
            assert!(e.is_non_finite(), "{e:?}");
            assert!(
                e.message().contains("generator g7 produced a non-finite"),
                "{e}"
            );
        }
    }
}

/// Whole generations with device draws follow the host's: the same streams of uniforms and
/// noise, codes that differ only where an f32 and an f64 cumulative sum disagree.
#[test]
fn device_draws_follow_the_host_draws() {
    device_draws_follow_host(crate::testutil::tiny_generator("tiny", 1, 6));
    device_draws_follow_host(tiny_grouped());
}

fn device_draws_follow_host(mut g: BurnGenerator<Cpu>) {
    let prompts = ["a photo of a red dog", "a photo of two cups", ""];
    let start = |g: &BurnGenerator<Cpu>| -> Vec<Trajectory> {
        (0..24)
            .map(|i| g.start(prompts[i % 3], 300 + i as u64, 6))
            .collect()
    };
    let mut host = start(&g);
    g.run_to_end(&mut host).unwrap();
    g.draws = Draws::Device;
    let mut device = start(&g);
    g.run_to_end(&mut device).unwrap();
    let (mut same, mut all) = (0, 0);
    for (a, b) in host.iter().zip(&device) {
        assert!(a.done() && b.done());
        assert!(b
            .tokens
            .iter()
            .all(|&v| v != MASK && (v as usize) < g.config().codebook));
        all += a.tokens.len();
        same += a
            .tokens
            .iter()
            .zip(&b.tokens)
            .filter(|(x, y)| x == y)
            .count();
    }
    assert!(same * 100 >= all * 95, "{same} of {all} tokens agree");
}

/// The host draws are the reference every recorded run used: a fixed generation of the tiny
/// test network, pinned token by token, catches any change to the sampling loop's numbers
/// (the random stream, the draw, the confidences, the re-masking order).
#[test]
fn host_draws_reproduce_the_recorded_tokens() {
    let g = crate::testutil::tiny_generator("tiny", 1, 6);
    let mut t = vec![g.start("a photo of two cups", 2024, 6)];
    g.run_to_end(&mut t).unwrap();
    let sum: u64 = t[0]
        .tokens
        .iter()
        .enumerate()
        .map(|(i, &v)| (i as u64 + 1) * v as u64)
        .sum();
    assert_eq!((&t[0].tokens[..8], sum), GOLDEN, "{:?}", t[0].tokens);
}

// Recorded with the host draws, whose base-generator images were byte-identical to the build
// before them (all 192 PNGs of a 48-prompt baseline sample).
const GOLDEN: (&[u32], u64) = (&[457, 266, 491, 131, 400, 303, 420, 132], 593_691);

#[test]
fn grouped_generation_commits_and_remasks_whole_groups() {
    let g = tiny_grouped();
    let group_of = g.config().group_of();
    let run = || {
        let mut batch: Vec<Trajectory> = (0..3)
            .map(|i| g.start("a photo of a red dog", 10 + i, 6))
            .collect();
        let mut masked_counts = Vec::new();
        while !batch[0].done() {
            g.step(&mut batch).unwrap();
            for t in &batch {
                // Every group is either wholly masked or wholly committed.
                for grp in 0..16 {
                    let states: Vec<bool> = (0..64)
                        .filter(|&p| group_of[p] == grp)
                        .map(|p| t.tokens[p] == MASK)
                        .collect();
                    assert!(states.iter().all(|&m| m == states[0]), "group {grp} split");
                }
            }
            masked_counts.push(batch[0].masked());
        }
        (batch, masked_counts)
    };
    let (a, counts) = run();
    assert_eq!(*counts.last().unwrap(), 0);
    assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
    assert!(counts[0] > 0 && counts[0] < 64, "{counts:?}");
    let (b, _) = run();
    assert_eq!(
        a.iter().map(|t| &t.tokens).collect::<Vec<_>>(),
        b.iter().map(|t| &t.tokens).collect::<Vec<_>>()
    );
    // Batching is only for speed.
    let mut alone = vec![g.start("a photo of a red dog", 11, 6)];
    while !alone[0].done() {
        g.step(&mut alone).unwrap();
    }
    assert_eq!(alone[0].tokens, a[1].tokens);
    let lp = g.log_prob("a photo of a red dog", &a[0].tokens, 5).unwrap();
    assert!(lp.is_finite() && lp < 0.0, "{lp}");
    assert_eq!(g.decode(&a).unwrap().len(), 3);
}

#[test]
fn token_draws_follow_the_temperature() {
    let logp: Vec<f32> = [0.1f64, 0.6, 0.3].iter().map(|p| p.ln() as f32).collect();
    // Temperature 1: inverse CDF of the distribution as given.
    assert_eq!(draw(&logp, 0.05, 1.0), 0);
    assert_eq!(draw(&logp, 0.5, 1.0), 1);
    assert_eq!(draw(&logp, 0.95, 1.0), 2);
    // Temperature 0: the most likely code whatever u.
    assert!([0.0, 0.5, 0.99].iter().all(|&u| draw(&logp, u, 0.0) == 1));
    // Temperature ½ squares the odds: p ∝ (0.01, 0.36, 0.09) = (0.0217, 0.7826, 0.1957).
    assert_eq!(draw(&logp, 0.03, 0.5), 1);
    assert_eq!(draw(&logp, 0.80, 0.5), 1);
    assert_eq!(draw(&logp, 0.81, 0.5), 2);
}

#[test]
fn grouped_training_masks_cover_whole_groups() {
    let net = MaskGitConfig {
        group: 2,
        ..MaskGitConfig::default()
    };
    let of = net.group_of();
    for seed in 0..20 {
        let m = cosine_mask_for(&net, &mut Rng::new(seed));
        assert!(m.iter().any(|&x| x));
        for p in 0..64 {
            for q in 0..64 {
                if of[p] == of[q] {
                    assert_eq!(m[p], m[q]);
                }
            }
        }
    }
    // With groups of one it is the plain cosine mask, draw for draw.
    let plain = MaskGitConfig::default();
    assert_eq!(
        cosine_mask_for(&plain, &mut Rng::new(3)),
        super::super::data::cosine_mask(&mut Rng::new(3), 64)
    );
}
