//! A bank's final candidates shown to judges: each judge's P(yes) for every candidate, beside
//! the evaluation detector's verdict — the data of the verifier benchmark (`eval judge --bank`).

use super::read_job;
use crate::error::{Error, ModelFault, Result};
use crate::generator::Generator;
use crate::judge::{Judge, JudgeRequest, JudgeTask};
use crate::run::Job;
use std::path::Path;

/// One banked image: its candidates' verdicts and each judge's P(yes) for them.
#[derive(Debug, Clone, PartialEq)]
pub struct JudgedImage {
    pub prompt_index: usize,
    pub image_index: usize,
    pub tag: String,
    pub correct: Vec<bool>,
    /// `p_yes[j][c]`: judge j's P(yes) (task `final`) for candidate c.
    pub p_yes: Vec<Vec<f64>>,
    /// With ablations: `p_blank[j][c]`, judge j's P(yes) for candidate c's prompt with a blank
    /// image, and `p_shuffled[j][c]`, for candidate c's prompt with the image of candidate π(c)
    /// of the same image job (π a seeded random permutation); empty otherwise. A judge that finds the prompt
    /// in the image ranks at chance with either.
    pub p_blank: Vec<Vec<f64>>,
    pub p_shuffled: Vec<Vec<f64>>,
    /// With `by_step`: `p_steps[j][c][t]`, judge j's P(yes) of task `potential` on candidate c's
    /// preview after step t + 1 (the last is the final image); empty otherwise.
    pub p_steps: Vec<Vec<Vec<f64>>>,
}

/// What [`judge_bank`] asks besides the final question on every candidate.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Asks {
    /// Jobs decoded and judged together.
    pub batch_jobs: usize,
    /// Also every preview, with task `potential` (what PARM's potential question sees).
    pub by_step: bool,
    /// Also the two ablations (blank image; images shuffled among the job's candidates), the
    /// permutations drawn from this seed, the prompt and the image index.
    pub ablations: Option<u64>,
}

/// The uniform image that stands for "no image" in the blank ablation: GenEval's neutral
/// background grey (#999), of the candidate's size.
pub fn blank_like(image: &image::RgbImage) -> image::RgbImage {
    image::RgbImage::from_pixel(image.width(), image.height(), image::Rgb([0x99; 3]))
}

/// A uniformly random permutation of `0..n`, seeded so that the ablation is reproducible. Not a
/// derangement: barring a candidate from its own image would show a right candidate fewer right
/// images than a wrong one ((r−1)/(n−1) against r/(n−1) with r right of n), and a judge that
/// sees the verdict would rank *below* chance (0.45 for the evidence judge on the development
/// bank). Under a uniform permutation the images of any two candidates are an exchangeable pair,
/// so every judge is at 0.5 in expectation.
pub fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    let mut to: Vec<usize> = (0..n).collect();
    crate::rng::Rng::new(seed).shuffle(&mut to);
    to
}

