//! Baseline: one sample per output image, no selection.
//!
//! ```text
//! for k in 1..K: out_k = decode(Generator(prompt, seed_k))
//! ```

use crate::{Candidates, Context, Job, Outcome, Strategy, StrategyKind};
use harness::error::ModelFault;

pub struct Baseline;

impl Strategy for Baseline {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Baseline
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, ModelFault> {
        let mut cands = Candidates::start(cx, jobs, 1);
        let all = cands.all();
        cands.run_to_end(&all)?;
        let images = cands.decode(&all)?;
        Ok(images
            .into_iter()
            .enumerate()
            .map(|(j, image)| Outcome {
                image,
                compute: cands.compute(j, 0),
                trace: serde_json::json!({}),
            })
            .collect())
    }
}
