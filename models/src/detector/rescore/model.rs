//! The second stage's network and fusion.

use super::super::model::{ConvAct, HEAT};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// The crop classifier's extra class: no object of any class fills the window.
pub const BACKGROUND: usize = HEAT;
/// Outputs of the crop classifier: the 80 classes and background.
pub const CROP_CLASSES: usize = HEAT + 1;
/// First-stage peaks at or above this calibrated score are re-scored; lower ones are dropped.
/// Well under the decode threshold (0.05), so that strong crop evidence can lift a weak peak.
pub const PROPOSAL_MIN_SCORE: f32 = 0.01;

/// Architecture of the crop classifier, saved beside its weights and checked when they load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RescorerNetConfig {
    /// Side of the square crop in pixels.
    pub crop: usize,
    /// Channels at full, half and quarter crop resolution.
    pub c1: usize,
    pub c2: usize,
    pub c3: usize,
}

impl Default for RescorerNetConfig {
    fn default() -> Self {
        RescorerNetConfig {
            crop: 32,
            c1: 32,
            c2: 64,
            c3: 128,
        }
    }
}

/// Six 3×3 convolutions (two of stride 2), global average pooling, one linear layer.
#[derive(Module, Debug)]
pub struct RescorerNet<B: Backend> {
    convs: Vec<ConvAct<B>>,
    classes: Linear<B>,
}

impl RescorerNetConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> RescorerNet<B> {
        let (c1, c2, c3) = (self.c1, self.c2, self.c3);
        let plan = [
            (3, c1, 1),
            (c1, c1, 2),
            (c1, c2, 1),
            (c2, c2, 2),
            (c2, c3, 1),
            (c3, c3, 1),
        ];
        RescorerNet {
            convs: plan
                .iter()
                .map(|&(i, o, s)| ConvAct::new(i, o, s, device))
                .collect(),
            classes: LinearConfig::new(c3, CROP_CLASSES).init(device),
        }
    }

    /// `init`, then one forward pass, so that lazily drawn parameters are drawn under the seed.
    pub fn init_materialized<B: Backend>(&self, device: &B::Device) -> RescorerNet<B> {
        let net = self.init::<B>(device);
        let _ = net.forward(Tensor::zeros([1, 3, self.crop, self.crop], device));
        net
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.crop < 8 || !self.crop.is_multiple_of(4) {
            return Err(format!(
                "net.crop must be a multiple of 4 and at least 8, got {}",
                self.crop
            ));
        }
        if [self.c1, self.c2, self.c3].contains(&0) {
            return Err("net.c1, net.c2 and net.c3 must be at least 1".into());
        }
        Ok(())
    }
}

impl<B: Backend> RescorerNet<B> {
    /// `[n, 3, crop, crop]` normalised crops → `[n, 81]` class logits (80 = background).
    pub fn forward(&self, crops: Tensor<B, 4>) -> Tensor<B, 2> {
        let mut x = crops;
        for conv in &self.convs {
            x = conv.forward(x);
        }
        let [n, c, h, w] = x.dims();
        let pooled = x.reshape([n, c, h * w]).mean_dim(2).reshape([n, c]);
        self.classes.forward(pooled)
    }
}

/// The square window a box is classified in, `[cx, cy, side]`: the box's longer side plus a
/// quarter and 4 px of context, so that the glyph's outline is always inside.
pub fn crop_window(bbox: [f32; 4]) -> [f32; 3] {
    let (w, h) = ((bbox[2] - bbox[0]).max(1.0), (bbox[3] - bbox[1]).max(1.0));
    [
        (bbox[0] + bbox[2]) / 2.0,
        (bbox[1] + bbox[3]) / 2.0,
        w.max(h) * 1.25 + 4.0,
    ]
}

