//! Oracle: best-of-N picked by the *evaluation* detector and the GenEval rules — the ceiling that
//! any verifier could reach with these candidates. Among correct candidates (or, if none, among
//! all) the first in candidate order wins, so the pick is deterministic.
//!
//! ```text
//! c_i = Generator(prompt, seed_i), i = 1..N;  out = first i with GenEval(c_i) correct, else c_1
//! ```

use crate::{Candidates, Context, Job, Outcome, Strategy, StrategyKind};
use harness::error::ModelFault;

pub struct Oracle;

impl Strategy for Oracle {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Oracle
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, ModelFault> {
        let n = cx.n.max(1);
        let mut cands = Candidates::start(cx, jobs, n);
        let all = cands.all();
        cands.run_to_end(&all)?;
        let images = cands.decode(&all)?;
        let verdicts = cands
            .verdicts(&images)?
            .ok_or("the oracle strategy needs the evaluation detector")?;
        let mut out = Vec::with_capacity(jobs.len());
        for j in 0..jobs.len() {
            let range = cands.of_job(j);
            let verdicts = &verdicts[range.clone()];
            let pick = verdicts.iter().position(|&v| v).unwrap_or(0);
            // The detector judged every candidate.
            cands.count_calls(j, n as u64);
            out.push(Outcome {
                image: images[range.start + pick].clone(),
                compute: cands.compute(j, 0),
                trace: serde_json::json!({
                    "chosen": pick,
                    "correct_candidates": verdicts.iter().filter(|&&v| v).count(),
                    "candidate_correct": verdicts,
                }),
            });
        }
        Ok(out)
    }
}
