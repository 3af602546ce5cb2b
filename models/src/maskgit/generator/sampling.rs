//! One sampling step's arithmetic: guidance, token draws (on the host or the device), the
//! re-masking schedule and decoding the full predictions.

use super::meta::*;
use crate::vq::VqTokenizer;
use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};
use harness::error::ModelFault;
use harness::generator::{cosine_mask_len, remask_temperature, Trajectory, MASK};
use harness::rng::Rng;
use image::RgbImage;

/// Classifier-free guidance on the host: `logits` holds `n` conditional rows then `n`
/// unconditional ones; returns `log_softmax((1+s)·cond − s·uncond)` over the last dimension,
/// row-major. A NaN or +∞ is an error naming the generator (−∞ is a legitimate log 0).
pub fn guided_log_probs<B: Backend, const D: usize>(
    logits: Tensor<B, D>,
    n: usize,
    s: f64,
    name: &str,
) -> Result<Vec<f32>, ModelFault> {
    let cond = logits.clone().narrow(0, 0, n);
    let unc = logits.narrow(0, n, n);
    let guided = cond.mul_scalar(1.0 + s) - unc.mul_scalar(s);
    let out: Vec<f32> = log_softmax(guided, D - 1)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| format!("generator output: {e:?}"))?;
    if let Some(bad) = out
        .iter()
        .find(|v| !v.is_finite() && **v != f32::NEG_INFINITY)
    {
        return Err(ModelFault::non_finite(format!(
            "generator {name} produced a non-finite log-probability ({bad})"
        )));
    }
    Ok(out)
}

/// Guidance and token draws where `logits` live (see [`Draws::Device`]): `logits` holds `n`
/// conditional rows then `n` unconditional ones, `u` one uniform per row. Returns per row the
/// drawn code and its guided log-probability — the only numbers that come back.
pub fn device_draws<B: Backend>(
    logits: Tensor<B, 2>,
    u: &[f32],
    sampling: SamplingConfig,
    name: &str,
) -> Result<Vec<(u32, f32)>, ModelFault> {
    let n = u.len();
    let [rows, k] = logits.dims();
    if rows != 2 * n {
        return Err(format!("{rows} logit rows for {n} uniforms, expected {}", 2 * n).into());
    }
    if k > 1 << 24 {
        return Err(
            format!("{k} codes: device draws return codes as f32, exact only up to 2^24").into(),
        );
    }
    let s = sampling.cfg_scale;
    let cond = logits.clone().narrow(0, 0, n);
    let unc = logits.narrow(0, n, n);
    let logp = log_softmax(cond.mul_scalar(1.0 + s) - unc.mul_scalar(s), 1);
    let picks: Tensor<B, 2, Int> = if sampling.temperature == 0.0 {
        logp.clone().argmax(1)
    } else {
        // The host's inverse CDF: the first code whose cumulative weight exceeds u × the row's
        // total is the number of codes whose cumulative weight does not. Scaling u by the f32
        // total (not assuming 1) keeps the last code from taking the rounding gap at the top.
        let p = if sampling.temperature == 1.0 {
            logp.clone().exp()
        } else {
            softmax(logp.clone().div_scalar(sampling.temperature), 1)
        };
        let cum = p.cumsum(1);
        let total = cum.clone().narrow(1, k - 1, 1);
        let u = Tensor::<B, 1>::from_data(TensorData::new(u.to_vec(), [n]), &logp.device())
            .reshape([n, 1]);
        cum.lower_equal((u * total).expand([n, k]))
            .int()
            .sum_dim(1)
            .clamp_max(k as i64 - 1)
    };
    // One read-back, one wait: each row's code (exact as a float below 2^24) beside its
    // log-probability.
    let lp = logp.gather(1, picks.clone());
    let both: Vec<f32> = Tensor::cat(vec![picks.float(), lp], 1)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| format!("generator output: {e:?}"))?;
    let mut out = Vec::with_capacity(n);
    for pair in both.chunks_exact(2) {
        let (code, lp) = (pair[0], pair[1]);
        // A NaN or +∞ anywhere in a row makes its log-softmax NaN, and so the drawn code's.
        if lp.is_nan() || lp == f32::INFINITY {
            return Err(ModelFault::non_finite(format!(
                "generator {name} produced a non-finite log-probability ({lp})"
            )));
        }
        out.push((code as u32, lp));
    }
    Ok(out)
}

/// Decodes each trajectory's full current prediction (both generator families). Before its first
/// step a trajectory has no prediction; masked positions decode as code 0 then (nothing looks
/// at such an image but previews).
pub fn decode_predictions<B: Backend>(
    tokenizer: &VqTokenizer<B>,
    batch: &[Trajectory],
) -> Result<Vec<RgbImage>, ModelFault> {
    let grids: Vec<Vec<u32>> = batch
        .iter()
        .map(|t| {
            if t.prediction.len() == t.tokens.len() {
                t.prediction.clone()
            } else {
                t.tokens
                    .iter()
                    .map(|&v| if v == MASK { 0 } else { v })
                    .collect()
            }
        })
        .collect();
    let refs: Vec<&[u32]> = grids.iter().map(Vec::as_slice).collect();
    tokenizer.decode(&refs)
}

