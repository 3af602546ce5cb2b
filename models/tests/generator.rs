//! The tokenizer and generator on tiny configurations: exact resume, the step API's guarantees
//! (batching does not change a trajectory, re-masking touches only the re-opened positions,
//! log-probabilities are deterministic), and architecture checks.

use harness::generator::{Generator, Trajectory, MASK};
use models::maskgit::{BurnGenerator, GeneratorTrainConfig, MaskGitConfig, SamplingConfig};
use models::vq::{VqNetConfig, VqTokenizer, VqTrainConfig};
use models::{Cpu, CpuTrain};
use std::path::Path;

fn tiny_vq(steps: usize) -> VqTrainConfig {
    VqTrainConfig {
        name: "tiny-vq".into(),
        seed: 3,
        steps,
        batch_size: 4,
        lr: 2e-3,
        warmup_steps: 1,
        commit_beta: 0.25,
        restart_every: 2,
        background_weight: 0.5,
        smooth_background: Some(3),
        perceptual: None,
        style: world::Style::Natural,
        checkpoint_every: 2,
        log_every: 1,
        net: VqNetConfig {
            c1: 8,
            c2: 16,
            blocks: 1,
            code_dim: 8,
            codebook: 32,
            ..VqNetConfig::default()
        },
        init: None,
        decoder_only: false,
    }
}

fn tiny_gen(steps: usize, tokenizer: &Path) -> GeneratorTrainConfig {
    GeneratorTrainConfig {
        name: "tiny-gen".into(),
        seed: 5,
        steps,
        batch_size: 4,
        lr: 1e-3,
        warmup_steps: 1,
        weight_decay: 0.0,
        uncond_prob: 0.25,
        tokenizer: tokenizer.to_path_buf(),
        checkpoint_every: 2,
        log_every: 1,
        snapshot_every: 2,
        net: MaskGitConfig {
            codebook: 32,
            d_model: 32,
            heads: 2,
            layers: 1,
            d_ff: 64,
            ..MaskGitConfig::default()
        },
        micro_batches: 1,
        sampling: SamplingConfig {
            steps: 6,
            ..SamplingConfig::default()
        },
    }
}

fn losses(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("losses.csv")).unwrap()
}

/// A training run into a folder, reporting progress.
type TrainFn<'a> = dyn Fn(&Path, &mut dyn FnMut(usize, usize, &[f64])) + 'a;

/// Runs `train` once uninterrupted and once killed after `kill_at` (resumed by a second call);
/// returns both output folders.
fn full_and_resumed(train: &TrainFn<'_>, kill_at: usize) -> (tempfile::TempDir, tempfile::TempDir) {
    let full = tempfile::tempdir().unwrap();
    train(full.path(), &mut |_, _, _| {});
    let resumed = tempfile::tempdir().unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        train(resumed.path(), &mut |step, _, _| {
            assert!(step != kill_at, "killed");
        });
    }));
    assert!(r.is_err(), "the simulated kill happened");
    train(resumed.path(), &mut |_, _, _| {});
    (full, resumed)
}

/// One test function: parallel training in test threads would share the CPU backend's pool.
#[test]
fn tokenizer_and_generator_train_resume_and_sample_by_the_step_api() {
    let device = Default::default();
    let vq = tiny_vq(4);
    let (tok_full, tok_resumed) = full_and_resumed(
        &|out, progress| {
            models::vq::train::<CpuTrain>(&vq, out, &device, progress).unwrap();
        },
        3,
    );
    assert_eq!(losses(tok_full.path()), losses(tok_resumed.path()));
    let tok = VqTokenizer::<Cpu>::load_dir(tok_full.path(), &device).unwrap();
    let img = world::random_scene(4, 2).image;
    let grid = tok.encode(std::slice::from_ref(&img)).remove(0);
    assert_eq!(grid.len(), 64);
    assert!(grid.iter().all(|&t| t < 32));
    let decoded = tok.decode(&[&grid]).unwrap();
    assert_eq!(decoded[0].dimensions(), (64, 64));
    assert!(tok
        .decode(&[&[40u32; 64][..]])
        .unwrap_err()
        .message()
        .contains("outside"));

    decoder_only_training_keeps_every_token(&tok, tok_full.path(), &img);

    let gcfg = tiny_gen(4, tok_full.path());
    let (gen_full, gen_resumed) = full_and_resumed(
        &|out, progress| {
            models::maskgit::train::<CpuTrain>(&gcfg, out, &device, progress).unwrap();
        },
        3,
    );
    assert_eq!(losses(gen_full.path()), losses(gen_resumed.path()));
    assert!(gen_full
        .path()
        .join("snapshots/step-2/generator.bpk")
        .exists());
    let gen = BurnGenerator::<Cpu>::load_dir(gen_full.path(), tok_full.path(), &device).unwrap();

    batching_does_not_change_a_trajectory(&gen);
    remask_regenerates_only_the_reopened_positions(&gen);
    log_prob_is_deterministic_and_finite(&gen);
    prompts_outside_the_vocabulary_are_errors(&gen);

    // A generator refuses a tokenizer it was not trained with.
    let other = tempfile::tempdir().unwrap();
    let mut vq2 = tiny_vq(1);
    vq2.name = "other-vq".into();
    models::vq::train::<CpuTrain>(&vq2, other.path(), &device, &mut |_, _, _| {}).unwrap();
    let err = BurnGenerator::<Cpu>::load_dir(gen_full.path(), other.path(), &device)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("tiny-vq") && err.contains("other-vq"), "{err}");

    micro_batches_train_the_same_model_on_any_thread_count(tok_full.path(), &gcfg);
}

