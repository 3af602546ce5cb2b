//! The candidates of a batch of jobs — N per job, adjacent — with the bookkeeping every strategy
//! needs and none should write: stepping a subset, decoding, asking the judge (each request
//! counted against its job), drawing yes/no decisions from the candidate's own seed path, and the
//! compute each job has spent. A strategy file is then its algorithm.

use crate::error::ModelFault;
use crate::generator::Trajectory;
use crate::judge::JudgeTask;
use crate::rng::derive_seed;
use crate::run::config::StrategyKind;
use crate::run::context::{Compute, Context, Job};
use crate::Metadata;
use image::RgbImage;
use std::ops::Range;

/// Whether a judge request names the candidate's current step (PRM and PARM judge previews) or
/// none (the final image).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    Step,
    Final,
}

/// N candidates per job and what they have cost since they were handed over.
pub struct Candidates<'c> {
    cx: &'c Context<'c>,
    paths: Vec<Trajectory>,
    /// Each candidate's forwards when handed over: work done before (a corrected candidate's
    /// original image, a fork's parent) is not charged again.
    base: Vec<u64>,
    n: usize,
    /// The metadata of each job.
    metas: Vec<&'c Metadata>,
    judge_calls: Vec<u64>,
}

impl<'c> Candidates<'c> {
    /// `n` fresh candidates for each job, from the candidate seeds of [`Job::candidate_seed`].
    pub fn start(cx: &'c Context<'c>, jobs: &'c [Job], n: usize) -> Self {
        let metas = jobs.iter().map(|j| &j.metadata).collect();
        let paths = jobs
            .iter()
            .flat_map(|j| {
                (0..n).map(move |c| {
                    cx.generator
                        .start(&j.metadata.prompt, j.candidate_seed(c), cx.steps)
                })
            })
            .collect();
        Self::from_paths(cx, metas, paths, n)
    }

    /// Candidates given by the caller: `n` per job of `metas`, adjacent.
    pub fn from_paths(
        cx: &'c Context<'c>,
        metas: Vec<&'c Metadata>,
        paths: Vec<Trajectory>,
        n: usize,
    ) -> Self {
        debug_assert_eq!(paths.len(), metas.len() * n);
        Candidates {
            cx,
            base: paths.iter().map(|t| t.forwards).collect(),
            judge_calls: vec![0; metas.len()],
            paths,
            n,
            metas,
        }
    }

    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// Candidates per job.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Jobs.
    pub fn jobs(&self) -> usize {
        self.metas.len()
    }

    /// The candidates of job `j`.
    pub fn of_job(&self, j: usize) -> Range<usize> {
        j * self.n..(j + 1) * self.n
    }

    pub fn path(&self, i: usize) -> &Trajectory {
        &self.paths[i]
    }

    pub fn done(&self, i: usize) -> bool {
        self.paths[i].done()
    }

    /// Every candidate.
    pub fn all(&self) -> Vec<usize> {
        (0..self.len()).collect()
    }

    /// One generator step of the candidates `which`, batched.
    pub fn step(&mut self, which: &[usize]) -> Result<(), ModelFault> {
        let generator = self.cx.generator;
        self.advance(which, |batch| generator.step(batch))
    }

    /// The candidates `which` run to the end of their schedules.
    pub fn run_to_end(&mut self, which: &[usize]) -> Result<(), ModelFault> {
        let generator = self.cx.generator;
        self.advance(which, |batch| generator.run_to_end(batch))
    }

    /// Applies `work` to the candidates `which` as one batch.
    fn advance(
        &mut self,
        which: &[usize],
        work: impl FnOnce(&mut [Trajectory]) -> Result<(), ModelFault>,
    ) -> Result<(), ModelFault> {
        let mut batch: Vec<Trajectory> = which.iter().map(|&i| self.paths[i].clone()).collect();
        work(&mut batch)?;
        for (&i, t) in which.iter().zip(batch) {
            self.paths[i] = t;
        }
        Ok(())
    }

