//! Baseline: one sample per output image, no selection.
//!
//! ```text
//! for k in 1..K: out_k = decode(Generator(prompt, seed_k))
//! ```

use crate::{start_candidates, Compute, Context, Job, Outcome, Strategy};

pub struct Baseline;

impl Strategy for Baseline {
    fn name(&self) -> &str {
        "baseline"
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, String> {
        let mut trajectories = start_candidates(cx, jobs, 1);
        cx.generator.run_to_end(&mut trajectories)?;
        let images = cx.generator.decode(&trajectories)?;
        Ok(images
            .into_iter()
            .zip(&trajectories)
            .map(|(image, t)| Outcome {
                image,
                compute: Compute {
                    forwards: t.forwards,
                    candidates: 1,
                    ..Compute::default()
                },
                trace: serde_json::json!({}),
            })
            .collect())
    }
}
