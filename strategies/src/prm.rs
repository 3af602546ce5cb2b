//! PRM: step-level best-of-N (paper §1.2). At every step the kept state is expanded into N
//! branches; the step judge rates each branch's full current prediction and the best is kept.
//!
//! ```text
//! s = all_masked
//! for t in 1..T: c_j = Generator.step(fork_j(s)), j = 1..N;  s = argmax_j P_yes(PRM, decode(c_j))
//! return decode(s)
//! ```

use crate::{argmax, start_candidates, Compute, Context, Job, Outcome, Strategy};
use harness::judge::JudgeTask;

pub struct Prm;

impl Strategy for Prm {
    fn name(&self) -> &str {
        "prm"
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, String> {
        let n = cx.n.max(1);
        let mut kept = start_candidates(cx, jobs, 1);
        let mut compute = vec![
            Compute {
                candidates: n as u64,
                ..Compute::default()
            };
            jobs.len()
        ];
        let mut chosen: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
        let metas: Vec<_> = jobs
            .iter()
            .flat_map(|j| std::iter::repeat_n(&j.metadata, n))
            .collect();
        while kept.iter().any(|t| !t.done()) {
            let step = kept[0].step;
            let mut branches: Vec<_> = kept
                .iter()
                .flat_map(|s| (0..n).map(move |b| s.fork(b as u64)))
                .collect();
            let before: Vec<u64> = branches.iter().map(|b| b.forwards).collect();
            cx.generator.step(&mut branches)?;
            let images = cx.generator.decode(&branches)?;
            let at = vec![Some((step + 1, kept[0].steps)); images.len()];
            let p = cx.ask("prm", JudgeTask::Step, &images, &metas, &at)?;
            for j in 0..jobs.len() {
                let range = j * n..(j + 1) * n;
                let best = argmax(&p[range.clone()]);
                compute[j].forwards += range
                    .clone()
                    .map(|i| branches[i].forwards - before[i])
                    .sum::<u64>();
                compute[j].judge_calls += n as u64;
                chosen[j].push(best);
                kept[j] = branches[range.start + best].clone();
            }
        }
        let images = cx.generator.decode(&kept)?;
        Ok(images
            .into_iter()
            .zip(compute)
            .zip(chosen)
            .map(|((image, compute), chosen)| Outcome {
                image,
                compute,
                trace: serde_json::json!({ "branch_per_step": chosen }),
            })
            .collect())
    }
}
