//! Diagnostic: can test-time views lift the evaluation detector's counting score honestly?
//! Each image is also shown upscaled 2× and 2× mirrored; a view's peak raises the logit of the
//! plain image's peak of its class it overlaps (IoU ≥ 0.3, one-to-one, strongest first), so
//! small glyphs are scored at the size the network is surest of. Prints, for the plain
//! detector, the fused logits under the shipped calibration, and the fused logits recalibrated
//! (Platt, on held-out renders): the reliability table on held-out random scenes and the GenEval
//! score of the ground-truth suite (553 × 4). Usage:
//! `cargo run --release -p models --example probe_views -- [HELD_OUT_IMAGES] [MAX_BOX_PX]`
//! (MAX_BOX_PX: only plain-image peaks and view peaks with a smaller box are fused).
use harness::detector::DetectedObject;
use harness::rules::{judge, RuleConfig};
use harness::{ClassId, Suite};
use image::imageops::{flip_horizontal_in_place, resize, FilterType};
use image::RgbImage;
use models::detector::data::{peaks, Calibration, Peak, Truth};
use models::detector::training::{label_peaks, platt};
use rayon::prelude::*;
use std::collections::BTreeMap;
use world::scene::random_scene;

type B = models::Cpu;

/// Peaks below this raw logit are ignored (as in calibration fitting).
const FLOOR: f32 = -6.0;

fn size(b: &[f32; 4]) -> f32 {
    ((b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)).sqrt()
}

/// IoU of two predicted boxes (the training module's IoU takes a truth box in f64).
fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    models::detector::training::iou(a, &b.map(f64::from)) as f32
}

