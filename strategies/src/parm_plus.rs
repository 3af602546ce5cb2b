//! PARM++ (paper §1.4): PARM, then reflection on the chosen image; when the reflect judge finds
//! a failing clause, self-correct and run PARM again on the corrected candidates, at most
//! `rounds` times.
//!
//! Self-correction here is the re-masking alternative, not a generator fine-tuned on feedback
//! text (our generator reads prompts only): the token cells of the region the reflect judge
//! blames are re-opened — or, when it finds nothing to blame (a missing object), every cell not
//! holding an object of a passing clause — and N fresh completions conditioned on the prompt
//! and on the rest of the image go through PARM selection again.
//!
//! ```text
//! img = PARM_select(Generator(prompt))
//! for r in 1..3:
//!   ok, why, region = reflect(prompt, img);  if ok: break
//!   img = PARM_select(remask(img, region) × N)
//! ```

use crate::parm::select;
use crate::{Candidates, Compute, Context, Job, Outcome, Strategy, StrategyKind};
use harness::error::ModelFault;
use harness::generator::Trajectory;
use harness::judge::{JudgeRequest, JudgeTask};
use harness::rng::derive_seed;
use harness::Metadata;

pub struct ParmPlus {
    /// Reflection rounds at most (the paper: 3).
    pub rounds: usize,
}

impl Default for ParmPlus {
    fn default() -> Self {
        ParmPlus { rounds: 3 }
    }
}

/// Token positions inside `region` (pixels) of a `rows`×`cols` grid over an image of `size`.
pub fn cells_in(region: [f32; 4], rows: usize, cols: usize, size: (u32, u32)) -> Vec<usize> {
    let (cw, ch) = (size.0 as f32 / cols as f32, size.1 as f32 / rows as f32);
    let mut out = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            let (cx, cy) = ((c as f32 + 0.5) * cw, (r as f32 + 0.5) * ch);
            if cx >= region[0] && cx < region[2] && cy >= region[1] && cy < region[3] {
                out.push(r * cols + c);
            }
        }
    }
    out
}

impl Strategy for ParmPlus {
    fn kind(&self) -> StrategyKind {
        StrategyKind::ParmPlus
    }

    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, ModelFault> {
        let n = cx.n.max(1);
        let judge = cx.judge(StrategyKind::ParmPlus)?;
        let (rows, cols) = cx.generator.grid();
        let metas: Vec<&Metadata> = jobs.iter().map(|j| &j.metadata).collect();
        let first = select(Candidates::start(cx, jobs, n))?;
        let mut current: Vec<Trajectory> = first.iter().map(|p| p.0.clone()).collect();
        let mut compute: Vec<Compute> = first.iter().map(|p| p.1).collect();
        let mut traces: Vec<Vec<serde_json::Value>> =
            first.into_iter().map(|p| vec![p.2]).collect();
        let mut open: Vec<usize> = (0..jobs.len()).collect();
        for round in 0..self.rounds {
            if open.is_empty() {
                break;
            }
            let images = cx
                .generator
                .decode(&open.iter().map(|&j| current[j].clone()).collect::<Vec<_>>())?;
            let requests: Vec<JudgeRequest<'_>> = open
                .iter()
                .zip(&images)
                .map(|(&j, image)| JudgeRequest {
                    task: JudgeTask::Reflect,
                    image,
                    metadata: metas[j],
                    step: None,
                })
                .collect();
            let verdicts = cx.verdicts(judge, &requests)?;
            let mut fix = Vec::new();
            for (k, &j) in open.iter().enumerate() {
                let v = &verdicts[k];
                compute[j].judge_calls += v.clauses.len().max(1) as u64;
                let failing: Vec<_> = v.clauses.iter().filter(|c| c.p_pass < 0.5).collect();
                traces[j].push(serde_json::json!({
                    "reflection_round": round + 1,
                    "ok": failing.is_empty(),
                    "why": failing.iter().map(|c| c.explanation.clone()).collect::<Vec<_>>(),
                }));
                if failing.is_empty() {
                    continue;
                }
                let size = images[k].dimensions();
                let mut cells: Vec<usize> = failing
                    .iter()
                    .filter_map(|c| c.region)
                    .flat_map(|r| cells_in(r, rows, cols, size))
                    .collect();
                if cells.is_empty() {
                    // Nothing to blame (a missing object): keep the passing clauses' objects.
                    let keep: Vec<usize> = v
                        .clauses
                        .iter()
                        .filter(|c| c.p_pass >= 0.5)
                        .filter_map(|c| c.region)
                        .flat_map(|r| cells_in(r, rows, cols, size))
                        .collect();
                    cells = (0..rows * cols).filter(|p| !keep.contains(p)).collect();
                }
                cells.sort_unstable();
                cells.dedup();
                fix.push((j, cells));
            }
            if fix.is_empty() {
                break;
            }
            let mut corrected = Vec::new();
            for (j, cells) in &fix {
                for c in 0..n {
                    let seed = derive_seed(jobs[*j].seed, &[0x5e1f, round as u64, c as u64]);
                    corrected.push(current[*j].remask(cells, cx.steps, seed)?);
                }
            }
            let fix_metas: Vec<&Metadata> = fix.iter().map(|(j, _)| metas[*j]).collect();
            // Corrected candidates are charged only their new work (see `Candidates`).
            let picked = select(Candidates::from_paths(cx, fix_metas, corrected, n))?;
            for ((j, _), (t, c, trace)) in fix.iter().zip(picked) {
                compute[*j] += c;
                traces[*j].push(trace);
                current[*j] = t;
            }
            open = fix.into_iter().map(|(j, _)| j).collect();
        }
        let images = cx.generator.decode(&current)?;
        Ok(images
            .into_iter()
            .zip(compute)
            .zip(traces)
            .map(|((image, compute), trace)| Outcome {
                image,
                compute,
                trace: serde_json::Value::Array(trace),
            })
            .collect())
    }
}
