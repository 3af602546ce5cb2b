//! Uncertainty of GenEval scores: percentile bootstrap intervals from resampling prompts, and the
//! paired tests the gate uses (exact sign test on discordant images, and its weighted version for
//! the overall score).
//!
//! Prompts, not images, are the resampled unit: the images of one prompt share its difficulty.
//! The resampling is stratified by tag (each tag keeps its number of prompts), so the overall
//! score of a resample is, as in GenEval, the unweighted mean of its per-tag image accuracies.

use harness::rng::Rng;

/// Correct and total images of one prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PromptCount {
    pub correct: u32,
    pub total: u32,
}

/// A point estimate with its interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Per-tag and overall estimates of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    pub tags: Vec<Estimate>,
    pub overall: Estimate,
}

/// Image accuracy of a set of prompts.
pub fn accuracy(prompts: &[PromptCount]) -> f64 {
    let (c, t) = prompts.iter().fold((0u64, 0u64), |(c, t), p| {
        (c + p.correct as u64, t + p.total as u64)
    });
    if t == 0 {
        0.0
    } else {
        c as f64 / t as f64
    }
}

/// Percentile bootstrap at `level` (e.g. 0.95) over `resamples` resamples, seeded: the same
/// input, seed and count always give the same intervals. `tags[t]` holds tag t's prompts; an
/// empty tag is an error of the caller (it has no accuracy) and panics.
pub fn bootstrap(tags: &[Vec<PromptCount>], resamples: usize, seed: u64, level: f64) -> Bootstrap {
    assert!(tags.iter().all(|t| !t.is_empty()), "a tag without prompts");
    let point: Vec<f64> = tags.iter().map(|t| accuracy(t)).collect();
    let overall = mean(&point);
    let mut per_tag: Vec<Vec<f64>> = vec![Vec::with_capacity(resamples); tags.len()];
    let mut overall_draws = Vec::with_capacity(resamples);
    let mut rng = Rng::new(seed);
    for _ in 0..resamples {
        let mut sum = 0.0;
        for (t, prompts) in tags.iter().enumerate() {
            let (mut c, mut n) = (0u64, 0u64);
            for _ in 0..prompts.len() {
                let p = prompts[rng.index(prompts.len())];
                c += p.correct as u64;
                n += p.total as u64;
            }
            let a = if n == 0 { 0.0 } else { c as f64 / n as f64 };
            per_tag[t].push(a);
            sum += a;
        }
        overall_draws.push(sum / tags.len() as f64);
    }
    let estimate = |value: f64, mut draws: Vec<f64>| {
        if draws.is_empty() {
            return Estimate {
                value,
                low: value,
                high: value,
            };
        }
        draws.sort_by(f64::total_cmp);
        let a = (1.0 - level) / 2.0;
        Estimate {
            value,
            low: quantile(&draws, a),
            high: quantile(&draws, 1.0 - a),
        }
    };
    Bootstrap {
        tags: point
            .iter()
            .zip(per_tag)
            .map(|(v, d)| estimate(*v, d))
            .collect(),
        overall: estimate(overall, overall_draws),
    }
}

fn mean(xs: &[f64]) -> f64 {
    xs.iter().sum::<f64>() / xs.len() as f64
}

/// Linear-interpolated quantile of sorted values (numpy's default).
pub(crate) fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// One-sided exact sign test (McNemar's exact test) on discordant pairs: with `lost` pairs where
/// only the baseline is correct and `gained` where only the run is, the probability under "no
/// change" (each discordant pair equally likely either way) of losing at least `lost` of the
/// `lost + gained` pairs: P(X ≥ lost), X ~ Binomial(lost + gained, 1/2). 1 when there are no
/// discordant pairs.
pub fn sign_test_drop(lost: u64, gained: u64) -> f64 {
    let n = lost + gained;
    if lost == 0 {
        return 1.0;
    }
    if n <= 1000 {
        // Exact for small n: binomial coefficients (below 2^1000) summed, then scaled by 2^-n.
        let mut c = 1.0f64; // C(n, 0)
        let mut sum = 0.0f64;
        for k in 0..=n {
            if k >= lost {
                sum += c;
            }
            c = c * (n - k) as f64 / (k + 1) as f64;
        }
        return (sum * 2f64.powi(-(n as i32))).min(1.0);
    }
    // ln n! for 0..=n.
    let mut ln_fact = Vec::with_capacity(n as usize + 1);
    ln_fact.push(0.0f64);
    for i in 1..=n {
        ln_fact.push(ln_fact[i as usize - 1] + (i as f64).ln());
    }
    let ln_half_n = n as f64 * std::f64::consts::LN_2;
    let p: f64 = (lost..=n)
        .map(|k| {
            (ln_fact[n as usize] - ln_fact[k as usize] - ln_fact[(n - k) as usize] - ln_half_n)
                .exp()
        })
        .sum();
    p.min(1.0)
}