/// Plain-image peaks with their logit fused over the views: `(plain logit, fused peak)`.
fn fused_peaks(
    det: &models::detector::BurnDetector<B>,
    images: &[RgbImage],
    max_box: f32,
) -> Vec<Vec<(f32, Peak)>> {
    let views: [(u32, bool); 2] = [(2, false), (2, true)];
    let plain = det.raw(images);
    let shown: Vec<Vec<Vec<f32>>> = views
        .iter()
        .map(|&(scale, flip)| {
            let imgs: Vec<RgbImage> = images
                .par_iter()
                .map(|i| {
                    let mut v = resize(
                        i,
                        i.width() * scale,
                        i.height() * scale,
                        FilterType::Triangle,
                    );
                    if flip {
                        flip_horizontal_in_place(&mut v);
                    }
                    v
                })
                .collect();
            det.raw(&imgs)
        })
        .collect();
    let grid = det.grid();
    plain
        .iter()
        .enumerate()
        .map(|(n, out)| {
            let base = peaks(out, grid, FLOOR);
            let mut fused: Vec<(f32, Peak)> = base.iter().map(|p| (p.logit, *p)).collect();
            let mut order: Vec<usize> = (0..base.len()).collect();
            order.sort_by(|&a, &b| base[b].logit.total_cmp(&base[a].logit));
            for (v, &(scale, flip)) in views.iter().enumerate() {
                let mut found: Vec<Peak> = peaks(&shown[v][n], grid * scale as usize, FLOOR)
                    .into_iter()
                    .map(|mut p| {
                        p.bbox = p.bbox.map(|x| x / scale as f32);
                        if flip {
                            let w = images[n].width() as f32;
                            p.bbox = [w - p.bbox[2], p.bbox[1], w - p.bbox[0], p.bbox[3]];
                        }
                        p
                    })
                    .filter(|p| size(&p.bbox) < max_box)
                    .collect();
                found.sort_by(|a, b| b.logit.total_cmp(&a.logit));
                let mut used = vec![false; base.len()];
                for q in &found {
                    let hit = order.iter().copied().find(|&k| {
                        !used[k]
                            && base[k].class == q.class
                            && size(&base[k].bbox) < max_box
                            && iou(&base[k].bbox, &q.bbox) >= 0.3
                    });
                    if let Some(k) = hit {
                        used[k] = true;
                        fused[k].1.logit = fused[k].1.logit.max(q.logit);
                    }
                }
            }
            fused
        })
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map_or(Ok(2000), |s| s.parse())?;
    let max_box: f32 = args.next().map_or(Ok(99.0), |s| s.parse())?;
    let device = Default::default();
    let det = models::embedded::evaluation_detector::<B>(&device)?;
    let shipped = det.meta.calibration;

    // Held-out random scenes (a seed no training or calibration stream uses): labelled peaks.
    let mut held: Vec<(f32, f32, bool)> = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(128) {
        let scenes: Vec<_> = chunk
            .par_iter()
            .map(|&i| random_scene(harness::rng::derive_seed(5151, &[i as u64]), 1 + i % 5))
            .collect();
        let images: Vec<_> = scenes.iter().map(|s| s.image.clone()).collect();
        for (ps, s) in fused_peaks(&det, &images, max_box).iter().zip(&scenes) {
            let truths: Vec<Truth> = s
                .objects
                .iter()
                .map(models::detector::data::Truth::from)
                .collect();
            // label_peaks answers in descending logit order.
            let fused: Vec<Peak> = ps.iter().map(|(_, p)| *p).collect();
            let mut order: Vec<usize> = (0..fused.len()).collect();
            order.sort_by(|&a, &b| fused[b].logit.total_cmp(&fused[a].logit));
            for (k, (_, hit)) in order.iter().zip(label_peaks(&fused, &truths)) {
                held.push((ps[*k].0, fused[*k].logit, hit));
            }
        }
    }
    let refit = platt(&held.iter().map(|h| (h.1, h.2)).collect::<Vec<_>>());
    println!("shipped calibration {shipped:?}; refitted on fused logits {refit:?}");
    let variants: [(&str, bool, Calibration); 3] = [
        ("plain", false, shipped),
        ("views, shipped calibration", true, shipped),
        ("views, recalibrated", true, refit),
    ];
    println!("\nheld-out reliability ({n} random scenes): bin matched/detections");
    for (name, fused, cal) in &variants {
        let mut bins = [(0usize, 0usize); 10];
        for &(plain, f, hit) in &held {
            let score = cal.apply(if *fused { f } else { plain });
            if score >= 0.05 {
                let b = ((score * 10.0) as usize).min(9);
                bins[b].0 += 1;
                bins[b].1 += hit as usize;
            }
        }
        let cells: Vec<String> = bins[1..]
            .iter()
            .enumerate()
            .map(|(i, (c, m))| format!("0.{}: {m}/{c}", i + 1))
            .collect();
        println!("{name}: {}", cells.join("  "));
    }

    let suite = Suite::official();
    let rules = RuleConfig::default();
    let mut tally: Vec<BTreeMap<String, (usize, usize)>> = vec![BTreeMap::new(); variants.len()];
    for p in &suite.prompts {
        let images: Vec<RgbImage> = (0..4)
            .map(|i| world::dataset::suite_scene(p, 1234, i, Default::default()).map(|s| s.image))
            .collect::<Result<_, _>>()?;
        for ps in fused_peaks(&det, &images, max_box) {
            for (k, (_, fused, cal)) in variants.iter().enumerate() {
                let dets = ps
                    .iter()
                    .map(|(plain, q)| DetectedObject {
                        class: ClassId::new(q.class).unwrap_or_else(|| unreachable!()),
                        score: cal.apply(if *fused { q.logit } else { *plain }),
                        bbox: q.bbox,
                        color_probs: q.color_probs,
                        mask: None,
                    })
                    .filter(|d| d.score >= 0.05)
                    .map(|d| d.to_detection())
                    .collect::<Result<Vec<_>, _>>()?;
                let ok = judge(&p.metadata, &dets, &rules).is_ok_and(|j| j.correct);
                let e = tally[k].entry(p.metadata.tag.as_str().into()).or_default();
                e.0 += ok as usize;
                e.1 += 1;
            }
        }
    }
    println!("\nground-truth suite (553 × 4) through the detector");
    for ((name, _, _), t) in variants.iter().zip(&tally) {
        let accs: Vec<String> = t
            .iter()
            .map(|(tag, (c, n))| format!("{tag} {:.3}", *c as f64 / *n as f64))
            .collect();
        let overall = t.values().map(|(c, n)| *c as f64 / *n as f64).sum::<f64>() / t.len() as f64;
        println!("{name}: overall {overall:.4} | {}", accs.join(", "));
    }
    Ok(())
}
