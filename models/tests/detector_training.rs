//! The detector's training loop and weight files on a tiny configuration.

use models::detector::{train, BurnDetector, DetectorNetConfig, DetectorTrainConfig};
use models::store::{load_module, save_module};
use models::{seeded_init, Cpu, CpuTrain};

fn init(cfg: DetectorNetConfig) -> models::detector::DetectorNet<Cpu> {
    let device = Default::default();
    seeded_init::<Cpu, _>(&device, 0, || cfg.init::<Cpu>(&device))
}

fn tiny(steps: usize) -> DetectorTrainConfig {
    DetectorTrainConfig {
        name: "tiny".into(),
        steps,
        batch_size: 4,
        warmup_steps: 2,
        checkpoint_every: 2,
        log_every: 1,
        calibration_images: 8,
        net: DetectorNetConfig {
            image_size: 64,
            c1: 4,
            c2: 8,
            blocks: 1,
        },
        ..DetectorTrainConfig::default()
    }
}

fn losses(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("losses.csv")).unwrap()
}

/// One test function: training runs in parallel test threads would share the CPU backend's thread
/// pool, and this test compares runs bit for bit.
#[test]
fn training_resumes_exactly_and_weights_check_their_architecture() {
    resumed_run_equals_an_uninterrupted_one();
    weights_of_another_architecture_are_refused_with_the_tensor_names();
    fine_tuning_starts_from_the_given_weights();
}

fn resumed_run_equals_an_uninterrupted_one() {
    let device = Default::default();
    let full = tempfile::tempdir().unwrap();
    train::<CpuTrain>(&tiny(6), full.path(), &device, &mut |_, _, _| {}).unwrap();

    // Kill a run of the same config after step 5 (its last checkpoint is at step 4), then run
    // the same command again: it resumes from the checkpoint.
    let resumed = tempfile::tempdir().unwrap();
    let cfg = tiny(6);
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let dev = Default::default();
        let _ = train::<CpuTrain>(&cfg, resumed.path(), &dev, &mut |step, _, _| {
            if step == 5 {
                panic!("killed");
            }
        });
    }));
    assert!(r.is_err(), "the simulated kill happened");
    train::<CpuTrain>(&cfg, resumed.path(), &device, &mut |_, _, _| {}).unwrap();
    assert_eq!(losses(full.path()), losses(resumed.path()));
    // Both results load, and compute the same outputs bit for bit (the files themselves differ
    // only in burn's random parameter ids).
    let a = BurnDetector::<Cpu>::load_dir(full.path(), &device).unwrap();
    let b = BurnDetector::<Cpu>::load_dir(resumed.path(), &device).unwrap();
    let img = world::random_scene(1, 2).image;
    assert_eq!(
        a.raw(std::slice::from_ref(&img)),
        b.raw(std::slice::from_ref(&img))
    );
    assert_eq!(a.meta, b.meta);
    let out = harness::detector::Detector::detect(&a, &[img]).unwrap();
    assert_eq!(out.len(), 1);

    // A checkpoint from another config is refused, not silently mixed.
    let err = train::<CpuTrain>(
        &DetectorTrainConfig { seed: 9, ..tiny(6) },
        full.path(),
        &device,
        &mut |_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("different training config"), "{err}");
}

fn weights_of_another_architecture_are_refused_with_the_tensor_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.bpk");
    let small = DetectorNetConfig {
        c1: 4,
        c2: 8,
        blocks: 1,
        image_size: 64,
    };
    save_module(&init(small), &path, true).unwrap();
    // Same architecture: loads.
    load_module(init(small), &path).unwrap();
    // Wider: shape mismatch named.
    let wide = DetectorNetConfig { c2: 16, ..small };
    let err = load_module(init(wide), &path).unwrap_err().to_string();
    assert!(
        err.contains("down.conv.weight") && err.contains("w.bpk"),
        "{err}"
    );
    // Deeper: missing tensors named.
    let deep = DetectorNetConfig { blocks: 2, ..small };
    let err = load_module(init(deep), &path).unwrap_err().to_string();
    assert!(
        err.contains("blocks.1.conv.weight") && err.contains("w.bpk"),
        "{err}"
    );
    // Truncated file.
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    assert!(load_module(init(small), &path).is_err());
}

/// `init_from` continues from trained weights (the first step's loss is the trained model's,
/// not a fresh one's) and refuses another architecture by naming both.
fn fine_tuning_starts_from_the_given_weights() {
    let device = Default::default();
    let base = tempfile::tempdir().unwrap();
    train::<CpuTrain>(&tiny(8), base.path(), &device, &mut |_, _, _| {}).unwrap();
    let first_loss = |dir: &std::path::Path| -> f64 {
        let text = losses(dir);
        let row = text.lines().nth(1).unwrap();
        row.split(',').nth(2).unwrap().parse().unwrap()
    };
    let fresh = tempfile::tempdir().unwrap();
    train::<CpuTrain>(&tiny(1), fresh.path(), &device, &mut |_, _, _| {}).unwrap();
    let tuned = tempfile::tempdir().unwrap();
    let cfg = DetectorTrainConfig {
        init_from: Some(base.path().to_path_buf()),
        ..tiny(1)
    };
    train::<CpuTrain>(&cfg, tuned.path(), &device, &mut |_, _, _| {}).unwrap();
    // Step 0 of the fine-tune sees the same batch as step 0 of the fresh run, through the
    // trained weights.
    assert!(
        first_loss(tuned.path()) < first_loss(fresh.path()),
        "{} vs {}",
        first_loss(tuned.path()),
        first_loss(fresh.path())
    );
    let other = DetectorTrainConfig {
        net: DetectorNetConfig {
            c2: 16,
            ..tiny(1).net
        },
        ..cfg
    };
    let err = train::<CpuTrain>(
        &other,
        tempfile::tempdir().unwrap().path(),
        &device,
        &mut |_, _, _| {},
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("init_from") && err.contains("c2: 16"), "{err}");
}