/// Decodes the first `n` final candidates of every job of bank `dir` with `generator` (the
/// bank's, checked beforehand) and asks every judge about them, `asks.batch_jobs` jobs at a
/// time, plus what `asks` names.
pub fn judge_bank(
    dir: &Path,
    jobs: &[Job],
    n: usize,
    generator: &dyn Generator,
    judges: &[&dyn Judge],
    asks: Asks,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<JudgedImage>> {
    let chunks: Vec<&[Job]> = jobs.chunks(asks.batch_jobs.max(1)).collect();
    let width = if generator.concurrent() && judges.iter().all(|j| j.concurrent()) {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    let mut out = Vec::with_capacity(jobs.len());
    progress(0, jobs.len());
    crate::waves::in_order(
        &chunks,
        width,
        |chunk| judge_chunk(dir, chunk, n, generator, judges, asks),
        |_, judged| {
            out.extend(judged?);
            progress(out.len(), jobs.len());
            Ok::<(), Error>(())
        },
    )?;
    Ok(out)
}

fn judge_chunk(
    dir: &Path,
    jobs: &[Job],
    n: usize,
    generator: &dyn Generator,
    judges: &[&dyn Judge],
    asks: Asks,
) -> Result<Vec<JudgedImage>> {
    let by_step = asks.by_step;
    let banked = jobs
        .iter()
        .map(|j| read_job(dir, j.prompt_index, j.image_index, &j.metadata.prompt, n))
        .collect::<Result<Vec<_>>>()?;
    let finals: Vec<_> = banked
        .iter()
        .flat_map(|b| b.candidates[..n].iter().map(|c| c.last().clone()))
        .collect();
    let fail = |e: ModelFault| {
        super::invalid(
            dir,
            format!(
                "prompt {} image {} and the {} images with it: {e}",
                jobs[0].prompt_index,
                jobs[0].image_index,
                jobs.len() - 1
            ),
        )
    };
    let images = generator.decode(&finals).map_err(fail)?;
    let requests: Vec<JudgeRequest<'_>> = images
        .iter()
        .enumerate()
        .map(|(i, image)| JudgeRequest {
            task: JudgeTask::Final,
            image,
            metadata: &jobs[i / n].metadata,
            step: None,
        })
        .collect();
    let ask = |requests: &[JudgeRequest<'_>]| -> Result<Vec<Vec<f64>>> {
        let mut p: Vec<Vec<f64>> = Vec::with_capacity(judges.len());
        for judge in judges {
            let verdicts = judge.judge(requests).map_err(fail)?;
            crate::judge::check_verdicts(judge.name(), requests, &verdicts).map_err(fail)?;
            p.push(verdicts.into_iter().map(|v| v.p_yes).collect());
        }
        Ok(p)
    };
    let p = ask(&requests)?;
    let (p_blank, p_shuffled) = match asks.ablations {
        None => (Vec::new(), Vec::new()),
        Some(seed) => {
            // Only the image changes; the task, the prompt and everything else the judge is
            // told stay the candidate's own.
            let blanks: Vec<_> = images.iter().map(blank_like).collect();
            let blanked: Vec<JudgeRequest<'_>> = requests
                .iter()
                .zip(&blanks)
                .map(|(r, image)| JudgeRequest { image, ..r.clone() })
                .collect();
            let mut from = Vec::with_capacity(images.len());
            for (k, j) in jobs.iter().enumerate() {
                let to = shuffled(
                    n,
                    crate::rng::derive_seed(seed, &[j.prompt_index as u64, j.image_index as u64]),
                );
                from.extend(to.into_iter().map(|c| k * n + c));
            }
            let shuffled: Vec<JudgeRequest<'_>> = requests
                .iter()
                .zip(&from)
                .map(|(r, &f)| JudgeRequest {
                    image: &images[f],
                    ..r.clone()
                })
                .collect();
            (ask(&blanked)?, ask(&shuffled)?)
        }
    };
    // steps[j][i][t]: judge j, candidate i of the chunk, preview after step t + 1.
    let mut steps: Vec<Vec<Vec<f64>>> = vec![vec![Vec::new(); finals.len()]; judges.len()];
    if by_step {
        let states: Vec<Vec<&crate::generator::Trajectory>> = banked
            .iter()
            .flat_map(|b| {
                b.candidates[..n]
                    .iter()
                    .map(|c| c.states.iter().skip(1).collect())
            })
            .collect();
        let longest = states.iter().map(Vec::len).max().unwrap_or(0);
        for t in 0..longest {
            let at: Vec<usize> = (0..states.len()).filter(|&i| t < states[i].len()).collect();
            let batch: Vec<_> = at.iter().map(|&i| states[i][t].clone()).collect();
            let previews = generator.decode(&batch).map_err(fail)?;
            let requests: Vec<JudgeRequest<'_>> = previews
                .iter()
                .zip(&at)
                .map(|(image, &i)| JudgeRequest {
                    task: JudgeTask::Potential,
                    image,
                    metadata: &jobs[i / n].metadata,
                    step: Some((states[i][t].step, states[i][t].steps)),
                })
                .collect();
            for (j, judge) in judges.iter().enumerate() {
                let verdicts = judge.judge(&requests).map_err(fail)?;
                crate::judge::check_verdicts(judge.name(), &requests, &verdicts).map_err(fail)?;
                for (&i, v) in at.iter().zip(verdicts) {
                    steps[j][i].push(v.p_yes);
                }
            }
        }
    }
    Ok(jobs
        .iter()
        .zip(&banked)
        .enumerate()
        .map(|(k, (j, b))| JudgedImage {
            p_steps: if by_step {
                steps
                    .iter()
                    .map(|sj| sj[k * n..(k + 1) * n].to_vec())
                    .collect()
            } else {
                Vec::new()
            },
            prompt_index: j.prompt_index,
            image_index: j.image_index,
            tag: j.metadata.tag.as_str().to_string(),
            correct: b.candidates[..n].iter().map(|c| c.correct).collect(),
            p_yes: p.iter().map(|pj| pj[k * n..(k + 1) * n].to_vec()).collect(),
            p_blank: p_blank
                .iter()
                .map(|pj| pj[k * n..(k + 1) * n].to_vec())
                .collect(),
            p_shuffled: p_shuffled
                .iter()
                .map(|pj| pj[k * n..(k + 1) * n].to_vec())
                .collect(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::shuffled;

    #[test]
    fn shuffles_are_seeded_uniform_permutations() {
        // Over many seeds every candidate lands at every position about equally often.
        let n = 4;
        let mut counts = vec![vec![0usize; n]; n];
        for seed in 0..4000 {
            let to = shuffled(n, seed);
            let mut seen = to.clone();
            seen.sort_unstable();
            assert_eq!(seen, (0..n).collect::<Vec<_>>());
            for (c, &t) in to.iter().enumerate() {
                counts[c][t] += 1;
            }
        }
        for row in &counts {
            for &k in row {
                assert!((850..1150).contains(&k), "{counts:?}");
            }
        }
        assert_eq!(shuffled(8, 5), shuffled(8, 5));
    }
}