/// The code whose cumulative probability first exceeds `u` under `logp` at `temperature`
/// (1: as given; 0: the most likely code).
pub(super) fn draw(logp: &[f32], u: f64, temperature: f64) -> usize {
    let last = logp.len() - 1;
    if temperature == 1.0 {
        let mut acc = 0.0f64;
        for (k, &lp) in logp.iter().enumerate() {
            acc += (lp as f64).exp();
            if u < acc {
                return k;
            }
        }
        return last;
    }
    let best = (0..logp.len()).fold(0, |b, k| if logp[k] > logp[b] { k } else { b });
    if temperature == 0.0 {
        return best;
    }
    let top = logp[best] as f64;
    // Two passes that recompute the weights rather than store them: no allocation per token,
    // and the same bits (the same `exp` of the same operands, summed in the same order).
    let weight = |lp: f32| ((lp as f64 - top) / temperature).exp();
    let target = u * logp.iter().map(|&lp| weight(lp)).sum::<f64>();
    let mut acc = 0.0;
    for (k, &lp) in logp.iter().enumerate() {
        acc += weight(lp);
        if target < acc {
            return k;
        }
    }
    last
}

/// The random numbers of one step of `t`: per masked position (in position order) the uniform
/// of its token draw and the Gumbel noise of its confidence, drawn in that order from the step's
/// own stream, so that the stream does not depend on which positions the model is sure about
/// nor on where the draw is made (host or device).
pub fn step_noise(t: &Trajectory) -> Vec<(f64, f64)> {
    let mut rng = Rng::new(t.step_seed());
    (0..t.masked()).map(|_| (rng.f64(), rng.gumbel())).collect()
}

/// One sampling step of one trajectory given its guided log-probabilities at its masked
/// positions (`[masked·codebook]`, in position order):
/// draw every masked token, score it `log p + τ·Gumbel`, keep the most confident and re-mask the
/// `mask_len` least confident (Show-o's loop). With `group_of` (the group of each token, for a
/// grouped network) whole groups are re-masked.
pub fn sample_step(
    t: &mut Trajectory,
    logp: &[f32],
    codebook: usize,
    (tau0, temperature): (f64, f64),
    group_of: Option<&[usize]>,
) {
    // The caller computed one row per masked token; another count is a bug, not bad input.
    assert_eq!(
        logp.len(),
        t.masked() * codebook,
        "sample_step: one log-probability row per masked token"
    );
    let noise = step_noise(t);
    // Multinomial draw by inverse CDF, made for every masked position.
    let picks: Vec<(u32, f32)> = noise
        .iter()
        .zip(logp.chunks_exact(codebook))
        .map(|(&(u, _), row)| {
            let pick = draw(row, u, temperature);
            (pick as u32, row[pick])
        })
        .collect();
    commit_step(t, &picks, &noise, tau0, group_of);
}

/// The rest of a step once every masked position has its drawn code and that code's guided
/// log-probability (`picks`, in position order): confidences, re-masking, the new prediction.
pub fn commit_step(
    t: &mut Trajectory,
    picks: &[(u32, f32)],
    noise: &[(f64, f64)],
    tau0: f64,
    group_of: Option<&[usize]>,
) {
    // One draw and one noise pair per masked token; anything else is a caller's bug.
    assert_eq!(
        picks.len(),
        t.masked(),
        "commit_step: one draw per masked token"
    );
    assert_eq!(
        noise.len(),
        t.masked(),
        "commit_step: one noise pair per masked token"
    );
    let tau = remask_temperature(tau0, t.step, t.steps);
    let n = t.tokens.len();
    let mut prediction = Vec::with_capacity(n);
    let mut confidence = Vec::with_capacity(n);
    let mut drawn = picks.iter().zip(noise);
    for &tok in &t.tokens {
        if tok != MASK {
            prediction.push(tok);
            confidence.push(f64::INFINITY);
            continue;
        }
        let Some((&(pick, lp), &(_, gumbel))) = drawn.next() else {
            unreachable!("lengths checked above");
        };
        prediction.push(pick);
        confidence.push(lp as f64 + tau * gumbel);
    }
    let unknown = t.masked();
    let keep_masked = cosine_mask_len(t.schedule_masked, t.step, t.steps, unknown);
    let remasked: std::collections::HashSet<usize> = match group_of {
        None => {
            // Positions re-masked: the `keep_masked` lowest confidences (ties by position).
            let mut order: Vec<usize> = (0..n).filter(|&p| t.tokens[p] == MASK).collect();
            order.sort_by(|&a, &b| confidence[a].total_cmp(&confidence[b]).then(a.cmp(&b)));
            order.into_iter().take(keep_masked).collect()
        }
        Some(group_of) => {
            // Whole groups, least confident first (a group's confidence is the sum over its
            // masked tokens: the joint log-probability plus noise), while they fit in
            // `keep_masked` (rounding down, so that every step commits at least one group).
            let groups = group_of.iter().copied().max().map_or(0, |g| g + 1);
            let mut conf = vec![0.0f64; groups];
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); groups];
            for p in (0..n).filter(|&p| t.tokens[p] == MASK) {
                conf[group_of[p]] += confidence[p];
                members[group_of[p]].push(p);
            }
            let mut order: Vec<usize> = (0..groups).filter(|&g| !members[g].is_empty()).collect();
            order.sort_by(|&a, &b| conf[a].total_cmp(&conf[b]).then(a.cmp(&b)));
            let mut set = std::collections::HashSet::new();
            for g in order {
                if set.len() + members[g].len() > keep_masked {
                    break;
                }
                set.extend(members[g].iter().copied());
            }
            set
        }
    };
    for (p, (tok, &pred)) in t.tokens.iter_mut().zip(&prediction).enumerate() {
        if *tok == MASK && !remasked.contains(&p) {
            *tok = pred;
        }
    }
    t.prediction = prediction;
    t.step += 1;
    t.forwards += 2;
}
