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
    /// With `by_step`: `p_steps[j][c][t]`, judge j's P(yes) of task `potential` on candidate c's
    /// preview after step t + 1 (the last is the final image); empty otherwise.
    pub p_steps: Vec<Vec<Vec<f64>>>,
}

/// Decodes the first `n` final candidates of every job of bank `dir` with `generator` (the
/// bank's, checked beforehand) and asks every judge about them, `batch_jobs` jobs at a time;
/// with `by_step`, also about every preview (what PARM's potential question sees).
#[allow(clippy::too_many_arguments)]
pub fn judge_bank(
    dir: &Path,
    jobs: &[Job],
    n: usize,
    generator: &dyn Generator,
    judges: &[&dyn Judge],
    batch_jobs: usize,
    by_step: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<JudgedImage>> {
    let chunks: Vec<&[Job]> = jobs.chunks(batch_jobs.max(1)).collect();
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
        |chunk| judge_chunk(dir, chunk, n, generator, judges, by_step),
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
    by_step: bool,
) -> Result<Vec<JudgedImage>> {
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
    let mut p: Vec<Vec<f64>> = Vec::with_capacity(judges.len());
    for judge in judges {
        let verdicts = judge.judge(&requests).map_err(fail)?;
        crate::judge::check_verdicts(judge.name(), &requests, &verdicts).map_err(fail)?;
        p.push(verdicts.into_iter().map(|v| v.p_yes).collect());
    }
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
        })
        .collect())
}
