//! PRM: step-level best-of-N (paper §1.2). At every step the kept state is expanded into N
//! branches; the step judge rates each branch's full current prediction and the best is kept.
//!
//! ```text
//! s = all_masked
//! for t in 1..T: c_j = Generator.step(fork_j(s)), j = 1..N;  s = argmax_j P_yes(PRM, decode(c_j))
//! return decode(s)
//! ```

use crate::{argmax, At, Candidates, Compute, Context, Job, Outcome, Strategy, StrategyKind};
use harness::error::ModelFault;
use harness::judge::JudgeTask;

pub struct Prm;

impl Strategy for Prm {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Prm
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, ModelFault> {
        let n = cx.n.max(1);
        let mut kept = Candidates::start(cx, jobs, 1).into_paths();
        let metas: Vec<_> = jobs.iter().map(|j| &j.metadata).collect();
        let mut compute = vec![
            Compute {
                candidates: n as u64,
                ..Compute::default()
            };
            jobs.len()
        ];
        let mut chosen: Vec<Vec<usize>> = vec![Vec::new(); jobs.len()];
        while kept.iter().any(|t| !t.done()) {
            let forks = kept
                .iter()
                .flat_map(|s| (0..n).map(move |b| s.fork(b as u64)))
                .collect();
            let mut branches = Candidates::from_paths(cx, metas.clone(), forks, n);
            let all = branches.all();
            branches.step(&all)?;
            let images = branches.decode(&all)?;
            let p = branches.ask(self.kind(), JudgeTask::Step, &all, &images, At::Step)?;
            for j in 0..jobs.len() {
                let range = branches.of_job(j);
                let best = argmax(&p[range.clone()]);
                // The branches' work of this step (each fork carries its parent's count).
                let spent = branches.compute(j, 0);
                compute[j].forwards += spent.forwards;
                compute[j].judge_calls += spent.judge_calls;
                chosen[j].push(best);
                kept[j] = branches.path(range.start + best).clone();
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