/// Cutting each batch into micro-batches differentiated in parallel trains the same model up to
/// float rounding, and gives identical numbers and weights on one worker thread or two.
fn micro_batches_train_the_same_model_on_any_thread_count(tok: &Path, one: &GeneratorTrainConfig) {
    let device = Default::default();
    let cfg = GeneratorTrainConfig {
        micro_batches: 2,
        ..one.clone()
    };
    let train_on = |threads: usize, cfg: &GeneratorTrainConfig| {
        let out = tempfile::tempdir().unwrap();
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                models::maskgit::train::<CpuTrain>(cfg, out.path(), &device, &mut |_, _, _| {})
                    .unwrap()
            });
        out
    };
    let (a, b, whole) = (train_on(1, &cfg), train_on(2, &cfg), train_on(2, one));
    assert_eq!(losses(a.path()), losses(b.path()));
    // The weight files differ in their random parameter ids, so compare what the weights do:
    // one image drawn from each, and its log-probability.
    let draw = |d: &tempfile::TempDir| {
        let gen = BurnGenerator::<Cpu>::load_dir(d.path(), tok, &device).unwrap();
        let mut t = vec![gen.start("a photo of a dog", 11, 6)];
        gen.run_to_end(&mut t).unwrap();
        let lp = gen.log_prob("a photo of a dog", &t[0].tokens, 1).unwrap();
        (t.remove(0).tokens, lp)
    };
    assert!(
        draw(&a) == draw(&b),
        "one thread and two trained different weights"
    );
    let rows = |d: &tempfile::TempDir| -> Vec<Vec<f64>> {
        losses(d.path())
            .lines()
            .skip(1)
            .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
            .collect()
    };
    let (split, unsplit) = (rows(&a), rows(&whole));
    assert_eq!(split.len(), unsplit.len());
    for (s, u) in split.iter().zip(&unsplit) {
        for (x, y) in s.iter().zip(u) {
            assert!((x - y).abs() <= 1e-4 * y.abs().max(1.0), "{s:?} vs {u:?}");
        }
    }
    let mut bad = cfg.clone();
    bad.micro_batches = 0;
    assert!(bad.validate().unwrap_err().contains("micro_batches (0)"));
    bad.micro_batches = 5;
    assert!(bad.validate().unwrap_err().contains("batch_size (4)"));
}

