//! Tokenizer validation: reconstruction PSNR on held-out renders, codebook use, and how much of
//! the ground-truth suite's GenEval score survives encode → decode (judged by a detector).

use super::inference::VqTokenizer;
use crate::detector::eval::score_suite_with;
use crate::store::ModelError;
use burn::prelude::*;
use harness::detector::Detector;
use harness::results::ResultRow;
use harness::summary::Summary;
use image::RgbImage;
use std::fmt::Write;
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

/// The Markdown report of a tokenizer validation (`evalcot eval tokenizer`, docs/tokenizer.md):
/// `orig` and `recon` are the GenEval summaries of the ground-truth suite and of its
/// reconstructions, `command` the line that says which command made it.
#[allow(clippy::too_many_arguments)]
pub fn markdown(
    ev: &VqEval,
    orig: &Summary,
    recon: &Summary,
    name: &str,
    command: &str,
    seed: u64,
    suite_images: usize,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Tokenizer validation: {name}\n");
    let _ = writeln!(s, "{command}\n");
    let _ = writeln!(s, "## Reconstruction\n");
    let _ = writeln!(
        s,
        "| held-out renders (seed {}) | images | mean PSNR (dB) |\n|---|---|---|",
        seed
    );
    let _ = writeln!(
        s,
        "| random scenes (0–5 objects) | {} | {:.2} |",
        ev.images, ev.psnr_random
    );
    let _ = writeln!(
        s,
        "| training-prompt scenes | {} | {:.2} |\n",
        ev.images, ev.psnr_prompts
    );
    let _ = writeln!(
        s,
        "Codebook: {} of {} codes used on these images, perplexity {:.1}. Token predictability \
         (what a generator can learn): {:.1} distinct codes per image of {} tokens; a token equals \
         its left neighbour {:.1}% of the time.\n",
        ev.codes_used,
        ev.codebook,
        ev.perplexity,
        ev.distinct_per_image,
        ev.tokens,
        100.0 * ev.left_agreement
    );
    let _ = writeln!(
        s,
        "## GenEval of the ground-truth suite, original vs reconstructed\n"
    );
    let _ = writeln!(s, "553 official prompts × {} renders (seed 1234), judged by the evaluation detector and the GenEval rules.\n", suite_images);
    let _ = writeln!(
        s,
        "| tag | original | reconstructed | kept |\n|---|---|---|---|"
    );
    for (a, b) in orig.tags.iter().zip(&recon.tags) {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.1}% |",
            a.tag,
            a.accuracy(),
            b.accuracy(),
            100.0 * b.accuracy() / a.accuracy().max(1e-9)
        );
    }
    let _ = writeln!(
        s,
        "| **overall** | **{:.3}** | **{:.3}** | {:.1}% |",
        orig.overall(),
        recon.overall(),
        100.0 * recon.overall() / orig.overall().max(1e-9)
    );
    s
}

/// Ground-truth renders of 32 official prompts (odd columns) beside their reconstructions.
pub fn contact_sheet<B: Backend>(tok: &VqTokenizer<B>) -> Result<RgbImage, ModelError> {
    let suite = harness::Suite::official();
    let originals: Vec<_> = (0..32)
        .map(|k| {
            let p = &suite.prompts[k * 17 % suite.prompts.len()];
            world::dataset::suite_scene(p, 1234, 0, tok.meta.train.style).map(|sc| sc.image)
        })
        .collect::<Result<_, _>>()
        .map_err(|e| ModelError::config("contact sheet", e.to_string()))?;
    let grids = tok.encode(&originals);
    let refs: Vec<&[u32]> = grids.iter().map(Vec::as_slice).collect();
    let recon = tok
        .decode(&refs)
        .map_err(|e| ModelError::config("contact sheet", e.to_string()))?;
    let mut sheet = RgbImage::new(8 * 2 * 66, 4 * 66);
    for (k, (a, b)) in originals.iter().zip(&recon).enumerate() {
        let (x, y) = ((k % 8) as i64 * 132, (k / 8) as i64 * 66);
        image::imageops::overlay(&mut sheet, a, x, y);
        image::imageops::overlay(&mut sheet, b, x + 66, y);
    }
    Ok(sheet)
}
