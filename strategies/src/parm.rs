//! PARM (paper §1.3): clarity judgement at each step until the first clear one; potential
//! assessment once, there; a path judged "no" is truncated (its remaining forwards are saved and
//! counted); best-of-N′ over the survivors with the final question; if none survives, the path
//! with the lowest P(no) from the potential assessment, run to its end.
//!
//! With `keep_best` (not the paper's), the potential decision is relative to the image's best
//! paths: a path is kept when fewer than K = ⌈share · N⌉ of the image's assessed paths have a
//! higher potential P(yes) (ties to the lower index), so at least one always survives.
//!
//! ```text
//! for i in 1..N:
//!   clear = False; keep_i = True; s_i = 1.0
//!   for t in 0..T-1:
//!     c_i = Generator.step(c_i); x = decode(full prediction)
//!     if not clear and clarity(x) == yes:
//!       clear = True; s_i = P_no(potential, x)
//!       keep_i = potential(x) == yes        # or: #{j assessed : s_j < s_i} < K
//!       if not keep_i: truncate c_i
//! S = {i : keep_i}
//! out = argmax_{i∈S} P_yes(final, c_i)  if S  else  argmin_i s_i  (finished)
//! ```

use crate::{argmax, Candidates, Compute, Context, Job, Outcome, Strategy, StrategyKind};
use harness::error::ModelFault;
use harness::generator::Trajectory;
use harness::judge::JudgeTask;
use harness::run::candidates::At;

pub struct Parm;

/// Salts of PARM's two sampled decisions (see [`Candidates::decide`]).
const CLARITY: u64 = 0xc1a;
const POTENTIAL: u64 = 0x907;

/// One candidate's PARM state.
#[derive(Debug, Clone)]
pub struct Path {
    pub clear_at: Option<usize>,
    pub keep: bool,
    /// P(no) of the potential assessment (1.0 until assessed).
    pub p_no: f64,
}

impl Default for Path {
    fn default() -> Self {
        Path {
            clear_at: None,
            keep: true,
            p_no: 1.0,
        }
    }
}

/// PARM selection over the candidates. Returns per job the chosen trajectory (finished), the
/// compute and the decisions. PARM++ reuses it on corrected candidates.
pub fn select(
    mut cands: Candidates<'_>,
) -> Result<Vec<(Trajectory, Compute, serde_json::Value)>, ModelFault> {
    const KIND: StrategyKind = StrategyKind::Parm;
    let mut paths = vec![Path::default(); cands.len()];
    loop {
        // Truncated paths stop: only kept, unfinished candidates step.
        let live: Vec<usize> = (0..cands.len())
            .filter(|&i| paths[i].keep && !cands.done(i))
            .collect();
        if live.is_empty() {
            break;
        }
        cands.step(&live)?;
        // Clarity on the not-yet-clear live paths, then potential on the newly clear ones.
        let unclear: Vec<usize> = live
            .into_iter()
            .filter(|&i| paths[i].clear_at.is_none())
            .collect();
        if unclear.is_empty() {
            continue;
        }
        let images = cands.decode(&unclear)?;
        let clarity = cands.ask(KIND, JudgeTask::Clarity, &unclear, &images, At::Step)?;
        // The last step is always clear: a path is assessed before it ends.
        let newly: Vec<usize> = (0..unclear.len())
            .filter(|&k| cands.decide(unclear[k], CLARITY, clarity[k]) || cands.done(unclear[k]))
            .collect();
        if newly.is_empty() {
            continue;
        }
        let clear: Vec<usize> = newly.iter().map(|&k| unclear[k]).collect();
        for &i in &clear {
            paths[i].clear_at = Some(cands.path(i).step);
        }
        let images: Vec<_> = newly.iter().map(|&k| images[k].clone()).collect();
        let potential = cands.ask(KIND, JudgeTask::Potential, &clear, &images, At::Step)?;
        for (&i, &p) in clear.iter().zip(&potential) {
            paths[i].p_no = 1.0 - p;
        }
        for (&i, &p) in clear.iter().zip(&potential) {
            paths[i].keep = match cands.keep_best() {
                None => cands.decide(i, POTENTIAL, p),
                Some(k) => ahead(&paths, cands.of_job(i / cands.n()), i) < k,
            };
        }
    }
    let mut out = Vec::with_capacity(cands.jobs());
    for j in 0..cands.jobs() {
        let range = cands.of_job(j);
        let survivors: Vec<usize> = range.clone().filter(|&i| paths[i].keep).collect();
        let truncated = (range.len() - survivors.len()) as u64;
        let (chosen, fallback, p_final) = if survivors.is_empty() {
            // No survivor: the lowest P(no), finished now (its forwards count).
            let best = range
                .clone()
                .min_by(|&a, &b| paths[a].p_no.total_cmp(&paths[b].p_no).then(a.cmp(&b)))
                .unwrap_or(range.start);
            cands.run_to_end(&[best])?;
            (best, true, Vec::new())
        } else {
            let images = cands.decode(&survivors)?;
            let p = cands.ask(KIND, JudgeTask::Final, &survivors, &images, At::Final)?;
            (survivors[argmax(&p)], false, p)
        };
        let trace = serde_json::json!({
            "chosen": chosen - range.start,
            "fallback_lowest_p_no": fallback,
            "clear_at": range.clone().map(|i| paths[i].clear_at).collect::<Vec<_>>(),
            "kept": range.clone().map(|i| paths[i].keep).collect::<Vec<_>>(),
            "p_final_survivors": p_final,
        });
        out.push((
            cands.path(chosen).clone(),
            cands.compute(j, truncated),
            trace,
        ));
    }
    Ok(out)
}

/// How many assessed paths of `job` rank above path `i` by potential (lower P(no); on ties,
/// the lower index).
fn ahead(paths: &[Path], job: std::ops::Range<usize>, i: usize) -> usize {
    job.filter(|&j| {
        paths[j].clear_at.is_some()
            && (paths[j].p_no < paths[i].p_no || (paths[j].p_no == paths[i].p_no && j < i))
    })
    .count()
}

impl Strategy for Parm {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Parm
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, ModelFault> {
        let picked = select(Candidates::start(cx, jobs, cx.n.max(1)))?;
        let trajs: Vec<Trajectory> = picked.iter().map(|p| p.0.clone()).collect();
        let images = cx.generator.decode(&trajs)?;
        Ok(images
            .into_iter()
            .zip(picked)
            .map(|(image, (_, compute, trace))| Outcome {
                image,
                compute,
                trace,
            })
            .collect())
    }
}
