//! What a strategy works with: the jobs it is handed, the models and settings of its
//! [`Context`], and the [`Outcome`] it returns. Each strategy is one file of the `strategies`
//! crate that reads like the paper's pseudo-code and sees models only through the harness traits
//! (`Generator`, `Detector`, `Judge`), so that external models plug in unchanged.

use crate::detector::Detector;
use crate::error::ModelFault;
use crate::generator::Generator;
use crate::judge::{Judge, JudgeRequest, JudgeTask};
use crate::rng::derive_seed;
use crate::run::config::{Decision, StrategyKind};
use crate::{Metadata, RuleConfig};
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// One output image to produce.
#[derive(Debug, Clone)]
pub struct Job {
    pub prompt_index: usize,
    pub image_index: usize,
    pub metadata: Metadata,
    /// Seed of this output image: `derive_seed(run seed, [prompt index, image index])`.
    pub seed: u64,
}

impl Job {
    /// The jobs of a run, in run order: every image of every prompt, each seeded from the run
    /// seed, the prompt index and the image index.
    pub fn all(prompts: &[crate::PromptEntry], images_per_prompt: usize, seed: u64) -> Vec<Job> {
        prompts
            .iter()
            .flat_map(|p| {
                (0..images_per_prompt).map(move |k| Job {
                    prompt_index: p.index,
                    image_index: k,
                    metadata: p.metadata.clone(),
                    seed: derive_seed(seed, &[p.index as u64, k as u64]),
                })
            })
            .collect()
    }

    /// Seed of candidate `c` of this image; every draw of the candidate descends from it.
    pub fn candidate_seed(&self, c: usize) -> u64 {
        derive_seed(self.seed, &[c as u64])
    }
}

/// Compute spent on one output image, as `generation.jsonl` records it (fields older runs lack
/// read as 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Compute {
    /// Generator forward passes (a CFG pair counts two).
    pub forwards: u64,
    /// Judge (or detector, for the oracle) calls, one per image judged.
    pub judge_calls: u64,
    /// Candidates started.
    pub candidates: u64,
    /// Candidates stopped early (PARM's truncation).
    pub truncated: u64,
}

impl std::ops::AddAssign for Compute {
    fn add_assign(&mut self, o: Compute) {
        self.forwards += o.forwards;
        self.judge_calls += o.judge_calls;
        self.candidates += o.candidates;
        self.truncated += o.truncated;
    }
}

/// What a strategy produced for one job.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub image: RgbImage,
    pub compute: Compute,
    /// The strategy's decisions (scores, chosen candidate, fallbacks), recorded with the result.
    pub trace: serde_json::Value,
}

/// Models and settings a strategy runs with.
pub struct Context<'a> {
    pub generator: &'a dyn Generator,
    /// Steps per candidate schedule.
    pub steps: usize,
    /// Candidates per output image (N).
    pub n: usize,
    /// The evaluation detector and rules (the oracle picks with them; nothing else may).
    pub detector: Option<&'a dyn Detector>,
    pub rules: RuleConfig,
    /// The verifier ORM/PRM/PARM ask.
    pub judge: Option<&'a dyn Judge>,
    /// How PARM turns a judge's probability into a yes/no decision.
    pub decision: Decision,
    /// PARM's relative potential rule (see [`crate::run::RunConfig::keep_best`]).
    pub keep_best: Option<f64>,
}

impl Context<'_> {
    /// The judge, or an error naming the strategy that needs one.
    pub fn judge(&self, strategy: StrategyKind) -> Result<&dyn Judge, ModelFault> {
        self.judge.ok_or_else(|| {
            ModelFault::Failed(format!("strategy {strategy} needs a judge (--judge)"))
        })
    }

    /// P(yes) of `task` on each image, one batched judge call.
    pub fn ask(
        &self,
        strategy: StrategyKind,
        task: JudgeTask,
        images: &[RgbImage],
        metas: &[&Metadata],
        steps: &[Option<(usize, usize)>],
    ) -> Result<Vec<f64>, ModelFault> {
        let judge = self.judge(strategy)?;
        let requests: Vec<JudgeRequest<'_>> = images
            .iter()
            .zip(metas)
            .zip(steps)
            .map(|((image, metadata), step)| JudgeRequest {
                task,
                image,
                metadata,
                step: *step,
            })
            .collect();
        let verdicts = self.verdicts(judge, &requests)?;
        Ok(verdicts.into_iter().map(|v| v.p_yes).collect())
    }

    /// The judge's verdicts on `requests`, checked: a NaN or an infinity anywhere (P(yes), a
    /// clause's P(pass), a blamed region) is an error naming the judge, the task and the prompt.
    pub fn verdicts(
        &self,
        judge: &dyn Judge,
        requests: &[JudgeRequest<'_>],
    ) -> Result<Vec<crate::judge::Verdict>, ModelFault> {
        let verdicts = judge.judge(requests)?;
        crate::judge::check_verdicts(judge.name(), requests, &verdicts)?;
        Ok(verdicts)
    }
}

/// Index of the largest value (the first on ties): how every strategy, and every report that
/// replays a strategy's choice, picks a candidate.
pub fn argmax<T: PartialOrd>(values: &[T]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// A test-time strategy.
pub trait Strategy: Send + Sync {
    fn kind(&self) -> StrategyKind;
    fn name(&self) -> &'static str {
        self.kind().as_str()
    }
    /// One outcome per job, in order. Jobs arrive in batches only for speed.
    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, ModelFault>;
}
