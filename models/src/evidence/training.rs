//! Trains an evidence head: full-batch Adam on a pairwise loss over (right, wrong) candidates
//! of one image plus the binary cross-entropy of P(yes), in f64 — a few dozen parameters over a
//! few thousand candidates, deterministic for a config (the seed only splits the prompts).

use super::{HeadTrainConfig, Labelled};
use harness::evidence::{Features, Head};
use std::collections::BTreeMap;

/// A trained head and what it was measured at.
#[derive(Debug, Clone)]
pub struct Trained {
    pub head: Head,
    /// (iteration, train loss, val loss) every 50 iterations and at the end.
    pub losses: Vec<(usize, f64, f64)>,
    pub train_images: usize,
    pub val_images: usize,
    /// On the held-out prompts: (within-image AUROC, pairs, pooled AUROC, ECE) of the head and
    /// of the untrained product of the floored factors (the `evidence` judge's product, except
    /// that each factor is floored at [`Head::FLOOR`]) over the same images.
    pub val_head: (f64, usize, f64, f64),
    pub val_product: (f64, usize, f64, f64),
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// ln(1 + eˣ) without overflow.
fn softplus(x: f64) -> f64 {
    if x > 30.0 {
        x
    } else {
        x.exp().ln_1p()
    }
}

/// The parameters as one vector: bias, 4 shared weights, 4 per tag (in `tags` order).
struct Params<'a> {
    tags: &'a [String],
    label_noise: f64,
}

impl Params<'_> {
    fn len(&self) -> usize {
        5 + 4 * self.tags.len()
    }

    fn head(&self, theta: &[f64]) -> Head {
        let mut weights = [0.0; 4];
        weights.copy_from_slice(&theta[1..5]);
        Head {
            format: Head::FORMAT.into(),
            bias: theta[0],
            weights,
            tag_weights: self
                .tags
                .iter()
                .enumerate()
                .map(|(t, name)| {
                    let mut w = [0.0; 4];
                    w.copy_from_slice(&theta[5 + 4 * t..9 + 4 * t]);
                    (name.clone(), w)
                })
                .collect(),
            label_noise: self.label_noise,
            detector: String::new(),
            made_by: serde_json::Value::Null,
        }
    }
}

/// Loss and gradient over `images` (each image's tag index into the per-tag weights).
fn loss(
    theta: &[f64],
    images: &[(&Labelled, usize)],
    cfg: &HeadTrainConfig,
    grad: &mut [f64],
) -> f64 {
    grad.iter_mut().for_each(|g| *g = 0.0);
    let score = |f: &Features, t: usize| {
        theta[0]
            + (0..4)
                .map(|k| (theta[1 + k] + theta[5 + 4 * t + k]) * f[k])
                .sum::<f64>()
    };
    let samples: usize = images.iter().map(|(l, _)| l.correct.len()).sum();
    let pairs: usize = images
        .iter()
        .map(|(l, _)| {
            let r = l.correct.iter().filter(|&&c| c).count();
            r * (l.correct.len() - r)
        })
        .sum();
    let mut total = 0.0;
    // d(loss)/d(score) per candidate, then the chain rule into the parameters.
    for (l, t) in images {
        let s: Vec<f64> = l.features.iter().map(|f| score(f, *t)).collect();
        let mut ds = vec![0.0; s.len()];
        for (i, &y) in l.correct.iter().enumerate() {
            // P(yes) through the noise layer: ε + (1 − 2ε)·σ(s); with ε = 0, dBCE/ds = p − y.
            let (e, q) = (cfg.label_noise, sigmoid(s[i]));
            let p = e + (1.0 - 2.0 * e) * q;
            let y = y as u8 as f64;
            total += cfg.calibration_weight
                * -(y * p.max(1e-12).ln() + (1.0 - y) * (1.0 - p).max(1e-12).ln())
                / samples as f64;
            let dp = (p - y) / (p * (1.0 - p)).max(1e-12);
            ds[i] += cfg.calibration_weight * dp * (1.0 - 2.0 * e) * q * (1.0 - q) / samples as f64;
        }
        if pairs > 0 {
            for (r, &cr) in l.correct.iter().enumerate() {
                for (w, &cw) in l.correct.iter().enumerate() {
                    if cr && !cw {
                        let d = s[r] - s[w];
                        total += cfg.rank_weight * softplus(-d) / pairs as f64;
                        let g = cfg.rank_weight * sigmoid(-d) / pairs as f64;
                        ds[r] -= g;
                        ds[w] += g;
                    }
                }
            }
        }
        for (f, d) in l.features.iter().zip(ds) {
            grad[0] += d;
            for k in 0..4 {
                grad[1 + k] += d * f[k];
                grad[5 + 4 * t + k] += d * f[k];
            }
        }
    }
    for (i, g) in grad.iter_mut().enumerate().skip(5) {
        total += cfg.tag_l2 * theta[i] * theta[i];
        *g += 2.0 * cfg.tag_l2 * theta[i];
    }
    total
}