/// Appends the normalised CHW crop of `bbox`'s window, `size`×`size`, bilinear, edges clamped.
pub fn crop(img: &RgbImage, bbox: [f32; 4], size: usize, out: &mut Vec<f32>) {
    let [cx, cy, side] = crop_window(bbox);
    let (iw, ih) = (img.width() as i64, img.height() as i64);
    let plane = size * size;
    let start = out.len();
    out.resize(start + 3 * plane, 0.0);
    let px = |x: i64, y: i64| {
        img.get_pixel(x.clamp(0, iw - 1) as u32, y.clamp(0, ih - 1) as u32)
            .0
    };
    let step = side / size as f32;
    for j in 0..size {
        // Pixel centres: pixel k covers [k, k + 1), so its centre is k + 0.5.
        let y = cy - side / 2.0 + (j as f32 + 0.5) * step - 0.5;
        let (y0, fy) = (y.floor() as i64, y - y.floor());
        for i in 0..size {
            let x = cx - side / 2.0 + (i as f32 + 0.5) * step - 0.5;
            let (x0, fx) = (x.floor() as i64, x - x.floor());
            let (a, b, c, d) = (
                px(x0, y0),
                px(x0 + 1, y0),
                px(x0, y0 + 1),
                px(x0 + 1, y0 + 1),
            );
            for ch in 0..3 {
                let top = a[ch] as f32 * (1.0 - fx) + b[ch] as f32 * fx;
                let bottom = c[ch] as f32 * (1.0 - fx) + d[ch] as f32 * fx;
                let v = top * (1.0 - fy) + bottom * fy;
                out[start + ch * plane + j * size + i] = (v / 255.0 - 0.5) / 0.25;
            }
        }
    }
}

/// How strongly a crop's logits say `class`: `log p(class) − log(1 − p(class))`, clamped so
/// that one saturated crop cannot dominate the fused score.
pub fn class_odds(logits: &[f32], class: usize) -> f32 {
    let others = logits
        .iter()
        .enumerate()
        .filter(|&(k, _)| k != class)
        .map(|(_, &l)| l);
    let m = others.clone().fold(f32::NEG_INFINITY, f32::max);
    let lse = m + others.map(|l| (l - m).exp()).sum::<f32>().ln();
    (logits[class] - lse).clamp(-12.0, 12.0)
}

/// The fused score `sigmoid(bias + peak · peak logit + crop · crop odds)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fusion {
    pub bias: f64,
    pub peak: f64,
    pub crop: f64,
}

impl Fusion {
    pub fn apply(&self, peak_logit: f32, crop_odds: f32) -> f32 {
        let z = self.bias + self.peak * peak_logit as f64 + self.crop * crop_odds as f64;
        (1.0 / (1.0 + (-z).exp())) as f32
    }

    /// Logistic regression of `hit` on (peak logit, crop odds) by Newton's method, with a
    /// small ridge so that separable data cannot send the weights to infinity.
    pub fn fit(samples: &[(f32, f32, bool)]) -> Fusion {
        let mut w = [0.0f64; 3];
        for _ in 0..50 {
            let mut g = [0.0f64; 3];
            let mut h = [[0.0f64; 3]; 3];
            for (k, row) in h.iter_mut().enumerate() {
                row[k] = 1e-3;
                g[k] = 1e-3 * w[k];
            }
            for &(p, c, y) in samples {
                let x = [1.0, p as f64, c as f64];
                let z: f64 = x.iter().zip(&w).map(|(a, b)| a * b).sum();
                let q = 1.0 / (1.0 + (-z).exp());
                let r = q - if y { 1.0 } else { 0.0 };
                let s = q * (1.0 - q);
                for a in 0..3 {
                    g[a] += r * x[a];
                    for b in 0..3 {
                        h[a][b] += s * x[a] * x[b];
                    }
                }
            }
            let Some(d) = solve3(h, g) else { break };
            for k in 0..3 {
                w[k] -= d[k];
            }
            if d.iter().all(|v| v.abs() < 1e-9) {
                break;
            }
        }
        Fusion {
            bias: w[0],
            peak: w[1],
            crop: w[2],
        }
    }
}

/// Solves `h · x = g` for a symmetric 3×3 `h` by Cramer's rule (None when singular).
fn solve3(h: [[f64; 3]; 3], g: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1])
            - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(h);
    if d.abs() < 1e-12 {
        return None;
    }
    let mut x = [0.0; 3];
    for (k, xk) in x.iter_mut().enumerate() {
        let mut m = h;
        for (row, gv) in m.iter_mut().zip(g) {
            row[k] = gv;
        }
        *xk = det(m) / d;
    }
    Some(x)
}
