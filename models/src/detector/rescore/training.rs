//! Training the second stage on crops of world renders, then fitting its fusion.

use super::super::data::{peaks, AugmentConfig, Peak, Truth};
use super::super::inference::BurnDetector;
use super::super::training::{iou, mixed_scene, peak_hits};
use super::config::*;
use super::inference::*;
use super::model::*;
use crate::store::{save_module, ModelError};
use crate::train_loop::{LoopSpec, StepLoss};
use burn::module::AutodiffModule;
use burn::optim::AdamWConfig;
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::backend::AutodiffBackend;
use harness::rng::{derive_seed, Rng};
use image::RgbImage;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use world::dataset::{DatasetKind, SampleSource};
/// The crops of one training scene with their labels: every object in a jittered window (its
/// class), then `negatives` windows that overlap no object well (background) — half anywhere,
/// half on a part of an object, like the false peaks of large glyphs.
fn scene_crops(
    img: &RgbImage,
    truths: &[Truth],
    negatives: usize,
    size: usize,
    rng: &mut Rng,
) -> (Vec<f32>, Vec<i64>) {
    let mut data = Vec::new();
    let mut labels = Vec::new();
    let side = img.width() as f64;
    for t in truths {
        let [x1, y1, x2, y2] = t.bbox;
        let (w, h) = (x2 - x1, y2 - y1);
        // The first stage's boxes are off by a few pixels; train on the same kind of windows.
        for _ in 0..4 {
            let cx = (x1 + x2) / 2.0 + rng.normal() * 0.08 * w;
            let cy = (y1 + y2) / 2.0 + rng.normal() * 0.08 * h;
            let jw = w * (rng.normal() * 0.12).exp();
            let jh = h * (rng.normal() * 0.12).exp();
            let b = [cx - jw / 2.0, cy - jh / 2.0, cx + jw / 2.0, cy + jh / 2.0].map(|v| v as f32);
            if iou(&b, &t.bbox) >= 0.5 {
                crop(img, b, size, &mut data);
                labels.push(t.class.index() as i64);
                break;
            }
        }
    }
    for k in 0..negatives {
        let b = if k % 2 == 1 && !truths.is_empty() {
            let t = &truths[rng.index(truths.len())];
            let (w, h) = (t.bbox[2] - t.bbox[0], t.bbox[3] - t.bbox[1]);
            let (pw, ph) = (w * rng.uniform(0.3, 0.6), h * rng.uniform(0.3, 0.6));
            let x = t.bbox[0] + rng.uniform(0.0, w - pw);
            let y = t.bbox[1] + rng.uniform(0.0, h - ph);
            [x, y, x + pw, y + ph]
        } else {
            let s = rng.uniform(6.0, 40.0);
            let a = (rng.normal() * 0.3).exp();
            let (w, h) = (s * a, s / a);
            let x = rng.uniform(-w / 4.0, side - w * 3.0 / 4.0);
            let y = rng.uniform(-h / 4.0, side - h * 3.0 / 4.0);
            [x, y, x + w, y + h]
        };
        let b = b.map(|v| v as f32);
        let best = truths
            .iter()
            .map(|t| (iou(&b, &t.bbox), t.class.index()))
            .max_by(|a, b| a.0.total_cmp(&b.0));
        let label = match best {
            Some((o, c)) if o >= 0.5 => c,
            Some((o, _)) if o >= 0.3 => continue, // ambiguous: neither object nor background
            _ => BACKGROUND,
        };
        crop(img, b, size, &mut data);
        labels.push(label as i64);
    }
    (data, labels)
}

/// Files a second-stage training run writes into its output folder (a complete detector).
fn out_paths(out: &Path) -> [PathBuf; 3] {
    [
        out.join("detector.json"),
        out.join("detector.bpk"),
        out.join("rescorer.bpk"),
    ]
}