/// (within-image AUROC, pairs, pooled AUROC, ECE) of `p` over `images`.
pub fn measure(
    images: &[&Labelled],
    p: &dyn Fn(&Labelled, usize) -> f64,
) -> (f64, usize, f64, f64) {
    let (mut won, mut pairs) = (0.0, 0.0);
    let mut pooled: Vec<(f64, bool)> = Vec::new();
    for l in images {
        let ps: Vec<f64> = (0..l.correct.len()).map(|i| p(l, i)).collect();
        let (w, n) = harness::metrics::within_image(&l.correct, &ps);
        (won, pairs) = (won + w, pairs + n);
        pooled.extend(ps.into_iter().zip(l.correct.iter().copied()));
    }
    (
        if pairs > 0.0 { won / pairs } else { f64::NAN },
        pairs as usize,
        harness::metrics::pooled_auroc(&pooled),
        harness::metrics::ece(&pooled),
    )
}

/// Whether a prompt is held out: a seeded hash of its text, so every copy goes to one side.
fn held_out(prompt: &str, cfg: &HeadTrainConfig) -> bool {
    let u = harness::rng::derive_seed(cfg.seed, &[world::prompts::stable_hash(prompt)]);
    ((u >> 11) as f64 / (1u64 << 53) as f64) < cfg.val_share
}

