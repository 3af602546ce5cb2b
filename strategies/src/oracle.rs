//! Oracle: best-of-N picked by the *evaluation* detector and the GenEval rules — the ceiling that
//! any verifier could reach with these candidates. Among correct candidates (or, if none, among
//! all) the first in candidate order wins, so the pick is deterministic.
//!
//! ```text
//! c_i = Generator(prompt, seed_i), i = 1..N;  out = first i with GenEval(c_i) correct, else c_1
//! ```

use crate::{candidate_correct, start_candidates, Compute, Context, Job, Outcome, Strategy};

pub struct Oracle;

impl Strategy for Oracle {
    fn name(&self) -> &str {
        "oracle"
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, String> {
        let n = cx.n.max(1);
        let mut trajectories = start_candidates(cx, jobs, n);
        cx.generator.run_to_end(&mut trajectories)?;
        let images = cx.generator.decode(&trajectories)?;
        let metas: Vec<&harness::Metadata> = jobs
            .iter()
            .flat_map(|j| std::iter::repeat_n(&j.metadata, n))
            .collect();
        let all = candidate_correct(cx, &images, &metas)?
            .ok_or("the oracle strategy needs the evaluation detector")?;
        let mut out = Vec::with_capacity(jobs.len());
        for j in 0..jobs.len() {
            let range = j * n..(j + 1) * n;
            let verdicts = &all[range.clone()];
            let pick = verdicts.iter().position(|&v| v).unwrap_or(0);
            let forwards = trajectories[range.clone()].iter().map(|t| t.forwards).sum();
            out.push(Outcome {
                image: images[range.start + pick].clone(),
                compute: Compute {
                    forwards,
                    judge_calls: n as u64,
                    candidates: n as u64,
                    truncated: 0,
                },
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
