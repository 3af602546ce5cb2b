//! ORM: best-of-N by the final judge's P(yes) (paper §1.1).
//!
//! ```text
//! c_i = Generator(prompt, seed_i), i = 1..N;  out = argmax_i P_yes(ORM, prompt, c_i)
//! ```

use crate::{
    argmax, candidate_correct, forwards, start_candidates, Compute, Context, Job, Outcome, Strategy,
};
use harness::judge::JudgeTask;

pub struct Orm;

impl Strategy for Orm {
    fn name(&self) -> &str {
        "orm"
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, String> {
        let n = cx.n.max(1);
        let mut candidates = start_candidates(cx, jobs, n);
        cx.generator.run_to_end(&mut candidates)?;
        let images = cx.generator.decode(&candidates)?;
        let metas: Vec<_> = jobs
            .iter()
            .flat_map(|j| std::iter::repeat_n(&j.metadata, n))
            .collect();
        let p_yes = cx.ask(
            "orm",
            JudgeTask::Final,
            &images,
            &metas,
            &vec![None; images.len()],
        )?;
        // Measurement only — the pick below never sees it: every candidate's GenEval verdict by
        // the evaluation detector, so that reports draw best-of-N′ curves for every N′ ≤ N from
        // this one set of candidates (the paper's Fig. 3).
        let correct = candidate_correct(cx, &images, &metas)?;
        Ok(jobs
            .iter()
            .enumerate()
            .map(|(j, _)| {
                let range = j * n..(j + 1) * n;
                let best = argmax(&p_yes[range.clone()]);
                Outcome {
                    image: images[range.start + best].clone(),
                    compute: Compute {
                        forwards: forwards(&candidates[range.clone()]),
                        judge_calls: n as u64,
                        candidates: n as u64,
                        truncated: 0,
                    },
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