/// Trains a head on `data`; `progress(iteration, total, train loss)`.
pub fn train(
    cfg: &HeadTrainConfig,
    data: &[Labelled],
    progress: &mut dyn FnMut(usize, usize, f64),
) -> Trained {
    let tags: Vec<String> = data
        .iter()
        .map(|l| l.tag.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let index: BTreeMap<&str, usize> = tags
        .iter()
        .enumerate()
        .map(|(i, t)| (t.as_str(), i))
        .collect();
    let (val, train): (Vec<&Labelled>, Vec<&Labelled>) =
        data.iter().partition(|l| held_out(&l.prompt, cfg));
    let train_set: Vec<(&Labelled, usize)> =
        train.iter().map(|l| (*l, index[l.tag.as_str()])).collect();
    let val_set: Vec<(&Labelled, usize)> =
        val.iter().map(|l| (*l, index[l.tag.as_str()])).collect();
    let params = Params {
        tags: &tags,
        label_noise: cfg.label_noise,
    };
    // Start at the evidence product's ordering: logit = ln Π p (shared weights 1, bias 0).
    let mut theta = vec![0.0; params.len()];
    theta[1..5].iter_mut().for_each(|w| *w = 1.0);
    let (mut m, mut v) = (vec![0.0; theta.len()], vec![0.0; theta.len()]);
    let mut grad = vec![0.0; theta.len()];
    let mut scratch = vec![0.0; theta.len()];
    let (b1, b2, eps) = (0.9, 0.999, 1e-8);
    let mut losses = Vec::new();
    for it in 1..=cfg.iterations {
        let l = loss(&theta, &train_set, cfg, &mut grad);
        for i in 0..theta.len() {
            m[i] = b1 * m[i] + (1.0 - b1) * grad[i];
            v[i] = b2 * v[i] + (1.0 - b2) * grad[i] * grad[i];
            let mh = m[i] / (1.0 - b1.powi(it as i32));
            let vh = v[i] / (1.0 - b2.powi(it as i32));
            theta[i] -= cfg.lr * mh / (vh.sqrt() + eps);
        }
        if it % 50 == 0 || it == cfg.iterations {
            let lv = if val_set.is_empty() {
                f64::NAN
            } else {
                loss(&theta, &val_set, cfg, &mut scratch)
            };
            losses.push((it, l, lv));
        }
        progress(it, cfg.iterations, l);
    }
    let head = params.head(&theta);
    let val_head = measure(&val, &|l, i| head.p_yes(&l.features[i], &l.tag));
    let val_product = measure(&val, &|l, i| l.features[i].iter().sum::<f64>().exp());
    Trained {
        head,
        losses,
        train_images: train.len(),
        val_images: val.len(),
        val_head,
        val_product,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> HeadTrainConfig {
        HeadTrainConfig {
            name: "t".into(),
            bank: None,
            world: None,
            annotator: String::new(),
            seed: 1,
            val_share: 0.3,
            iterations: 400,
            lr: 0.05,
            rank_weight: 1.0,
            calibration_weight: 1.0,
            tag_l2: 0.01,
            label_noise: 0.0,
        }
    }

    #[test]
    fn the_gradient_is_the_loss_s_derivative() {
        let data: Vec<Labelled> = (0..6)
            .map(|i| Labelled {
                prompt_index: i,
                prompt: format!("p{i}"),
                tag: ["a", "b"][i % 2].into(),
                features: (0..4)
                    .map(|c| {
                        [
                            -(c as f64) * 0.7,
                            -(((i + c) % 3) as f64),
                            -0.2 * i as f64,
                            0.0,
                        ]
                    })
                    .collect(),
                correct: (0..4).map(|c| (c + i) % 3 == 0).collect(),
            })
            .collect();
        let tags = vec!["a".to_string(), "b".to_string()];
        let set: Vec<(&Labelled, usize)> = data.iter().map(|l| (l, (l.prompt_index % 2))).collect();
        let theta: Vec<f64> = (0..13).map(|i| 0.3 - 0.07 * i as f64).collect();
        let mut g = vec![0.0; 13];
        let c = HeadTrainConfig {
            label_noise: 0.04,
            ..cfg()
        };
        loss(&theta, &set, &c, &mut g);
        let params = Params {
            tags: &tags,
            label_noise: 0.0,
        };
        assert_eq!(params.len(), 13);
        let mut scratch = vec![0.0; 13];
        for i in 0..13 {
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[i] += 1e-6;
            down[i] -= 1e-6;
            let numeric =
                (loss(&up, &set, &c, &mut scratch) - loss(&down, &set, &c, &mut scratch)) / 2e-6;
            assert!(
                (numeric - g[i]).abs() < 1e-6,
                "parameter {i}: {numeric} vs {}",
                g[i]
            );
        }
    }

    #[test]
    fn a_head_learns_which_evidence_carries_the_label_and_is_deterministic() {
        // The label follows the colour evidence; the count evidence is noise.
        let mut rng = harness::rng::Rng::new(9);
        let data: Vec<Labelled> = (0..120)
            .map(|i| {
                let features: Vec<Features> = (0..4)
                    .map(|_| [-3.0 * rng.f64(), -4.0 * rng.f64(), 0.0, 0.0])
                    .collect();
                let correct = features.iter().map(|f| f[1] > -1.5).collect();
                Labelled {
                    prompt_index: i,
                    prompt: format!("prompt {i}"),
                    tag: "colors".into(),
                    features,
                    correct,
                }
            })
            .collect();
        let a = train(&cfg(), &data, &mut |_, _, _| {});
        let b = train(&cfg(), &data, &mut |_, _, _| {});
        assert_eq!(a.head, b.head);
        let w = a.head.weights;
        let t = a.head.tag_weights["colors"];
        assert!(w[1] + t[1] > 3.0 * (w[0] + t[0]).abs(), "{:?}", a.head);
        assert!(
            a.val_head.0 > 0.95 && a.val_head.0 > a.val_product.0,
            "{a:?}"
        );
        assert!(a.val_images > 20 && a.train_images > 60);
        // Label noise bounds P(yes) to [ε, 1 − ε] and leaves the ranking.
        let noisy = train(
            &HeadTrainConfig {
                label_noise: 0.1,
                ..cfg()
            },
            &data,
            &mut |_, _, _| {},
        );
        let top = |t: &Trained| {
            data.iter()
                .flat_map(|l| l.features.iter().map(|f| t.head.p_yes(f, &l.tag)))
                .fold(0.0, f64::max)
        };
        assert!(
            top(&noisy) <= 0.9 + 1e-12 && top(&a) > 0.95,
            "{} {}",
            top(&a),
            top(&noisy)
        );
        assert!(noisy.val_head.0 > 0.95, "{noisy:?}");
    }
}
