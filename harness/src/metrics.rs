//! How well scores order verdicts: within one image's candidates (what best-of-N uses), pooled
//! over everything, and how calibrated they are. Shared by the verifier benchmark and the
//! trainers that report the same measures.

use std::cmp::Ordering;

/// Over pairs of a right and a wrong candidate of one image (`correct`, `score` per
/// candidate): (pairs the score orders right, ties counting one half; pairs).
pub fn within_image(correct: &[bool], score: &[f64]) -> (f64, f64) {
    let (mut won, mut pairs) = (0.0, 0.0);
    for (c, &ok) in correct.iter().enumerate() {
        for (d, &other) in correct.iter().enumerate() {
            if ok && !other {
                pairs += 1.0;
                won += match score[c].total_cmp(&score[d]) {
                    Ordering::Greater => 1.0,
                    Ordering::Equal => 0.5,
                    Ordering::Less => 0.0,
                };
            }
        }
    }
    (won, pairs)
}

/// Pooled AUROC: every (right, wrong) pair of `points` (score, verdict), Mann–Whitney with ties
/// one half; NaN without both kinds.
pub fn pooled_auroc(points: &[(f64, bool)]) -> f64 {
    let mut sorted: Vec<(f64, bool)> = points.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut rank_sum, mut pos, mut i) = (0.0, 0.0, 0);
    while i < sorted.len() {
        let mut j = i;
        while j < sorted.len() && sorted[j].0 == sorted[i].0 {
            j += 1;
        }
        let mid = (i + j + 1) as f64 / 2.0;
        for s in &sorted[i..j] {
            if s.1 {
                rank_sum += mid;
                pos += 1.0;
            }
        }
        i = j;
    }
    let neg = sorted.len() as f64 - pos;
    if pos == 0.0 || neg == 0.0 {
        return f64::NAN;
    }
    (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg)
}

/// Expected calibration error of P(yes) over 10 equal-width bins.
pub fn ece(points: &[(f64, bool)]) -> f64 {
    let mut bins = [(0.0f64, 0.0f64); 10];
    for &(p, y) in points {
        let b = ((p * 10.0) as usize).min(9);
        bins[b].0 += p;
        bins[b].1 += y as u8 as f64;
    }
    bins.iter().map(|b| (b.0 - b.1).abs()).sum::<f64>() / points.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_count_one_half_and_calibration_is_binned() {
        assert_eq!(
            pooled_auroc(&[(0.5, true), (0.5, false), (0.9, true), (0.1, false)]),
            (1.0 + 1.0 + 1.0 + 0.5) / 4.0
        );
        assert!(pooled_auroc(&[(0.9, true)]).is_nan());
        assert!(ece(&[(0.95, true), (0.05, false)]) < 0.06);
        assert_eq!(
            within_image(&[true, false, true], &[0.4, 0.4, 0.9]),
            (1.5, 2.0)
        );
    }
}