/// Discordant pairs of one stratum (tag) and its weight in the statistic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stratum {
    /// Pairs where only the baseline is correct.
    pub lost: u64,
    /// Pairs where only the run is correct.
    pub gained: u64,
    /// Weight of one pair: the overall score moves by this much when one pair flips, i.e.
    /// 1 / (tags × images of the tag).
    pub weight: f64,
}

/// One-sided paired test of a drop in a weighted score (the overall GenEval score, a mean over
/// tags): the statistic is the observed drop Σ weight·(lost − gained); under "no change" every
/// discordant pair's sign is a fair coin. Exact (the sign test on all pairs) when every stratum
/// with discordant pairs has the same weight; otherwise a seeded Monte-Carlo sign-flip test with
/// `draws` draws, p = (1 + #{drop* ≥ drop}) / (1 + draws).
pub fn weighted_sign_test_drop(strata: &[Stratum], draws: usize, seed: u64) -> f64 {
    let active: Vec<&Stratum> = strata.iter().filter(|s| s.lost + s.gained > 0).collect();
    if active.is_empty() {
        return 1.0;
    }
    let w0 = active[0].weight;
    if active
        .iter()
        .all(|s| (s.weight - w0).abs() <= 1e-12 * w0.abs().max(1.0))
    {
        let lost = active.iter().map(|s| s.lost).sum();
        let gained = active.iter().map(|s| s.gained).sum();
        return sign_test_drop(lost, gained);
    }
    let observed: f64 = active
        .iter()
        .map(|s| s.weight * (s.lost as f64 - s.gained as f64))
        .sum();
    let tol = 1e-9 * active.iter().map(|s| s.weight).fold(0.0, f64::max);
    let mut rng = Rng::new(seed);
    let mut hits = 0usize;
    for _ in 0..draws {
        let mut d = 0.0;
        for s in &active {
            let n = s.lost + s.gained;
            let lost = binomial_half(&mut rng, n);
            d += s.weight * (2.0 * lost as f64 - n as f64);
        }
        if d >= observed - tol {
            hits += 1;
        }
    }
    (1 + hits) as f64 / (1 + draws) as f64
}

/// A Binomial(n, 1/2) draw: the number of set bits among n random bits.
fn binomial_half(rng: &mut Rng, n: u64) -> u64 {
    let mut left = n;
    let mut ones = 0u64;
    while left >= 64 {
        ones += rng.next_u64().count_ones() as u64;
        left -= 64;
    }
    if left > 0 {
        ones += (rng.next_u64() & ((1u64 << left) - 1)).count_ones() as u64;
    }
    ones
}

/// Indices of the runs on the Pareto front of (lower compute, higher overall accuracy), in
/// order of compute.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..points.len()).collect();
    order.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
    });
    let mut front = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for i in order {
        if points[i].1 > best {
            best = points[i].1;
            front.push(i);
        }
    }
    front
}

