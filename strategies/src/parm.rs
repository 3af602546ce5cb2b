//! PARM (paper §1.3): clarity judgement at each step until the first clear one; potential
//! assessment once, there; a path judged "no" is truncated (its remaining forwards are saved and
//! counted); best-of-N′ over the survivors with the final question; if none survives, the path
//! with the lowest P(no) from the potential assessment, run to its end.
//!
//! ```text
//! for i in 1..N:
//!   clear = False; keep_i = True; s_i = 1.0
//!   for t in 0..T-1:
//!     c_i = Generator.step(c_i); x = decode(full prediction)
//!     if not clear and clarity(x) == yes:
//!       clear = True; keep_i = potential(x) == yes; s_i = P_no(potential, x)
//!       if not keep_i: truncate c_i
//! S = {i : keep_i}
//! out = argmax_{i∈S} P_yes(final, c_i)  if S  else  argmin_i s_i  (finished)
//! ```

use crate::{argmax, forwards, start_candidates, Compute, Context, Job, Outcome, Strategy};
use harness::generator::Trajectory;
use harness::judge::JudgeTask;
use harness::rng::derive_seed;
use harness::Metadata;

pub struct Parm;

/// One candidate's PARM state.
#[derive(Debug, Clone)]
pub struct Path {
    pub clear_at: Option<usize>,
    pub keep: bool,
    /// P(no) of the potential assessment (1.0 until assessed).
    pub p_no: f64,
}

/// PARM selection over `candidates` (N per job, adjacent). Returns per job the chosen trajectory
/// (finished), the compute and the decisions. PARM++ reuses it on corrected candidates.
pub fn select(
    cx: &Context<'_>,
    metas: &[&Metadata],
    mut candidates: Vec<Trajectory>,
    n: usize,
) -> Result<Vec<(Trajectory, Compute, serde_json::Value)>, String> {
    let mut paths = vec![
        Path {
            clear_at: None,
            keep: true,
            p_no: 1.0
        };
        candidates.len()
    ];
    let per_cand: Vec<&Metadata> = metas
        .iter()
        .flat_map(|m| std::iter::repeat_n(*m, n))
        .collect();
    let mut judge_calls = vec![0u64; metas.len()];
    loop {
        // Truncated paths stop: only kept, unfinished candidates step.
        let live: Vec<usize> = (0..candidates.len())
            .filter(|&i| paths[i].keep && !candidates[i].done())
            .collect();
        if live.is_empty() {
            break;
        }
        let mut batch: Vec<Trajectory> = live.iter().map(|&i| candidates[i].clone()).collect();
        cx.generator.step(&mut batch)?;
        for (k, &i) in live.iter().enumerate() {
            candidates[i] = batch[k].clone();
        }
        // Clarity on the not-yet-clear live paths, then potential on the newly clear ones.
        let unclear: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| paths[i].clear_at.is_none())
            .collect();
        if unclear.is_empty() {
            continue;
        }
        let images = cx.generator.decode(
            &unclear
                .iter()
                .map(|&i| candidates[i].clone())
                .collect::<Vec<_>>(),
        )?;
        let ms: Vec<&Metadata> = unclear.iter().map(|&i| per_cand[i]).collect();
        let at: Vec<_> = unclear
            .iter()
            .map(|&i| Some((candidates[i].step, candidates[i].steps)))
            .collect();
        let clarity = cx.ask("parm", JudgeTask::Clarity, &images, &ms, &at)?;
        let mut newly = Vec::new();
        for (k, &i) in unclear.iter().enumerate() {
            judge_calls[i / n] += 1;
            let seed = derive_seed(candidates[i].seed, &[0xc1a, candidates[i].step as u64]);
            // The last step is always clear: a path is assessed before it ends.
            if cx.decision.decide(clarity[k], seed) || candidates[i].done() {
                paths[i].clear_at = Some(candidates[i].step);
                newly.push(k);
            }
        }
        if newly.is_empty() {
            continue;
        }
        let imgs: Vec<_> = newly.iter().map(|&k| images[k].clone()).collect();
        let ms: Vec<&Metadata> = newly.iter().map(|&k| ms[k]).collect();
        let at: Vec<_> = newly.iter().map(|&k| at[k]).collect();
        let potential = cx.ask("parm", JudgeTask::Potential, &imgs, &ms, &at)?;
        for (&k, p) in newly.iter().zip(potential) {
            let i = unclear[k];
            judge_calls[i / n] += 1;
            let seed = derive_seed(candidates[i].seed, &[0x907, candidates[i].step as u64]);
            paths[i].keep = cx.decision.decide(p, seed);
            paths[i].p_no = 1.0 - p;
        }
    }
    let mut out = Vec::with_capacity(metas.len());
    for (j, m) in metas.iter().enumerate() {
        let range = j * n..(j + 1) * n;
        let survivors: Vec<usize> = range.clone().filter(|&i| paths[i].keep).collect();
        let truncated = (range.len() - survivors.len()) as u64;
        let (chosen, fallback, p_final) = if survivors.is_empty() {
            // No survivor: the lowest P(no), finished now (its forwards count).
            let best = range
                .clone()
                .min_by(|&a, &b| paths[a].p_no.total_cmp(&paths[b].p_no).then(a.cmp(&b)))
                .unwrap_or(range.start);
            let mut t = vec![candidates[best].clone()];
            cx.generator.run_to_end(&mut t)?;
            candidates[best] = t.remove(0);
            (best, true, Vec::new())
        } else {
            let trajs: Vec<Trajectory> = survivors.iter().map(|&i| candidates[i].clone()).collect();
            let images = cx.generator.decode(&trajs)?;
            let p = cx.ask(
                "parm",
                JudgeTask::Final,
                &images,
                &vec![*m; images.len()],
                &vec![None; images.len()],
            )?;
            judge_calls[j] += images.len() as u64;
            (survivors[argmax(&p)], false, p)
        };
        let compute = Compute {
            forwards: forwards(&candidates[range.clone()]),
            judge_calls: judge_calls[j],
            candidates: n as u64,
            truncated,
        };
        let trace = serde_json::json!({
            "chosen": chosen - range.start,
            "fallback_lowest_p_no": fallback,
            "clear_at": range.clone().map(|i| paths[i].clear_at).collect::<Vec<_>>(),
            "kept": range.clone().map(|i| paths[i].keep).collect::<Vec<_>>(),
            "p_final_survivors": p_final,
        });
        out.push((candidates[chosen].clone(), compute, trace));
    }
    Ok(out)
}

impl Strategy for Parm {
    fn name(&self) -> &str {
        "parm"
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, String> {
        let n = cx.n.max(1);
        let metas: Vec<&Metadata> = jobs.iter().map(|j| &j.metadata).collect();
        let picked = select(cx, &metas, start_candidates(cx, jobs, n), n)?;
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