/// A decoder-only fine-tune of `tok` (trained in `dir`) gives every image the same tokens and
/// decodes them differently; it refuses to run without `init` or with code restarts.
fn decoder_only_training_keeps_every_token(
    tok: &VqTokenizer<Cpu>,
    dir: &Path,
    img: &world::image::RgbImage,
) {
    let device = Default::default();
    let mut cfg = tiny_vq(3);
    cfg.decoder_only = true;
    cfg.restart_every = 0;
    cfg.seed = 9;
    cfg.lr = 1e-2;
    let out = tempfile::tempdir().unwrap();
    let err = models::vq::train::<CpuTrain>(&cfg, out.path(), &device, &mut |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("decoder_only: needs init"), "{err}");
    cfg.init = Some(dir.to_path_buf());
    cfg.restart_every = 2;
    let err = models::vq::train::<CpuTrain>(&cfg, out.path(), &device, &mut |_, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("restart_every: 0"), "{err}");
    cfg.restart_every = 0;
    models::vq::train::<CpuTrain>(&cfg, out.path(), &device, &mut |_, _, _| {}).unwrap();
    let tuned = VqTokenizer::<Cpu>::load_dir(out.path(), &device).unwrap();
    let scenes: Vec<_> = (0..4)
        .map(|i| world::random_scene(40 + i, 3).image)
        .chain([img.clone()])
        .collect();
    let grids = tok.encode(&scenes);
    assert_eq!(
        tuned.encode(&scenes),
        grids,
        "a decoder-only fine-tune moved tokens"
    );
    let refs: Vec<&[u32]> = grids.iter().map(Vec::as_slice).collect();
    assert_ne!(
        tok.decode(&refs).unwrap(),
        tuned.decode(&refs).unwrap(),
        "the decoder did not train"
    );
}

fn batching_does_not_change_a_trajectory(gen: &BurnGenerator<Cpu>) {
    let prompts = ["a photo of a dog", "a photo of two cats", "a red car"];
    let mut batch: Vec<Trajectory> = prompts
        .iter()
        .enumerate()
        .map(|(i, p)| gen.start(p, 100 + i as u64, 6))
        .collect();
    gen.run_to_end(&mut batch).unwrap();
    for (i, p) in prompts.iter().enumerate() {
        let mut alone = vec![gen.start(p, 100 + i as u64, 6)];
        gen.run_to_end(&mut alone).unwrap();
        assert_eq!(alone[0], batch[i], "prompt {p}");
    }
    for t in &batch {
        assert!(t.done());
        assert_eq!(t.forwards, 12);
        assert!(t.tokens.iter().all(|&v| v != MASK));
        assert_eq!(t.tokens, t.prediction);
    }
    // Different seeds give different images; the same seed the same.
    assert_ne!(batch[0].tokens, {
        let mut t = vec![gen.start(prompts[0], 999, 6)];
        gen.run_to_end(&mut t).unwrap();
        t.remove(0).tokens
    });
    // Every step leaves fewer masked positions, and the step image is available after each.
    let mut t = vec![gen.start(prompts[0], 7, 6)];
    let mut masked = 64;
    while !t[0].done() {
        gen.step(&mut t).unwrap();
        assert!(t[0].masked() < masked);
        masked = t[0].masked();
        assert_eq!(gen.decode(&t).unwrap()[0].dimensions(), (64, 64));
    }
    assert_eq!(masked, 0);
}

fn remask_regenerates_only_the_reopened_positions(gen: &BurnGenerator<Cpu>) {
    let mut t = vec![gen.start("a photo of a dog", 11, 6)];
    gen.run_to_end(&mut t).unwrap();
    let before = t[0].tokens.clone();
    let region: Vec<usize> = (0..16).collect();
    let mut r = vec![t[0].remask(&region, 4, 12).unwrap()];
    assert_eq!(r[0].masked(), 16);
    gen.run_to_end(&mut r).unwrap();
    assert_eq!(
        r[0].tokens[16..],
        before[16..],
        "positions outside the region changed"
    );
    assert!(r[0].tokens.iter().all(|&v| v != MASK));
    assert_eq!(r[0].forwards, t[0].forwards + 8);
}

fn log_prob_is_deterministic_and_finite(gen: &BurnGenerator<Cpu>) {
    let mut t = vec![gen.start("a photo of a dog", 11, 6)];
    gen.run_to_end(&mut t).unwrap();
    let a = gen.log_prob("a photo of a dog", &t[0].tokens, 1).unwrap();
    let b = gen.log_prob("a photo of a dog", &t[0].tokens, 1).unwrap();
    assert_eq!(a, b);
    assert!(a.is_finite() && a < 0.0);
    assert!(gen
        .log_prob("a photo of a dog", &t[0].tokens[..10], 1)
        .is_err());
}

fn prompts_outside_the_vocabulary_are_errors(gen: &BurnGenerator<Cpu>) {
    let mut t = vec![gen.start("a photo of a spaceship", 1, 6)];
    let err = gen.step(&mut t).unwrap_err();
    assert!(err.message().contains("spaceship"), "{err}");
}
