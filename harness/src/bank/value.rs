//! Monte-Carlo values of banked states: from a candidate's state after step t, K fresh
//! continuations (other draws for the remaining steps), each judged by the evaluation detector
//! and the GenEval rules; the share that ends right is the value of that state — what a
//! potential judge tries to predict from the preview. Its within-image ranking is the ceiling of
//! any potential judge at step t, and the same values are PRM/potential labels in the
//! Math-Shepherd sense (the outcome of rollouts, not of the path itself).

use super::read_job;
use crate::detector::Detector;
use crate::error::{Error, ModelFault, Result};
use crate::generator::{Generator, Trajectory};
use crate::rng::derive_seed;
use crate::run::Job;
use crate::RuleConfig;
use std::path::Path;

/// Salt of a rollout's draws: rollout k of a state continues from `derive_seed(seed, [ROLLOUT,
/// k])`, never the path's own draws (its own outcome would leak into its value).
pub const ROLLOUT: u64 = 0x7011;

/// One banked image with mixed outcomes and the values of its candidates' states.
#[derive(Debug, Clone, PartialEq)]
pub struct Valued {
    pub prompt_index: usize,
    pub image_index: usize,
    pub tag: String,
    pub correct: Vec<bool>,
    /// `value[a][c]`: of the rollouts from candidate c's state after step `at[a]`, the share
    /// the evaluation detector finds right.
    pub value: Vec<Vec<f64>>,
}

/// What [`values`] computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rollouts<'a> {
    /// Steps after which states are valued (each below the bank's steps).
    pub at: &'a [usize],
    /// Continuations per state.
    pub k: usize,
    /// Jobs rolled out together.
    pub batch_jobs: usize,
}

/// Values the states of the first `n` candidates of every job of bank `dir` whose candidates
/// are neither all right nor all wrong (an image with one outcome is decided whatever a
/// potential judge says, so its states need no value). The generator is the bank's (checked
/// beforehand).
pub fn values(
    dir: &Path,
    jobs: &[Job],
    n: usize,
    generator: &dyn Generator,
    detector: &dyn Detector,
    rollouts: Rollouts<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<Valued>> {
    let chunks: Vec<&[Job]> = jobs.chunks(rollouts.batch_jobs.max(1)).collect();
    let width = if generator.concurrent() {
        rayon::current_num_threads().max(1)
    } else {
        1
    };
    let mut out = Vec::new();
    let mut done = 0;
    progress(0, jobs.len());
    crate::waves::in_order(
        &chunks,
        width,
        |chunk| value_chunk(dir, chunk, n, generator, detector, rollouts),
        |chunk, valued| {
            out.extend(valued?);
            done += chunk.len();
            progress(done, jobs.len());
            Ok::<(), Error>(())
        },
    )?;
    Ok(out)
}

fn value_chunk(
    dir: &Path,
    jobs: &[Job],
    n: usize,
    generator: &dyn Generator,
    detector: &dyn Detector,
    rollouts: Rollouts<'_>,
) -> Result<Vec<Valued>> {
    let fail = |e: ModelFault| {
        super::invalid(
            dir,
            format!(
                "rollouts of prompt {} image {} and the {} images with it: {e}",
                jobs[0].prompt_index,
                jobs[0].image_index,
                jobs.len() - 1
            ),
        )
    };
    let mut mixed = Vec::new();
    for job in jobs {
        let banked = read_job(
            dir,
            job.prompt_index,
            job.image_index,
            &job.metadata.prompt,
            n,
        )?;
        let right = banked.candidates[..n].iter().filter(|c| c.correct).count();
        if right > 0 && right < n {
            mixed.push((job, banked));
        }
    }
    // Every rollout of the chunk, in (job, step, candidate, rollout) order.
    let mut batch: Vec<Trajectory> = Vec::new();
    for (job, banked) in &mixed {
        for &t in rollouts.at {
            for (c, cand) in banked.candidates[..n].iter().enumerate() {
                let state = cand.states.get(t).ok_or_else(|| {
                    super::invalid(
                        dir,
                        format!(
                            "prompt {} image {} candidate {c}: no state after step {t} ({} states)",
                            job.prompt_index,
                            job.image_index,
                            cand.states.len()
                        ),
                    )
                })?;
                for k in 0..rollouts.k {
                    let mut s = state.clone();
                    s.seed = derive_seed(state.seed, &[ROLLOUT, k as u64]);
                    batch.push(s);
                }
            }
        }
    }
    if batch.is_empty() {
        return Ok(Vec::new());
    }
    generator.run_to_end(&mut batch).map_err(fail)?;
    let images = generator.decode(&batch).map_err(fail)?;
    let per_job = rollouts.at.len() * n * rollouts.k;
    let metas: Vec<&crate::Metadata> = (0..batch.len())
        .map(|i| &mixed[i / per_job].0.metadata)
        .collect();
    let verdicts = crate::scoring::judge_images(detector, &images, &metas, &RuleConfig::default())
        .map_err(fail)?;
    Ok(mixed
        .iter()
        .enumerate()
        .map(|(m, (job, banked))| {
            let right = |a: usize, c: usize| {
                let from = m * per_job + (a * n + c) * rollouts.k;
                verdicts[from..from + rollouts.k]
                    .iter()
                    .filter(|v| v.as_ref().is_ok_and(|j| j.correct))
                    .count() as f64
                    / rollouts.k as f64
            };
            Valued {
                prompt_index: job.prompt_index,
                image_index: job.image_index,
                tag: job.metadata.tag.as_str().to_string(),
                correct: banked.candidates[..n].iter().map(|c| c.correct).collect(),
                value: (0..rollouts.at.len())
                    .map(|a| (0..n).map(|c| right(a, c)).collect())
                    .collect(),
            }
        })
        .collect())
}
