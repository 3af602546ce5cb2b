//! Backend-free parts of the detector: image normalisation, training targets, augmentations that
//! mimic a generator's imperfect output, and decoding of the network's grid into detections.

use super::model::{BOX, COLORS, HEAT, STRIDE};
use harness::detector::DetectedObject;
use harness::rng::Rng;
use harness::{ClassId, Color};
use image::RgbImage;

/// CHW floats, `(v / 255 - 0.5) / 0.25`.
pub fn normalise(img: &RgbImage, out: &mut Vec<f32>) {
    let (w, h) = img.dimensions();
    let plane = (w * h) as usize;
    let start = out.len();
    out.resize(start + 3 * plane, 0.0);
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            out[start + c * plane + i] = (p.0[c] as f32 / 255.0 - 0.5) / 0.25;
        }
    }
}

/// One ground-truth object for training.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Truth {
    pub class: ClassId,
    pub color: Color,
    /// `[x1, y1, x2, y2]` in pixels.
    pub bbox: [f64; 4],
}

impl From<&world::scene::ObjectInstance> for Truth {
    fn from(o: &world::scene::ObjectInstance) -> Self {
        Truth {
            class: o.class,
            color: o.color,
            bbox: o.bbox,
        }
    }
}

/// Targets of one image on a `grid`×`grid` map.
#[derive(Debug, Clone, PartialEq)]
pub struct Targets {
    /// `[80, g, g]`: Gaussian splats, exactly 1 at each object's centre cell.
    pub heat: Vec<f32>,
    /// `[4, g, g]`: dx, dy in [0, 1), log w, log h (cells) at centre cells.
    pub boxes: Vec<f32>,
    /// `[g, g]`: 1 at centre cells.
    pub mask: Vec<f32>,
    /// `[g, g]`: colour index at centre cells, 0 elsewhere (masked out).
    pub color: Vec<i64>,
}

/// Builds CenterNet targets. The Gaussian's sigma grows with the object (a third of its radius
/// in cells), so neighbouring cells of a large object are penalised less as false peaks.
pub fn build_targets(objects: &[Truth], grid: usize) -> Targets {
    let cells = grid * grid;
    let mut t = Targets {
        heat: vec![0.0; HEAT * cells],
        boxes: vec![0.0; BOX * cells],
        mask: vec![0.0; cells],
        color: vec![0; cells],
    };
    let s = STRIDE as f64;
    for o in objects {
        let [x1, y1, x2, y2] = o.bbox;
        let (w, h) = ((x2 - x1).max(1.0) / s, (y2 - y1).max(1.0) / s);
        let (cx, cy) = ((x1 + x2) / 2.0 / s, (y1 + y2) / 2.0 / s);
        let ix = (cx.floor() as usize).min(grid - 1);
        let iy = (cy.floor() as usize).min(grid - 1);
        let sigma = ((w * h).sqrt() / 6.0).max(0.5);
        let plane = &mut t.heat[o.class.index() * cells..(o.class.index() + 1) * cells];
        for gy in 0..grid {
            for gx in 0..grid {
                let d2 = (gx as f64 - ix as f64).powi(2) + (gy as f64 - iy as f64).powi(2);
                let v = (-d2 / (2.0 * sigma * sigma)).exp() as f32;
                let cell = &mut plane[gy * grid + gx];
                *cell = cell.max(v);
            }
        }
        plane[iy * grid + ix] = 1.0;
        let c = iy * grid + ix;
        t.boxes[c] = (cx - ix as f64) as f32;
        t.boxes[cells + c] = (cy - iy as f64) as f32;
        t.boxes[2 * cells + c] = w.ln() as f32;
        t.boxes[3 * cells + c] = h.ln() as f32;
        t.mask[c] = 1.0;
        t.color[c] = o.color.index() as i64;
    }
    t
}

