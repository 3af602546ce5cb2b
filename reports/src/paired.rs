//! Paired comparison of two runs on the same (prompt, image) keys: the difference of their
//! overall GenEval scores with a paired bootstrap interval over prompts (stratified by tag), and
//! one-sided sign-flip p-values each way ([`crate::stats::weighted_sign_test_drop`]) — how a
//! claim "A beats B" is decided, rather than by whether two unpaired intervals overlap.

use crate::run::ImageResult;
use crate::stats::{weighted_sign_test_drop, Estimate, Stratum};
use harness::rng::Rng;
use std::collections::BTreeMap;

/// A − B on the images both runs have.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDiff {
    /// Images compared (both runs have them).
    pub images: usize,
    /// Images where exactly one run is correct.
    pub discordant: usize,
    /// Overall score of A minus that of B (mean over tags), with its interval.
    pub diff: Estimate,
    /// One-sided p-value of "A is better" (small when A's lead is unlikely under no change).
    pub p_greater: f64,
    /// One-sided p-value of "B is better".
    pub p_less: f64,
}

impl PairedDiff {
    /// Two-sided p-value (twice the smaller one-sided one).
    pub fn p_two_sided(&self) -> f64 {
        (2.0 * self.p_greater.min(self.p_less)).min(1.0)
    }
}

/// Per prompt of one tag: (A correct, B correct) of each image.
type Prompts = BTreeMap<usize, Vec<(bool, bool)>>;

/// Compares runs `a` and `b`; `None` when they share no image or disagree on an image's tag.
pub fn paired_difference(
    a: &[ImageResult],
    b: &[ImageResult],
    resamples: usize,
    seed: u64,
    level: f64,
) -> Option<PairedDiff> {
    let bs: BTreeMap<_, &ImageResult> = b.iter().map(|r| (r.key(), r)).collect();
    let mut tags: BTreeMap<&str, Prompts> = BTreeMap::new();
    let mut images = 0;
    for ra in a {
        let Some(rb) = bs.get(&ra.key()) else {
            continue;
        };
        if rb.tag != ra.tag {
            return None;
        }
        images += 1;
        tags.entry(ra.tag.as_str())
            .or_default()
            .entry(ra.prompt_index)
            .or_default()
            .push((ra.correct, rb.correct));
    }
    if images == 0 {
        return None;
    }
    let k = tags.len() as f64;
    let diff_of = |groups: &[Vec<&Vec<(bool, bool)>>]| -> f64 {
        groups
            .iter()
            .map(|prompts| {
                let (mut d, mut n) = (0i64, 0usize);
                for p in prompts {
                    for &(x, y) in p.iter() {
                        d += x as i64 - y as i64;
                        n += 1;
                    }
                }
                d as f64 / n.max(1) as f64
            })
            .sum::<f64>()
            / k
    };
    let all: Vec<Vec<&Vec<(bool, bool)>>> = tags.values().map(|ps| ps.values().collect()).collect();
    let value = diff_of(&all);
    let mut rng = Rng::new(seed);
    let mut draws: Vec<f64> = (0..resamples)
        .map(|_| {
            let groups: Vec<Vec<&Vec<(bool, bool)>>> = all
                .iter()
                .map(|ps| (0..ps.len()).map(|_| ps[rng.index(ps.len())]).collect())
                .collect();
            diff_of(&groups)
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let q = |q: f64| {
        if draws.is_empty() {
            return value;
        }
        crate::stats::quantile(&draws, q)
    };
    let alpha = (1.0 - level) / 2.0;
    // Strata: one per tag; a pair flipping moves the overall score by 1 / (tags × images).
    let strata = |a_first: bool| -> Vec<Stratum> {
        all.iter()
            .map(|ps| {
                let pairs: Vec<(bool, bool)> = ps.iter().flat_map(|p| p.iter().copied()).collect();
                let only_a = pairs.iter().filter(|(x, y)| *x && !*y).count() as u64;
                let only_b = pairs.iter().filter(|(x, y)| !*x && *y).count() as u64;
                let (lost, gained) = if a_first {
                    (only_a, only_b)
                } else {
                    (only_b, only_a)
                };
                Stratum {
                    lost,
                    gained,
                    weight: 1.0 / (k * pairs.len() as f64),
                }
            })
            .collect()
    };
    let discordant = strata(true)
        .iter()
        .map(|s| (s.lost + s.gained) as usize)
        .sum();
    Some(PairedDiff {
        images,
        discordant,
        diff: Estimate {
            value,
            low: q(alpha),
            high: q(1.0 - alpha),
        },
        // "A better" is a drop of B relative to A: A as the baseline, B as the run.
        p_greater: weighted_sign_test_drop(&strata(true), 20_000, seed ^ 0x5eed),
        p_less: weighted_sign_test_drop(&strata(false), 20_000, seed ^ 0x5eed),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(p: usize, tag: &str, correct: bool) -> ImageResult {
        ImageResult {
            prompt_index: p,
            image_index: 0,
            tag: tag.into(),
            prompt: String::new(),
            correct,
            reason: String::new(),
        }
    }

    #[test]
    fn a_clear_gain_is_significant_one_way_only() {
        let a: Vec<_> = (0..60)
            .map(|p| img(p, ["x", "y"][p % 2], p % 5 != 0))
            .collect();
        let b: Vec<_> = (0..60)
            .map(|p| img(p, ["x", "y"][p % 2], p % 2 == 0 && p % 5 != 0))
            .collect();
        let d = paired_difference(&a, &b, 500, 1, 0.95).unwrap();
        assert_eq!(d.images, 60);
        assert!(d.diff.value > 0.3 && d.diff.low > 0.0, "{d:?}");
        assert!(d.p_greater < 1e-3 && d.p_less > 0.5, "{d:?}");
        let same = paired_difference(&a, &a, 100, 1, 0.95).unwrap();
        assert_eq!((same.diff.value, same.discordant), (0.0, 0));
        assert_eq!(same.p_greater, 1.0);
    }

    #[test]
    fn runs_without_common_images_are_not_compared() {
        let a = vec![img(0, "x", true)];
        let b = vec![img(1, "x", true)];
        assert!(paired_difference(&a, &b, 10, 1, 0.95).is_none());
        let c = vec![img(0, "y", true)];
        assert!(paired_difference(&a, &c, 10, 1, 0.95).is_none());
    }
}
