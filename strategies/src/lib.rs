//! Test-time strategies. Each strategy is one file that reads like the paper's pseudo-code and
//! sees models only through the harness traits (`Generator`, `Detector`, later `Judge`), so that
//! external models plug in unchanged.
//!
//! Flow: the [`runner`] hands a strategy a batch of [`Job`]s (prompt × image index); the strategy
//! returns one [`Outcome`] per job (the chosen image, its compute and its decisions).

pub mod baseline;
pub mod oracle;
pub mod orm;
pub mod parm;
pub mod parm_plus;
pub mod prm;
pub mod runner;
pub mod shard;

use harness::detector::Detector;
use harness::generator::{Draws, Generator, Trajectory};
use harness::judge::{Judge, JudgeRequest, JudgeTask};
use harness::rng::derive_seed;
use harness::{Metadata, RuleConfig};
use image::RgbImage;
use serde::Serialize;

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
    /// Seed of candidate `c` of this image; every draw of the candidate descends from it.
    pub fn candidate_seed(&self, c: usize) -> u64 {
        derive_seed(self.seed, &[c as u64])
    }
}

/// Compute spent on one output image.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
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

/// Every candidate's GenEval verdict by the evaluation detector, or `None` without one. For
/// measurement (best-of-N′ curves), never for choosing: only the oracle may choose with it. A
/// candidate the detector cannot judge (non-finite output) counts as not correct.
pub fn candidate_correct(
    cx: &Context<'_>,
    images: &[RgbImage],
    metas: &[&Metadata],
) -> Result<Option<Vec<bool>>, String> {
    let Some(detector) = cx.detector else {
        return Ok(None);
    };
    let verdicts = harness::scoring::judge_images(detector, images, metas, &cx.rules)?;
    Ok(Some(
        verdicts
            .iter()
            .map(|v| v.as_ref().is_ok_and(|j| j.correct))
            .collect(),
    ))
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
}

/// PARM's yes/no decisions: sampled from the judge's probability, as the paper's code samples
/// the first token, or thresholded at 0.5.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Sample,
    Threshold,
}

impl std::str::FromStr for Decision {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sample" => Ok(Decision::Sample),
            "threshold" => Ok(Decision::Threshold),
            other => Err(format!("decision {other:?}: expected sample or threshold")),
        }
    }
}

/// Where the burn models of a run compute, and in which float precision. Half precision exists
/// only on the GPU (burn-flex computes in f32); a binary built without the `cuda` feature refuses
/// the GPU devices when it opens the models.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Device {
    Cpu,
    Cuda,
    CudaF16,
    CudaBf16,
}

impl Device {
    pub const NAMES: &'static str = "cpu, cuda, cuda-f16 or cuda-bf16";

    pub fn as_str(self) -> &'static str {
        match self {
            Device::Cpu => "cpu",
            Device::Cuda => "cuda",
            Device::CudaF16 => "cuda-f16",
            Device::CudaBf16 => "cuda-bf16",
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [Device::Cpu, Device::Cuda, Device::CudaF16, Device::CudaBf16]
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| format!("device {s:?}: expected {}", Device::NAMES))
    }
}

impl Decision {
    /// `yes` with probability `p` (from `seed`) or `p ≥ 0.5`.
    pub fn decide(self, p: f64, seed: u64) -> bool {
        match self {
            Decision::Sample => harness::rng::Rng::new(seed).f64() < p,
            Decision::Threshold => p >= 0.5,
        }
    }
}

impl Context<'_> {
    /// The judge, or an error naming the strategy that needs one.
    pub fn judge(&self, strategy: &str) -> Result<&dyn Judge, String> {
        self.judge
            .ok_or_else(|| format!("strategy {strategy} needs a judge (--judge)"))
    }

    /// P(yes) of `task` on each image, one batched judge call.
    pub fn ask(
        &self,
        strategy: &str,
        task: JudgeTask,
        images: &[RgbImage],
        metas: &[&Metadata],
        steps: &[Option<(usize, usize)>],
    ) -> Result<Vec<f64>, String> {
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
    ) -> Result<Vec<harness::judge::Verdict>, String> {
        let verdicts = judge.judge(requests)?;
        harness::judge::check_verdicts(judge.name(), requests, &verdicts)?;
        Ok(verdicts)
    }
}

/// Index of the largest value (the first on ties).
pub fn argmax(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v > values[best] {
            best = i;
        }
    }
    best
}

/// Total forwards of trajectories.
pub fn forwards(trajectories: &[Trajectory]) -> u64 {
    trajectories.iter().map(|t| t.forwards).sum()
}