/// Strengths of the augmentations (probabilities and ranges), part of the training config.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AugmentConfig {
    /// Probability of a Gaussian blur with sigma up to `blur_max`.
    pub blur_p: f64,
    pub blur_max: f64,
    /// Probability of VQ-like blockiness: 8×8 blocks pulled toward their mean colour.
    pub block_p: f64,
    pub block_max: f64,
    /// Probability of brightness/contrast jitter of at most `jitter_max` (relative).
    pub jitter_p: f64,
    pub jitter_max: f64,
    /// Probability of Gaussian pixel noise with sigma up to `noise_max` (0..255 scale).
    pub noise_p: f64,
    pub noise_max: f64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            blur_p: 0.3,
            blur_max: 1.0,
            block_p: 0.3,
            block_max: 0.5,
            jitter_p: 0.5,
            jitter_max: 0.12,
            noise_p: 0.5,
            noise_max: 10.0,
        }
    }
}

/// Applies the configured augmentations in place; the draws come from `rng` only.
pub fn augment(img: &mut RgbImage, cfg: &AugmentConfig, rng: &mut Rng) {
    if rng.chance(cfg.blur_p) {
        let sigma = rng.uniform(0.3, cfg.blur_max.max(0.3)) as f32;
        *img = image::imageops::blur(img, sigma);
    }
    if rng.chance(cfg.block_p) {
        blockify(img, rng.uniform(0.0, cfg.block_max), rng);
    }
    if rng.chance(cfg.jitter_p) {
        let gain = 1.0 + rng.uniform(-cfg.jitter_max, cfg.jitter_max);
        let contrast = 1.0 + rng.uniform(-cfg.jitter_max, cfg.jitter_max);
        for p in img.pixels_mut() {
            for c in 0..3 {
                let v = p.0[c] as f64;
                let v = ((v - 128.0) * contrast + 128.0) * gain;
                p.0[c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    if rng.chance(cfg.noise_p) {
        let sigma = rng.uniform(0.0, cfg.noise_max);
        for p in img.pixels_mut() {
            for c in 0..3 {
                let v = p.0[c] as f64 + rng.normal() * sigma;
                p.0[c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Pulls every 8×8 block toward its mean colour (by `strength`) and shifts it slightly, like the
/// block artefacts of a VQ decoder.
fn blockify(img: &mut RgbImage, strength: f64, rng: &mut Rng) {
    let (w, h) = img.dimensions();
    for by in (0..h).step_by(8) {
        for bx in (0..w).step_by(8) {
            let mut mean = [0.0f64; 3];
            let mut n = 0.0;
            for y in by..(by + 8).min(h) {
                for x in bx..(bx + 8).min(w) {
                    let p = img.get_pixel(x, y).0;
                    for c in 0..3 {
                        mean[c] += p[c] as f64;
                    }
                    n += 1.0;
                }
            }
            let shift: [f64; 3] = [rng.normal() * 4.0, rng.normal() * 4.0, rng.normal() * 4.0];
            for y in by..(by + 8).min(h) {
                for x in bx..(bx + 8).min(w) {
                    let p = img.get_pixel_mut(x, y);
                    for c in 0..3 {
                        let v =
                            p.0[c] as f64 * (1.0 - strength) + mean[c] / n * strength + shift[c];
                        p.0[c] = v.round().clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }
}

/// Post-hoc calibration of peak scores: `p = sigmoid(a · logit + b)` (Platt scaling), fitted on
/// held-out renders so that the official thresholds mean what they say.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    pub a: f64,
    pub b: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration { a: 1.0, b: 0.0 }
    }
}

impl Calibration {
    pub fn apply(&self, logit: f32) -> f32 {
        sigmoid(self.a * logit as f64 + self.b) as f32
    }

    /// The raw logit whose calibrated score is `score` (thresholds on raw logits are cheap).
    pub fn logit_for(&self, score: f32) -> f32 {
        ((logit(score as f64) - self.b) / self.a) as f32
    }
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// Decoding settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DecodeConfig {
    /// Peaks below this calibrated score are dropped (well under GenEval's 0.3).
    pub min_score: f32,
    /// At most this many detections per image.
    pub max_detections: usize,
}

impl Default for DecodeConfig {
    fn default() -> Self {
        DecodeConfig {
            min_score: 0.05,
            max_detections: 100,
        }
    }
}

/// A raw peak before calibration, used for calibration fitting and by [`decode`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Peak {
    pub class: usize,
    pub logit: f32,
    pub bbox: [f32; 4],
    pub color_probs: [f32; 10],
}

/// Local maxima (3×3) of every class plane, with their boxes and colour probabilities.
/// `out` is one image's `[94, g, g]` output, row-major.
pub fn peaks(out: &[f32], grid: usize, min_logit: f32) -> Vec<Peak> {
    let cells = grid * grid;
    let at = |ch: usize, y: usize, x: usize| out[ch * cells + y * grid + x];
    let mut found = Vec::new();
    for class in 0..HEAT {
        for y in 0..grid {
            for x in 0..grid {
                let v = at(class, y, x);
                if v < min_logit || v.is_nan() {
                    continue;
                }
                let mut is_max = true;
                'nb: for dy in -1i32..=1 {
                    for dx in -1i32..=1 {
                        let (ny, nx) = (y as i32 + dy, x as i32 + dx);
                        if (dy, dx) == (0, 0)
                            || ny < 0
                            || nx < 0
                            || ny >= grid as i32
                            || nx >= grid as i32
                        {
                            continue;
                        }
                        let n = at(class, ny as usize, nx as usize);
                        // Ties go to the first cell in raster order so a plateau gives one peak.
                        if n > v || (n == v && (ny, nx) < (y as i32, x as i32)) {
                            is_max = false;
                            break 'nb;
                        }
                    }
                }
                if !is_max {
                    continue;
                }
                let s = STRIDE as f32;
                let cx = (x as f32 + at(HEAT, y, x)) * s;
                let cy = (y as f32 + at(HEAT + 1, y, x)) * s;
                let w = at(HEAT + 2, y, x).clamp(-3.0, 3.0).exp() * s;
                let h = at(HEAT + 3, y, x).clamp(-3.0, 3.0).exp() * s;
                let mut logits = [0.0f32; COLORS];
                for (k, l) in logits.iter_mut().enumerate() {
                    *l = at(HEAT + BOX + k, y, x);
                }
                found.push(Peak {
                    class,
                    logit: v,
                    bbox: [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0],
                    color_probs: softmax(&logits),
                });
            }
        }
    }
    found
}

fn softmax(logits: &[f32; COLORS]) -> [f32; COLORS] {
    let m = logits.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let mut p = [0.0f32; COLORS];
    let mut sum = 0.0;
    for (o, l) in p.iter_mut().zip(logits) {
        *o = (l - m).exp();
        sum += *o;
    }
    for o in &mut p {
        *o /= sum;
    }
    p
}

/// Detections of one image: calibrated peaks above `min_score`, best first. A NaN anywhere in
/// the output yields one detection with a NaN score so that the caller fails the image loudly.
pub fn decode(
    out: &[f32],
    grid: usize,
    calib: &Calibration,
    cfg: &DecodeConfig,
) -> Vec<DetectedObject> {
    if has_nan(out) {
        return nan_detection();
    }
    let scored = peaks(out, grid, calib.logit_for(cfg.min_score))
        .into_iter()
        .map(|p| (calib.apply(p.logit), p));
    finish(scored, cfg)
}

/// Whether a network output holds a non-finite value (the image must then fail, see [`decode`]).
pub fn has_nan(out: &[f32]) -> bool {
    out.iter().any(|v| !v.is_finite())
}

/// The single NaN-scored detection that marks a broken output.
pub fn nan_detection() -> Vec<DetectedObject> {
    vec![DetectedObject {
        class: ClassId::new(0).unwrap_or_else(|| unreachable!()),
        score: f32::NAN,
        bbox: [0.0; 4],
        color_probs: [f32::NAN; 10],
        mask: None,
    }]
}

/// Scored peaks → detections: those at or above `min_score`, best first, at most
/// `max_detections`.
pub fn finish(
    scored: impl Iterator<Item = (f32, Peak)>,
    cfg: &DecodeConfig,
) -> Vec<DetectedObject> {
    let mut dets: Vec<DetectedObject> = scored
        .filter(|(score, _)| *score >= cfg.min_score)
        .map(|(score, p)| DetectedObject {
            class: ClassId::new(p.class).unwrap_or_else(|| unreachable!()),
            score,
            bbox: p.bbox,
            color_probs: p.color_probs,
            mask: None,
        })
        .collect();
    dets.sort_by(|a, b| b.score.total_cmp(&a.score));
    dets.truncate(cfg.max_detections);
    dets
}

fn logit(p: f64) -> f64 {
    (p / (1.0 - p)).ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn truth(class: &str, color: Color, bbox: [f64; 4]) -> Truth {
        Truth {
            class: ClassId::from_name(class).unwrap(),
            color,
            bbox,
        }
    }

    #[test]
    fn perfect_logits_decode_back_to_the_truth() {
        let grid = 16;
        let objs = [
            truth("dog", Color::Red, [10.0, 12.0, 30.0, 28.0]),
            truth("cake", Color::Blue, [40.0, 40.0, 60.0, 62.0]),
        ];
        let t = build_targets(&objs, grid);
        assert_eq!(t.mask.iter().sum::<f32>(), 2.0);
        // Make an output whose heat logits are very high at centres and very low elsewhere.
        let cells = grid * grid;
        let mut out = vec![-20.0f32; (HEAT + BOX + COLORS) * cells];
        for (i, v) in t.heat.iter().enumerate() {
            if *v == 1.0 {
                out[i] = 20.0;
            }
        }
        out[HEAT * cells..(HEAT + BOX) * cells].copy_from_slice(&t.boxes);
        for c in 0..cells {
            if t.mask[c] == 1.0 {
                out[(HEAT + BOX + t.color[c] as usize) * cells + c] = 10.0;
            }
        }
        let dets = decode(
            &out,
            grid,
            &Calibration::default(),
            &DecodeConfig::default(),
        );
        assert_eq!(dets.len(), 2);
        assert!(dets.iter().all(|d| d.score > 0.99));
        let dog = dets.iter().find(|d| d.class.name() == "dog").unwrap();
        for k in 0..4 {
            assert!(
                (dog.bbox[k] as f64 - objs[0].bbox[k]).abs() < 1e-3,
                "{:?}",
                dog.bbox
            );
        }
        assert_eq!(Color::argmax(&dog.color_probs), Some(Color::Red));
    }

    #[test]
    fn nan_output_becomes_a_nan_detection() {
        let mut out = vec![0.0f32; (HEAT + BOX + COLORS) * 256];
        out[5] = f32::NAN;
        let d = decode(&out, 16, &Calibration::default(), &DecodeConfig::default());
        assert!(d[0].score.is_nan());
    }

    #[test]
    fn augment_is_deterministic_per_seed() {
        let scene = world::random_scene(3, 3);
        let mut a = scene.image.clone();
        let mut b = scene.image.clone();
        let cfg = AugmentConfig {
            blur_p: 1.0,
            block_p: 1.0,
            jitter_p: 1.0,
            noise_p: 1.0,
            ..AugmentConfig::default()
        };
        augment(&mut a, &cfg, &mut Rng::new(9));
        augment(&mut b, &cfg, &mut Rng::new(9));
        assert_eq!(a, b);
        assert_ne!(a, scene.image);
    }
}