/// Round values (1, 2, 5 × 10^k) whose log10 lies in `[lo, hi]`.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    for k in (lo.floor() as i32)..=(hi.ceil() as i32) {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            if (lo..=hi).contains(&v.log10()) {
                ticks.push(v);
            }
        }
    }
    ticks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prompts(correct: &[u32], per_prompt: u32) -> Vec<PromptCount> {
        correct
            .iter()
            .map(|&c| PromptCount {
                correct: c,
                total: per_prompt,
            })
            .collect()
    }

    /// `n` prompts of 4 images, correct counts cycling through 0..=4 (accuracy 0.5).
    fn tag(n: usize) -> Vec<PromptCount> {
        let c: Vec<u32> = (0..n).map(|i| (i % 5) as u32).collect();
        prompts(&c, 4)
    }

    #[test]
    fn bootstrap_is_deterministic_and_seeded() {
        let tags = vec![tag(40), prompts(&[4, 4, 3, 0, 1, 4, 4, 2], 4)];
        let a = bootstrap(&tags, 1000, 7, 0.95);
        let b = bootstrap(&tags, 1000, 7, 0.95);
        assert_eq!(a, b);
        let c = bootstrap(&tags, 1000, 8, 0.95);
        assert_ne!(a.overall.low, c.overall.low);
        assert_eq!(a.overall.value, c.overall.value);
    }

    #[test]
    fn interval_contains_point_estimate() {
        let tags = vec![
            tag(25),
            prompts(&[4, 4, 3, 0, 1, 4, 4, 2, 0, 0, 1], 4),
            tag(7),
        ];
        let b = bootstrap(&tags, 1000, 1, 0.95);
        for e in b.tags.iter().chain([&b.overall]) {
            assert!(e.low <= e.value && e.value <= e.high, "{e:?}");
            assert!(e.low < e.high, "{e:?}");
        }
        assert_eq!(b.tags[0].value, 0.5);
        assert!((b.overall.value - (0.5 + 23.0 / 44.0 + accuracy(&tag(7))) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn interval_narrows_with_more_prompts() {
        let width = |n: usize| {
            let b = bootstrap(&[tag(n)], 1000, 3, 0.95);
            b.overall.high - b.overall.low
        };
        let (w20, w200, w2000) = (width(20), width(200), width(2000));
        assert!(w20 > w200 && w200 > w2000, "{w20} {w200} {w2000}");
        // About 1/sqrt(10) each time.
        assert!(
            w200 < 0.5 * w20 && w2000 < 0.5 * w200,
            "{w20} {w200} {w2000}"
        );
    }

    #[test]
    fn constant_data_has_a_zero_width_interval() {
        let b = bootstrap(&[prompts(&[4, 4, 4], 4)], 200, 0, 0.95);
        assert_eq!((b.overall.low, b.overall.high), (1.0, 1.0));
    }

    #[test]
    fn sign_test_known_values() {
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(sign_test_drop(10, 0), 1.0 / 1024.0));
        assert!(close(sign_test_drop(5, 5), 638.0 / 1024.0));
        assert!(close(sign_test_drop(8, 2), 56.0 / 1024.0));
        assert!(close(sign_test_drop(1, 0), 0.5));
        assert!(close(sign_test_drop(0, 3), 1.0));
        assert!(close(sign_test_drop(0, 0), 1.0));
        // Large n stays finite and sensible: 600 vs 400 is far out (z ≈ 6.3).
        // Both branches (exact up to 1000 pairs, log-space above): P(X ≥ a) + P(X ≤ a - 1) = 1.
        for (a, b) in [(520, 480), (1100, 1000), (30, 2000)] {
            let sum = sign_test_drop(a, b) + sign_test_drop(b + 1, a - 1);
            assert!((sum - 1.0).abs() < 1e-9, "{a} {b}: {sum}");
        }
        let p = sign_test_drop(600, 400);
        assert!(p > 0.0 && p < 1e-9, "{p}");
        assert!(close(
            sign_test_drop(500, 500) + sign_test_drop(500, 500),
            1.0 + {
                // P(X ≥ 500) + P(X ≥ 500) = 1 + P(X = 500)
                let mut l = 0.0;
                for i in 1..=1000 {
                    l += (i as f64).ln();
                }
                let mut h = 0.0;
                for i in 1..=500 {
                    h += (i as f64).ln();
                }
                (l - 2.0 * h - 1000.0 * std::f64::consts::LN_2).exp()
            }
        ));
    }

    #[test]
    fn weighted_test_is_exact_with_equal_weights_and_close_otherwise() {
        let s = |lost, gained, weight| Stratum {
            lost,
            gained,
            weight,
        };
        // Equal weights: the sign test on all discordant pairs, exactly.
        let p = weighted_sign_test_drop(&[s(6, 1, 0.1), s(2, 1, 0.1), s(0, 0, 0.5)], 10, 0);
        assert!((p - sign_test_drop(8, 2)).abs() < 1e-12);
        assert_eq!(weighted_sign_test_drop(&[s(0, 0, 0.1)], 10, 0), 1.0);
        // Unequal weights where one stratum dominates: close to that stratum's exact test.
        let p = weighted_sign_test_drop(&[s(8, 2, 1.0), s(1, 1, 1e-6)], 20000, 5);
        assert!((p - 56.0 / 1024.0).abs() < 0.01, "{p}");
        assert_eq!(
            p,
            weighted_sign_test_drop(&[s(8, 2, 1.0), s(1, 1, 1e-6)], 20000, 5)
        );
    }

    #[test]
    fn binomial_half_counts_bits() {
        let mut rng = Rng::new(1);
        let n = 20000;
        let total: u64 = (0..n).map(|_| binomial_half(&mut rng, 100)).sum();
        let mean = total as f64 / n as f64;
        assert!((mean - 50.0).abs() < 0.2, "{mean}");
        assert_eq!(binomial_half(&mut rng, 0), 0);
    }
}