/// Trains (or resumes) the crop classifier, fits its fusion with `cfg.detector`'s peaks on
/// held-out renders and writes the combined detector into `out`.
pub fn train<B: AutodiffBackend>(
    cfg: &RescorerTrainConfig,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<super::super::DetectorMeta, ModelError> {
    cfg.validate()
        .map_err(|m| ModelError::config("rescorer training", m))?;
    let first = BurnDetector::<B::InnerBackend>::load_dir(&cfg.detector, device)?;
    let first_weights = std::fs::read(cfg.detector.join("detector.bpk"))
        .map_err(|e| harness::Error::io(&cfg.detector.join("detector.bpk"), e))?;
    std::fs::create_dir_all(out).map_err(|e| harness::Error::io(out, e))?;
    let model: RescorerNet<B> =
        crate::seeded_init::<B, _>(device, cfg.seed, || cfg.net.init_materialized(device));
    let optim = AdamWConfig::new()
        .with_weight_decay(cfg.weight_decay as f32)
        .init::<B, RescorerNet<B>>();
    let spec = LoopSpec {
        what: "rescorer",
        config: serde_json::to_value(cfg)
            .map_err(|e| ModelError::config("rescorer training", e.to_string()))?,
        steps: cfg.steps,
        lr: cfg.lr,
        warmup_steps: cfg.warmup_steps,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        columns: &["cross_entropy", "accuracy"],
    };
    let sources = [
        SampleSource::new(DatasetKind::Prompts, cfg.seed),
        SampleSource::new(DatasetKind::Detector, derive_seed(cfg.seed, &[1])),
    ];
    let size = cfg.net.crop;
    let mut step_fn = |net: &RescorerNet<B>, step: usize| -> Result<StepLoss<B>, ModelError> {
        let parts: Vec<(Vec<f32>, Vec<i64>)> = (0..cfg.batch_scenes)
            .into_par_iter()
            .map(|i| {
                let mut rng = Rng::derived(cfg.seed, &[2, step as u64, i as u64]);
                let (img, truths) = mixed_scene(
                    [&sources[0], &sources[1]],
                    cfg.prompt_fraction,
                    &cfg.augment,
                    step * cfg.batch_scenes + i,
                    &mut rng,
                )?;
                Ok(scene_crops(&img, &truths, cfg.negatives, size, &mut rng))
            })
            .collect::<Result<_, ModelError>>()?;
        let (mut data, mut labels) = (Vec::new(), Vec::new());
        for (d, l) in parts {
            data.extend(d);
            labels.extend(l);
        }
        let n = labels.len();
        let x = Tensor::<B, 4>::from_data(TensorData::new(data, [n, 3, size, size]), device);
        let y = Tensor::<B, 2, Int>::from_data(TensorData::new(labels, [n, 1]), device);
        let logits = net.forward(x);
        let right = logits
            .clone()
            .argmax(1)
            .equal(y.clone())
            .float()
            .mean()
            .detach();
        let ce = log_softmax(logits, 1).gather(1, y).mean().neg();
        Ok(StepLoss {
            total: ce.clone(),
            parts: vec![ce, right],
            grads: None,
        })
    };
    let trained = crate::train_loop::run(
        &spec,
        out,
        model,
        optim,
        device,
        &mut step_fn,
        &mut |m, _| Ok(m),
        progress,
    )?;
    let net = trained.valid();
    let fusion = Fusion::fit(&fusion_samples(&first, &net, cfg, device));
    let mut meta = first.meta.clone();
    meta.name = cfg.name.clone();
    meta.rescorer = Some(RescorerMeta {
        net: cfg.net,
        fusion,
        train: cfg.clone(),
    });
    let [meta_path, first_path, rescorer_path] = out_paths(out);
    harness::fsutil::write_atomic(&first_path, &first_weights)?;
    save_module(&net, &rescorer_path, true)?;
    let text = serde_json::to_string_pretty(&meta)
        .map_err(|e| ModelError::config(meta_path.display().to_string(), e.to_string()))?
        + "\n";
    harness::fsutil::write_atomic(&meta_path, text.as_bytes())?;
    Ok(meta)
}

/// (peak logit, crop odds, matched) of every proposal of the first stage on `cfg.fusion_images`
/// held-out renders of the training mix, with the calibration augmentations.
pub fn fusion_samples<B: Backend>(
    first: &BurnDetector<B>,
    net: &RescorerNet<B>,
    cfg: &RescorerTrainConfig,
    device: &B::Device,
) -> Vec<(f32, f32, bool)> {
    let seed = derive_seed(cfg.seed, &[99]);
    let sources = [
        SampleSource::new(DatasetKind::Prompts, seed),
        SampleSource::new(DatasetKind::Detector, derive_seed(seed, &[1])),
    ];
    let min_logit = first.meta.calibration.logit_for(PROPOSAL_MIN_SCORE);
    let mut samples = Vec::new();
    let all: Vec<usize> = (0..cfg.fusion_images).collect();
    for chunk in all.chunks(128) {
        let items: Vec<(RgbImage, Vec<Truth>)> = chunk
            .par_iter()
            .filter_map(|&i| {
                let mut rng = Rng::derived(seed, &[2, i as u64]);
                let aug = AugmentConfig::default();
                mixed_scene(
                    [&sources[0], &sources[1]],
                    cfg.prompt_fraction,
                    &aug,
                    i,
                    &mut rng,
                )
                .ok()
            })
            .collect();
        let images: Vec<RgbImage> = items.iter().map(|(i, _)| i.clone()).collect();
        let ps: Vec<Vec<Peak>> = first
            .raw(&images)
            .iter()
            .map(|o| peaks(o, first.grid(), min_logit))
            .collect();
        let odds = crop_odds(net, cfg.net.crop, &images, &ps, device);
        for ((p, o), (_, truths)) in ps.iter().zip(&odds).zip(&items) {
            for ((peak, odd), hit) in p.iter().zip(o).zip(peak_hits(p, truths)) {
                samples.push((peak.logit, *odd, hit));
            }
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_of_the_whole_image_window_reproduces_its_pixels() {
        // A 16×16 window resampled to 16×16 hits pixel centres exactly.
        let mut img = RgbImage::new(64, 64);
        for (x, y, p) in img.enumerate_pixels_mut() {
            p.0 = [(x * 4) as u8, (y * 4) as u8, 7];
        }
        // A 9.6 px box has a 16 px window (9.6 · 1.25 + 4), here from pixel 16 to 32.
        let b = [19.2, 19.2, 28.8, 28.8];
        let [cx, cy, side] = crop_window(b);
        assert!((side - 16.0).abs() < 1e-4);
        let mut out = Vec::new();
        crop(&img, b, 16, &mut out);
        let (x0, y0) = ((cx - 8.0).round() as u32, (cy - 8.0).round() as u32);
        assert_eq!((x0, y0), (16, 16));
        let want = (img.get_pixel(x0 + 3, y0 + 5).0[0] as f32 / 255.0 - 0.5) / 0.25;
        assert!(
            (out[5 * 16 + 3] - want).abs() < 1e-4,
            "{} vs {want}",
            out[5 * 16 + 3]
        );
    }

    #[test]
    fn class_odds_is_the_log_odds_of_the_softmax() {
        let logits = [1.0f32, 2.0, 0.5];
        let e: Vec<f32> = logits.iter().map(|l| l.exp()).collect();
        let p = e[1] / e.iter().sum::<f32>();
        assert!((class_odds(&logits, 1) - (p / (1.0 - p)).ln()).abs() < 1e-5);
    }

    #[test]
    fn fusion_fit_recovers_a_known_logistic_model() {
        let truth = Fusion {
            bias: -1.0,
            peak: 0.8,
            crop: 0.5,
        };
        let mut rng = Rng::new(3);
        let samples: Vec<(f32, f32, bool)> = (0..20_000)
            .map(|_| {
                let (p, c) = (rng.normal() as f32 * 3.0, rng.normal() as f32 * 3.0);
                (p, c, rng.f32() < truth.apply(p, c))
            })
            .collect();
        let fit = Fusion::fit(&samples);
        assert!((fit.bias - truth.bias).abs() < 0.1, "{fit:?}");
        assert!((fit.peak - truth.peak).abs() < 0.05, "{fit:?}");
        assert!((fit.crop - truth.crop).abs() < 0.05, "{fit:?}");
    }

    #[test]
    fn training_crops_label_objects_and_background() {
        let scene = world::random_scene(11, 3);
        let truths: Vec<Truth> = scene.objects.iter().map(Truth::from).collect();
        let (data, labels) = scene_crops(&scene.image, &truths, 4, 16, &mut Rng::new(1));
        assert_eq!(data.len(), labels.len() * 3 * 16 * 16);
        let objects: Vec<i64> = truths.iter().map(|t| t.class.index() as i64).collect();
        assert_eq!(&labels[..objects.len()], &objects[..]);
        assert!(labels[objects.len()..]
            .iter()
            .all(|&l| l == BACKGROUND as i64 || objects.contains(&l)));
    }

    /// A tiny random first stage and second stage saved as a detector folder.
    fn tiny_folder(fusion: Fusion) -> (tempfile::TempDir, crate::detector::DetectorMeta) {
        use crate::detector::{DetectorMeta, DetectorNetConfig};
        type Cpu = crate::Cpu;
        let device = Default::default();
        let net_cfg = DetectorNetConfig {
            image_size: 64,
            c1: 4,
            c2: 8,
            blocks: 1,
        };
        let first =
            crate::seeded_init::<Cpu, _>(&device, 3, || net_cfg.init_materialized::<Cpu>(&device));
        let crop_cfg = RescorerNetConfig {
            crop: 8,
            c1: 4,
            c2: 4,
            c3: 4,
        };
        let second =
            crate::seeded_init::<Cpu, _>(&device, 4, || crop_cfg.init_materialized::<Cpu>(&device));
        let meta = DetectorMeta {
            format: crate::detector::inference::DETECTOR_FORMAT.into(),
            name: "tiny-rescored".into(),
            net: net_cfg,
            // A shifted calibration so that many random peaks clear 0.05.
            calibration: crate::detector::data::Calibration { a: 1.0, b: 2.0 },
            train: Default::default(),
            rescorer: Some(RescorerMeta {
                net: crop_cfg,
                fusion,
                train: RescorerTrainConfig::default(),
            }),
        };
        let dir = tempfile::tempdir().unwrap();
        save_module(&first, &dir.path().join("detector.bpk"), true).unwrap();
        save_module(&second, &dir.path().join("rescorer.bpk"), true).unwrap();
        let text = serde_json::to_string(&meta).unwrap();
        std::fs::write(dir.path().join("detector.json"), text).unwrap();
        (dir, meta)
    }

    /// [`tiny_folder`] loaded, with the first stage's calibration as the fusion's peak term
    /// (bias 2, peak 1) and `crop` as its crop weight, and three scenes to detect on.
    fn tiny_detector(crop: f64) -> (tempfile::TempDir, BurnDetector<crate::Cpu>, Vec<RgbImage>) {
        let (dir, _) = tiny_folder(Fusion {
            bias: 2.0,
            peak: 1.0,
            crop,
        });
        let det = BurnDetector::<crate::Cpu>::load_dir(dir.path(), &Default::default()).unwrap();
        let scenes = (0..3).map(|s| world::random_scene(s, 3).image).collect();
        (dir, det, scenes)
    }

    #[test]
    fn a_fusion_that_ignores_the_crop_reproduces_the_first_stage() {
        use harness::detector::Detector;
        // Crop weight 0 leaves exactly the first stage's calibration (a 1, b 2).
        let (_dir, both, scenes) = tiny_detector(0.0);
        let fused = both.detect(&scenes).unwrap();
        let first = both.first_stage();
        assert!(first.meta.rescorer.is_none());
        let plain = first.detect(&scenes).unwrap();
        assert!(
            plain.iter().map(Vec::len).sum::<usize>() > 0,
            "no detections to compare"
        );
        assert_eq!(fused.len(), plain.len());
        for (f, p) in fused.iter().zip(&plain) {
            assert_eq!(f.len(), p.len());
            for (a, b) in f.iter().zip(p) {
                assert_eq!((a.class, a.bbox), (b.class, b.bbox));
                assert!(
                    (a.score - b.score).abs() < 1e-5,
                    "{} vs {}",
                    a.score,
                    b.score
                );
            }
        }
    }

    #[test]
    fn crop_evidence_changes_the_scores() {
        use harness::detector::Detector;
        let (_dir, both, scenes) = tiny_detector(3.0);
        let fused: Vec<f32> = both
            .detect(&scenes)
            .unwrap()
            .concat()
            .iter()
            .map(|d| d.score)
            .collect();
        let plain: Vec<f32> = both
            .first_stage()
            .detect(&scenes)
            .unwrap()
            .concat()
            .iter()
            .map(|d| d.score)
            .collect();
        assert_ne!(fused, plain);
    }

    #[test]
    fn a_missing_second_stage_file_is_named() {
        let (dir, _) = tiny_folder(Fusion {
            bias: 0.0,
            peak: 1.0,
            crop: 1.0,
        });
        std::fs::remove_file(dir.path().join("rescorer.bpk")).unwrap();
        let err = BurnDetector::<crate::Cpu>::load_dir(dir.path(), &Default::default())
            .err()
            .expect("must fail")
            .to_string();
        assert!(err.contains("rescorer.bpk"), "{err}");
    }

    #[test]
    fn training_writes_a_loadable_detector_and_is_deterministic_per_seed() {
        use harness::detector::Detector;
        let (first, _) = tiny_folder(Fusion {
            bias: 2.0,
            peak: 1.0,
            crop: 0.0,
        });
        let cfg = RescorerTrainConfig {
            name: "tiny-trained".into(),
            detector: first.path().to_path_buf(),
            steps: 2,
            batch_scenes: 2,
            warmup_steps: 1,
            net: RescorerNetConfig {
                crop: 8,
                c1: 4,
                c2: 4,
                c3: 4,
            },
            checkpoint_every: 1,
            log_every: 1,
            fusion_images: 6,
            ..RescorerTrainConfig::default()
        };
        let device = Default::default();
        let outs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let metas: Vec<_> = outs
            .iter()
            .map(|o| train::<crate::CpuTrain>(&cfg, o.path(), &device, &mut |_, _, _| {}).unwrap())
            .collect();
        // The fusion is fitted on the trained weights' outputs: equal fusions and equal loss
        // curves mean equal training (the weight files themselves embed per-process ids).
        assert_eq!(metas[0], metas[1], "same config, same fusion and metadata");
        let csvs: Vec<String> = outs
            .iter()
            .map(|o| std::fs::read_to_string(o.path().join("losses.csv")).unwrap())
            .collect();
        assert_eq!(csvs[0], csvs[1], "same config, same loss curve");
        let csv = &csvs[0];
        assert_eq!(
            csv.lines().count(),
            3,
            "a header and one row per step:\n{csv}"
        );
        let det = BurnDetector::<crate::Cpu>::load_dir(outs[0].path(), &device).unwrap();
        assert_eq!(det.meta.name, "tiny-trained");
        assert_eq!(det.meta.rescorer.as_ref().map(|r| r.net), Some(cfg.net));
        let scenes: Vec<RgbImage> = (0..2).map(|s| world::random_scene(s, 2).image).collect();
        assert_eq!(det.detect(&scenes).unwrap().len(), 2);
    }

    #[test]
    fn a_nan_second_stage_fails_the_image_instead_of_dropping_detections() {
        use harness::detector::Detector;
        let (dir, mut meta) = tiny_folder(Fusion {
            bias: 2.0,
            peak: 1.0,
            crop: 0.0,
        });
        if let Some(r) = meta.rescorer.as_mut() {
            r.fusion.crop = f64::NAN;
        }
        let read = |f: &str| std::fs::read(dir.path().join(f)).unwrap();
        let det = BurnDetector::<crate::Cpu>::from_parts(
            meta,
            read("detector.bpk"),
            Some((read("rescorer.bpk"), "rescorer.bpk")),
            "tiny",
            &Default::default(),
        )
        .unwrap();
        let scenes: Vec<RgbImage> = (0..2).map(|s| world::random_scene(s, 3).image).collect();
        for found in det.detect(&scenes).unwrap() {
            assert_eq!(found.len(), 1);
            assert!(found[0].score.is_nan());
        }
    }
}
