//! ORM: best-of-N by the final judge's P(yes) (paper §1.1).
//!
//! ```text
//! c_i = Generator(prompt, seed_i), i = 1..N;  out = argmax_i P_yes(ORM, prompt, c_i)
//! ```

use crate::{argmax, At, Candidates, Context, Job, Outcome, Strategy, StrategyKind};
use harness::error::ModelFault;
use harness::judge::JudgeTask;

pub struct Orm;

impl Strategy for Orm {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Orm
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, ModelFault> {
        let mut cands = Candidates::start(cx, jobs, cx.n.max(1));
        let all = cands.all();
        cands.run_to_end(&all)?;
        let images = cands.decode(&all)?;
        let p_yes = cands.ask(self.kind(), JudgeTask::Final, &all, &images, At::Final)?;
        // Measurement only — the pick below never sees it: every candidate's GenEval verdict by
        // the evaluation detector, so that reports draw best-of-N′ curves for every N′ ≤ N from
        // this one set of candidates (the paper's Fig. 3).
        let correct = cands.verdicts(&images)?;
        Ok((0..jobs.len())
            .map(|j| {
                let range = cands.of_job(j);
                let best = argmax(&p_yes[range.clone()]);
                Outcome {
                    image: images[range.start + best].clone(),
                    compute: cands.compute(j, 0),
                    trace: serde_json::json!({
                        "chosen": best,
                        "p_yes": &p_yes[range.clone()],
                        "candidate_correct": correct.as_ref().map(|c| &c[range]),
                    }),
                }
            })
            .collect())
    }
}
