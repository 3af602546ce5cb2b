//! A run's configuration and the names it is written with: which strategy, where the models
//! compute.

use crate::generator::Draws;
use serde::Serialize;

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

/// The strategies a run can name. The one list of their names: the registry in the
/// `strategies` crate builds each, reports ask [`StrategyKind::needs_judge`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StrategyKind {
    Baseline,
    Orm,
    Prm,
    Parm,
    ParmPlus,
    Oracle,
}

impl StrategyKind {
    pub const ALL: [StrategyKind; 6] = [
        StrategyKind::Baseline,
        StrategyKind::Orm,
        StrategyKind::Prm,
        StrategyKind::Parm,
        StrategyKind::ParmPlus,
        StrategyKind::Oracle,
    ];

    /// The name in configurations, run folders and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            StrategyKind::Baseline => "baseline",
            StrategyKind::Orm => "orm",
            StrategyKind::Prm => "prm",
            StrategyKind::Parm => "parm",
            StrategyKind::ParmPlus => "parm++",
            StrategyKind::Oracle => "oracle",
        }
    }

    /// Whether the strategy asks a judge (and so whether a run's `judge` setting matters). The
    /// oracle chooses with the evaluation detector, the baseline with nothing.
    pub fn needs_judge(self) -> bool {
        !matches!(self, StrategyKind::Baseline | StrategyKind::Oracle)
    }

    /// Every name, comma-separated, for messages.
    pub fn names() -> String {
        Self::ALL.map(StrategyKind::as_str).join(", ")
    }
}

impl std::fmt::Display for StrategyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for StrategyKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown strategy {s:?}; expected one of: {}",
                    StrategyKind::names()
                )
            })
    }
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

impl Decision {
    /// `yes` with probability `p` (from `seed`) or `p ≥ 0.5`.
    pub fn decide(self, p: f64, seed: u64) -> bool {
        match self {
            Decision::Sample => crate::rng::Rng::new(seed).f64() < p,
            Decision::Threshold => p >= 0.5,
        }
    }
}

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
    /// PARM's potential rule relative to the image's best paths, instead of each path's own
    /// yes/no: a path is kept when fewer than ⌈keep_best · N⌉ of the image's paths assessed so
    /// far (itself and those assessed before it) have a higher potential P(yes). When every path
    /// is assessed at one step (clarity from a share of the schedule) that is the best share of
    /// the N paths; with paths clear at different steps, an early path is never truncated later,
    /// so more may be kept. At least one always is. Absent (the paper's rule, and what older
    /// runs were made with) when not set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_best: Option<f64>,
    /// The evaluation detector: a folder or `ext:CMD`; the embedded one when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// Where the burn models compute; the CPU when absent (and `cpu` is written as absent, see
    /// [`RunConfig::normalise`], so runs made before this field resume unchanged). A run resumes
    /// only on the device it started on: the images agree across devices only within the
    /// tolerance in docs/performance.md.
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
    /// Sampling options an external generator reads (evalcot-ext/2 `options`: a sampler, eta,
    /// a negative prompt, any key its worker knows), passed through with every request and
    /// recorded here; absent when empty, so that older runs resume unchanged.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub options: std::collections::BTreeMap<String, serde_json::Value>,
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
            keep_best: None,
            detector: None,
            device: None,
            draws: None,
            forward_batch: None,
            slice_rows: None,
            options: Default::default(),
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
        if let Some(k) = self.keep_best {
            if !(k > 0.0 && k <= 1.0) {
                return Err(format!(
                    "keep_best: {k} is not a share of an image's paths in (0, 1]"
                ));
            }
            if !matches!(self.strategy.as_str(), "parm" | "parm++") {
                return Err(format!(
                    "keep_best: only parm and parm++ assess potential (strategy is {})",
                    self.strategy
                ));
            }
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
        self.strategy_kind().map(|_| ())
    }

    /// The strategy this configuration names; an error names the field.
    pub fn strategy_kind(&self) -> Result<StrategyKind, String> {
        self.strategy
            .parse()
            .map_err(|e: String| format!("strategy: {e}"))
    }

    /// The prompts of the suite this config names, selected; none selected is an error.
    pub fn prompts(&self) -> crate::Result<Vec<crate::PromptEntry>> {
        let suite = match self.suite.as_str() {
            "geneval" => crate::Suite::official(),
            path => crate::Suite::load(std::path::Path::new(path))?,
        };
        let selection = self
            .selection()
            .map_err(|e| crate::Error::invalid(crate::error::Location::file("config"), e))?;
        let prompts: Vec<_> = suite.select(&selection)?.into_iter().cloned().collect();
        if prompts.is_empty() {
            return Err(crate::Error::invalid(
                crate::error::Location::file(suite.source.clone()),
                "the selection matches no prompt",
            ));
        }
        Ok(prompts)
    }

    /// The prompt selection this config describes.
    pub fn selection(&self) -> Result<crate::Selection, String> {
        Ok(crate::Selection {
            tags: match &self.tags {
                Some(t) => crate::Selection::parse_tags(t).map_err(|e| format!("tags: {e}"))?,
                None => Vec::new(),
            },
            indices: match &self.indices {
                Some(i) => {
                    crate::Selection::parse_indices(i).map_err(|e| format!("indices: {e}"))?
                }
                None => Vec::new(),
            },
            per_tag: self.per_tag,
            limit: self.limit,
        })
    }
}
