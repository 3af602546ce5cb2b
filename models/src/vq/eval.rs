//! Tokenizer validation: reconstruction PSNR on held-out renders, codebook use, and how much of
//! the ground-truth suite's GenEval score survives encode → decode (judged by a detector).

use super::inference::VqTokenizer;
use crate::detector::eval::score_suite_with;
use burn::prelude::*;
use harness::detector::Detector;
use harness::results::ResultRow;
use image::RgbImage;
use world::dataset::{DatasetKind, SampleSource};

pub struct VqEval {
    /// Mean PSNR (dB, 8-bit peak) over held-out random scenes and training-prompt scenes.
    pub psnr_random: f64,
    pub psnr_prompts: f64,
    pub images: usize,
    /// Codes used at least once on the held-out images, and the perplexity of their use.
    pub codes_used: usize,
    pub perplexity: f64,
    pub codebook: usize,
    /// Predictability of the token grids, which bounds what a generator can learn: distinct codes
    /// per image, and how often a token equals its left neighbour.
    pub distinct_per_image: f64,
    pub left_agreement: f64,
    pub tokens: usize,
    /// Ground-truth suite judged on the originals and on reconstructions.
    pub suite_original: Vec<ResultRow>,
    pub suite_reconstructed: Vec<ResultRow>,
}

/// PSNR between two equally sized images.
pub fn psnr(a: &RgbImage, b: &RgbImage) -> f64 {
    let n = (a.width() * a.height() * 3) as f64;
    let se: f64 = a
        .as_raw()
        .iter()
        .zip(b.as_raw())
        .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
        .sum();
    10.0 * (255.0f64.powi(2) / (se / n).max(1e-10)).log10()
}

fn reconstruct<B: Backend>(
    tok: &VqTokenizer<B>,
    images: &[RgbImage],
) -> Result<(Vec<RgbImage>, Vec<Vec<u32>>), String> {
    let grids = tok.encode(images);
    let refs: Vec<&[u32]> = grids.iter().map(Vec::as_slice).collect();
    Ok((tok.decode(&refs)?, grids))
}

/// Evaluates `tok` on `images` held-out renders of each kind (drawn with `seed`, which must differ
/// from the training seed) and on the ground-truth suite (553 × `suite_images`, seed 1234).
pub fn evaluate<B: Backend>(
    tok: &VqTokenizer<B>,
    det: &dyn Detector,
    images: usize,
    suite_images: usize,
    seed: u64,
) -> Result<VqEval, String> {
    let k = tok.meta.net.codebook;
    let mut counts = vec![0u64; k];
    let mut psnrs = [Vec::new(), Vec::new()];
    let (mut distinct, mut grids_seen, mut same_left, mut pairs) = (0usize, 0usize, 0usize, 0usize);
    let side = tok.meta.net.grid;
    for (slot, kind) in [DatasetKind::Detector, DatasetKind::Prompts]
        .into_iter()
        .enumerate()
    {
        // Held-out renders in the style the tokenizer was trained for.
        let source = SampleSource::styled(kind, seed, tok.meta.train.style);
        for start in (0..images).step_by(64) {
            let batch: Vec<RgbImage> = (start..(start + 64).min(images))
                .map(|i| {
                    source
                        .sample(i)
                        .map(|s| s.scene.image)
                        .map_err(|e| e.to_string())
                })
                .collect::<Result<_, _>>()?;
            let (recon, grids) = reconstruct(tok, &batch)?;
            grids
                .iter()
                .flatten()
                .for_each(|&c| counts[c as usize] += 1);
            for g in &grids {
                let mut codes = g.clone();
                codes.sort_unstable();
                codes.dedup();
                distinct += codes.len();
                grids_seen += 1;
                for (j, &c) in g.iter().enumerate().filter(|(j, _)| j % side > 0) {
                    pairs += 1;
                    same_left += usize::from(c == g[j - 1]);
                }
            }
            psnrs[slot].extend(batch.iter().zip(&recon).map(|(a, b)| psnr(a, b)));
        }
    }
    let total: u64 = counts.iter().sum();
    let entropy: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.ln()
        })
        .sum();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let style = tok.meta.train.style;
    let suite_original = score_suite_with(det, suite_images, 1234, style, &mut Ok)?;
    let suite_reconstructed = score_suite_with(det, suite_images, 1234, style, &mut |imgs| {
        Ok(reconstruct(tok, &imgs)?.0)
    })?;
    Ok(VqEval {
        psnr_random: mean(&psnrs[0]),
        psnr_prompts: mean(&psnrs[1]),
        images,
        codes_used: counts.iter().filter(|&&c| c > 0).count(),
        perplexity: entropy.exp(),
        codebook: k,
        distinct_per_image: distinct as f64 / grids_seen.max(1) as f64,
        left_agreement: same_left as f64 / pairs.max(1) as f64,
        tokens: side * side,
        suite_original,
        suite_reconstructed,
    })
}