    /// The current images (full predictions) of the candidates `which`.
    pub fn decode(&self, which: &[usize]) -> Result<Vec<RgbImage>, ModelFault> {
        let batch: Vec<Trajectory> = which.iter().map(|&i| self.paths[i].clone()).collect();
        self.cx.generator.decode(&batch)
    }

    /// The metadata of candidate `i`'s job.
    pub fn meta(&self, i: usize) -> &'c Metadata {
        self.metas[i / self.n]
    }

    /// P(yes) of `task` on `images`, the images of the candidates `which`, in one judge call;
    /// each request counts one judge call against its job.
    pub fn ask(
        &mut self,
        strategy: StrategyKind,
        task: JudgeTask,
        which: &[usize],
        images: &[RgbImage],
        at: At,
    ) -> Result<Vec<f64>, ModelFault> {
        let metas: Vec<&Metadata> = which.iter().map(|&i| self.meta(i)).collect();
        let steps: Vec<_> = which
            .iter()
            .map(|&i| match at {
                At::Step => Some((self.paths[i].step, self.paths[i].steps)),
                At::Final => None,
            })
            .collect();
        let p = self.cx.ask(strategy, task, images, &metas, &steps)?;
        for &i in which {
            self.judge_calls[i / self.n] += 1;
        }
        Ok(p)
    }

    /// How many of a job's paths a relative potential rule keeps: ⌈share · N⌉, at least one;
    /// `None` when each path keeps to its own yes/no (see [`crate::run::RunConfig::keep_best`]).
    pub fn keep_best(&self) -> Option<usize> {
        // The small slack keeps 0.3 × 20 at 6, not 7 (0.3 × 20 = 6.000000000000001 in f64).
        self.cx
            .keep_best
            .map(|q| ((q * self.n as f64 - 1e-9).ceil() as usize).clamp(1, self.n.max(1)))
    }

    /// A yes/no decision on probability `p` for candidate `i` (the context's [`Decision`]
    /// rule), drawn from the candidate's seed, `salt` (which question) and its current step —
    /// never from the order in which candidates are decided.
    ///
    /// [`Decision`]: crate::run::Decision
    pub fn decide(&self, i: usize, salt: u64, p: f64) -> bool {
        let t = &self.paths[i];
        self.cx
            .decision
            .decide(p, derive_seed(t.seed, &[salt, t.step as u64]))
    }

    /// Every candidate's GenEval verdict by the evaluation detector, or `None` without one;
    /// `images` are all the candidates' images, in order. For measurement (best-of-N′ curves),
    /// never for choosing: only the oracle may choose with it. A candidate the detector cannot
    /// judge (non-finite output) counts as not correct. Not counted as judge calls.
    pub fn verdicts(&self, images: &[RgbImage]) -> Result<Option<Vec<bool>>, ModelFault> {
        assert_eq!(images.len(), self.len(), "one image per candidate");
        let Some(detector) = self.cx.detector else {
            return Ok(None);
        };
        let metas: Vec<&Metadata> = (0..images.len()).map(|i| self.meta(i)).collect();
        let verdicts = crate::scoring::judge_images(detector, images, &metas, &self.cx.rules)?;
        Ok(Some(
            verdicts
                .iter()
                .map(|v| v.as_ref().is_ok_and(|j| j.correct))
                .collect(),
        ))
    }

    /// Counts `calls` judge (or detector) calls against job `j` that were made outside
    /// [`Candidates::ask`].
    pub fn count_calls(&mut self, j: usize, calls: u64) {
        self.judge_calls[j] += calls;
    }

    /// What job `j` has cost since its candidates were handed over; `truncated` of them were
    /// stopped early.
    pub fn compute(&self, j: usize, truncated: u64) -> Compute {
        Compute {
            forwards: self
                .of_job(j)
                .map(|i| self.paths[i].forwards - self.base[i])
                .sum(),
            judge_calls: self.judge_calls[j],
            candidates: self.n as u64,
            truncated,
        }
    }

    /// The candidates, handed back.
    pub fn into_paths(self) -> Vec<Trajectory> {
        self.paths
    }
}