/// A test-time strategy.
pub trait Strategy: Send + Sync {
    fn name(&self) -> &str;
    /// One outcome per job, in order. Jobs arrive in batches only for speed.
    fn run(&self, cx: &Context<'_>, jobs: &[Job]) -> Result<Vec<Outcome>, String>;
}

/// Starts one trajectory per `(job, candidate)` pair, candidates of a job adjacent.
pub fn start_candidates(
    cx: &Context<'_>,
    jobs: &[Job],
    n: usize,
) -> Vec<harness::generator::Trajectory> {
    jobs.iter()
        .flat_map(|j| {
            (0..n).map(move |c| {
                cx.generator
                    .start(&j.metadata.prompt, j.candidate_seed(c), cx.steps)
            })
        })
        .collect()
}

/// Strategy by name (`baseline`, `oracle`).
pub fn by_name(name: &str) -> Result<Box<dyn Strategy>, String> {
    match name {
        "baseline" => Ok(Box::new(baseline::Baseline)),
        "orm" => Ok(Box::new(orm::Orm)),
        "prm" => Ok(Box::new(prm::Prm)),
        "parm" => Ok(Box::new(parm::Parm)),
        "parm++" => Ok(Box::new(parm_plus::ParmPlus::default())),
        "oracle" => Ok(Box::new(oracle::Oracle)),
        other => Err(format!(
            "unknown strategy {other:?}; expected one of: {}",
            NAMES.join(", ")
        )),
    }
}

/// Strategies `by_name` knows.
pub const NAMES: &[&str] = &["baseline", "orm", "prm", "parm", "parm++", "oracle"];

/// A run's configuration: YAML (`--config`), overridden by command-line flags, resolved (every
/// default filled in) and written as `config.yaml` next to the run's outputs.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// `geneval` (the official 553 prompts) or a metadata JSONL file.
    pub suite: String,
    pub strategy: String,
    /// A generator name (`base`) or a folder with `generator.json`.
    pub generator: String,
    /// Candidates per output image (N).
    pub n: usize,
    pub images_per_prompt: usize,
    /// Steps per schedule; the generator's default when absent.
    pub steps: Option<usize>,
    /// Classifier-free guidance scale; the generator's default when absent.
    pub cfg_scale: Option<f64>,
    /// Token sampling temperature; the generator's default when absent (and then not written
    /// into the resolved configuration, so runs made before this field resume unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    pub seed: u64,
    /// Prompt selection: comma-separated tags, index ranges (`0-9,20`), caps.
    pub tags: Option<String>,
    pub indices: Option<String>,
    pub per_tag: Option<usize>,
    pub limit: Option<usize>,
    /// Prompts whose jobs are batched together through the models.
    pub batch_prompts: usize,
    /// The judge of orm/prm/parm/parm++: `zero-shot`, `fine-tuned` or a folder with judge.json.
    pub judge: String,
    /// PARM's yes/no decisions.
    pub decision: Decision,
    /// The evaluation detector: a folder or `ext:CMD`; the embedded one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// Where the burn models compute; the CPU when absent (and `cpu` is written as absent, see
    /// [`RunConfig::normalise`], so runs made before this field resume unchanged). A run resumes
    /// only on the device it started on: the images agree across devices only within the
    /// tolerance in reports/performance.md.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// Where the generator draws its tokens (`host`, the reference, when absent; written as
    /// absent too, see [`RunConfig::normalise`]). `device` keeps only the drawn codes off the
    /// GPU and may pick a neighbouring code where f32 and f64 sums disagree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draws: Option<Draws>,
    /// Trajectories per generator forward (the masked-token generators); the device's when
    /// absent: 32 on the CPU, 512 on a GPU. Changes no number on the CPU, only speed and memory;
    /// on a GPU, wider forwards mean fewer, larger kernels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_batch: Option<usize>,
    /// Masked tokens guided and drawn at once; when absent, 8 per trajectory of a forward
    /// (256 on the CPU, 4,096 on a GPU). Each slice is one wait for the device; on the CPU,
    /// larger slices only cost memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slice_rows: Option<usize>,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            suite: "geneval".into(),
            strategy: "baseline".into(),
            generator: "base".into(),
            n: 20,
            images_per_prompt: 4,
            steps: None,
            cfg_scale: None,
            temperature: None,
            seed: 1234,
            tags: None,
            indices: None,
            per_tag: None,
            limit: None,
            batch_prompts: 8,
            judge: "fine-tuned".into(),
            decision: Decision::Sample,
            detector: None,
            device: None,
            draws: None,
            forward_batch: None,
            slice_rows: None,
        }
    }
}

impl RunConfig {
    /// Writes defaults the way runs made before them were written: `device: cpu` is the absent
    /// device, so that naming the default never refuses to resume a run.
    pub fn normalise(&mut self) {
        if self.device == Some(Device::Cpu) {
            self.device = None;
        }
        if self.draws == Some(Draws::Host) {
            self.draws = None;
        }
    }

    /// Checks values that no model needs to see; names the field.
    pub fn validate(&self) -> Result<(), String> {
        if self.n == 0 {
            return Err("n: must be at least 1 candidate per image".into());
        }
        if self.images_per_prompt == 0 {
            return Err("images_per_prompt: must be at least 1".into());
        }
        if self.steps == Some(0) {
            return Err("steps: must be at least 1".into());
        }
        if self.cfg_scale.is_some_and(|s| !s.is_finite()) {
            return Err("cfg_scale: must be a finite number".into());
        }
        if self
            .temperature
            .is_some_and(|t| !(t.is_finite() && t >= 0.0))
        {
            return Err("temperature: must be a finite number ≥ 0".into());
        }
        if self.batch_prompts == 0 {
            return Err("batch_prompts: must be at least 1".into());
        }
        if self.forward_batch == Some(0) {
            return Err("forward_batch: must be at least 1 trajectory".into());
        }
        if self.slice_rows == Some(0) {
            return Err("slice_rows: must be at least 1 masked token".into());
        }
        by_name(&self.strategy)
            .map(|_| ())
            .map_err(|e| format!("strategy: {e}"))
    }

    /// The prompt selection this config describes.
    pub fn selection(&self) -> Result<harness::Selection, String> {
        Ok(harness::Selection {
            tags: match &self.tags {
                Some(t) => harness::Selection::parse_tags(t).map_err(|e| format!("tags: {e}"))?,
                None => Vec::new(),
            },
            indices: match &self.indices {
                Some(i) => {
                    harness::Selection::parse_indices(i).map_err(|e| format!("indices: {e}"))?
                }
                None => Vec::new(),
            },
            per_tag: self.per_tag,
            limit: self.limit,
        })
    }
}
