//! Command-line definitions (clap). Only parsing and light validation live here.

use clap::{Args, Parser, Subcommand};
use harness::{RuleConfig, Selection, Tag};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "evalcot",
    version,
    about = "Benchmark harness for reasoning strategies in step-wise image generation (GenEval)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `reproduce paper`'s experiment matrix when `--matrix` is not given.
pub const DEFAULT_MATRIX: &str = "configs/paper/matrix.yaml";
/// `reproduce paper`'s bootstrap resamples when `--resamples` is not given.
pub const DEFAULT_RESAMPLES: usize = 1000;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Score a folder of images in the GenEval layout, or detections made elsewhere, with the
    /// exact GenEval rules.
    Score(ScoreArgs),
    /// Print the GenEval summary of any results.jsonl (ours or the official evaluator's).
    Summary(SummaryArgs),
    /// Validate a GenEval metadata file and list the selected prompts.
    Suite(SuiteArgs),
    /// The procedural world: renders, datasets, the ground-truth suite, the contact sheet.
    World(WorldArgs),
    /// Train a model from a YAML config (resumes from the output folder's checkpoint).
    Train(TrainArgs),
    /// Validate a trained model and write its report.
    Eval(EvalArgs),
    /// Generate a suite with a strategy, score it, and write the official layout, results and
    /// summary (resumes an interrupted run in the same --out).
    Run(Box<RunArgs>),
    /// Make a candidate bank: the N candidates of every image stepped to the end with every
    /// state kept, each final image judged by the evaluation detector (takes run's flags;
    /// resumes, shards with --shard K/N). `replay` and `eval judge --bank` use it.
    Bank(Box<RunArgs>),
    /// Run baseline, orm, parm or the oracle over a bank's candidates instead of generating:
    /// writes the run folder `evalcot run` writes with the same settings, compute included.
    Replay(ReplayArgs),
    /// Join the shards of a sharded run (`run --shard K/N`) into one run folder, after checking
    /// that they are all there, finished, and of the same configuration and build; the shards
    /// of a bank (`bank --shard K/N`) into one bank.
    Merge(MergeArgs),
    /// Tables (Markdown, CSV, LaTeX) with bootstrap intervals, plots (PNG, SVG) and an offline
    /// HTML page from run folders.
    Report(ReportArgs),
    /// Compare a run with a committed baseline; exit 1 on a significant drop beyond --max-drop.
    Gate(GateArgs),
    /// Run the paper's tables on evalcot's world and write the comparison (`reproduce paper`).
    Reproduce(ReproduceArgs),
    /// Serve one of evalcot's models as an external worker (evalcot-ext/1 over standard input
    /// and output; see external/PROTOCOL.md), e.g. `--generator "ext:evalcot serve generator"`.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct ReproduceArgs {
    /// What to reproduce.
    pub what: ReproduceWhat,
    /// `small` (minutes on a 2-core CPU), `medium` (about half an hour there) or `full` (the
    /// paper's 553 × 4 × N = 20); the scales are defined in the matrix.
    #[arg(long, default_value = "small")]
    pub scale: String,
    /// The experiment matrix.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_MATRIX)]
    pub matrix: PathBuf,
    /// Where the runs go (one folder per configuration; reruns resume). Default runs/paper-SCALE.
    #[arg(long, value_name = "DIR")]
    pub runs: Option<PathBuf>,
    /// The report to write.
    #[arg(long, value_name = "FILE", default_value = "docs/strategies.md")]
    pub out: PathBuf,
    /// Bootstrap resamples of prompts for the intervals.
    #[arg(long, default_value_t = DEFAULT_RESAMPLES)]
    pub resamples: usize,
    /// Where every run's burn models compute (as `run --device`; the paper's full scale is a
    /// GPU job). Written into each run's config.yaml.
    #[arg(long)]
    pub device: Option<harness::run::Device>,
    /// A candidate bank (`evalcot bank`, repeatable): every row it can serve — baseline, ORM,
    /// PARM or the oracle with the bank's generator and settings, N ≤ the bank's — is replayed
    /// from it (the same bytes as running it live) instead of generated.
    #[arg(long, value_name = "BANK")]
    pub bank: Vec<PathBuf>,
    /// Accept banks written by another evalcot build (as `replay --any-build`).
    #[arg(long)]
    pub any_build: bool,
    /// Run only the configurations of these rows (matrix ids, comma-separated); the report
    /// marks every other row as not run. A long study can go in parts: a later call without
    /// `--only` resumes the finished runs and reports them all.
    #[arg(long, value_name = "ID,ID", value_delimiter = ',')]
    pub only: Vec<String>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ReproduceWhat {
    /// Tables 1, 2, 3 and 5 of arXiv 2501.13926.
    Paper,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which model to serve.
    pub role: ServeRole,
    /// The model: a generator or judge name or folder, or a detector folder (the embedded
    /// evaluation detector when omitted).
    #[arg(long, value_name = "NAME|DIR")]
    pub model: Option<String>,
    /// How a served generator hands candidates over: `tokens` (evalcot-ext/1), `opaque`
    /// (evalcot-ext/2: an opaque state and a preview image with every step, as a diffusion
    /// worker would) or `whole` (evalcot-ext/2: whole images from `generate`, no steps).
    #[arg(long, value_enum, default_value = "tokens")]
    pub state: ServeStateArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ServeStateArg {
    Tokens,
    Opaque,
    Whole,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ServeRole {
    Generator,
    Judge,
    Detector,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run folders written by `evalcot run`, or any GenEval `results.jsonl` (the official
    /// evaluator's, another harness's; a file or a folder holding one): those report their
    /// accuracy with intervals, compute unknown.
    #[arg(value_name = "RUN|RESULTS", required = true)]
    pub runs: Vec<PathBuf>,
    /// Report folder (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Bootstrap resamples of prompts.
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub level: f64,
    /// Seed of the resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

#[derive(Debug, Args)]
pub struct GateArgs {
    /// Baseline JSON (see --write-baseline).
    #[arg(long, value_name = "FILE", required_unless_present = "write_baseline")]
    pub baseline: Option<PathBuf>,
    /// Run folder (or its results.jsonl) to check.
    #[arg(long, value_name = "RUN")]
    pub run: PathBuf,
    /// Largest tolerated drop in accuracy, per tag and overall.
    #[arg(long, default_value_t = 0.02)]
    pub max_drop: f64,
    /// Significance level of the one-sided paired test.
    #[arg(long, default_value_t = 0.05)]
    pub alpha: f64,
    /// Write the baseline of --run to FILE instead of checking.
    #[arg(long, value_name = "FILE", conflicts_with = "baseline")]
    pub write_baseline: Option<PathBuf>,
    /// How the report is printed: a text table, one JSON object, or JUnit XML (one test case
    /// per tag and overall) for CI dashboards. The exit code is the same for all three.
    #[arg(long, value_enum, default_value = "text")]
    pub format: GateFormatArg,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum GateFormatArg {
    Text,
    Json,
    Junit,
}

/// `evalcot run`: a run configuration's settings given on the command line. Every field is a
/// [`harness::run::RunConfig`] field of the same name and overrides it when given (the two are
/// merged through their serialised form, so this is the only list of run flags).
#[derive(Debug, Args)]
pub struct RunArgs {
    /// YAML run configuration; flags given here override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Output folder (default runs/<strategy>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do only the K-th (0-based) of N disjoint slices of the images, into `OUT.shard-K-of-N`;
    /// `auto` takes K and N from the scheduler (EVALCOT_SHARD, Slurm job arrays), `auto/N` takes
    /// K (also Kubernetes' JOB_COMPLETION_INDEX). Join the slices with `evalcot merge`.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Time every phase (generator forward and draws, decoding, judge, detector), summed over
    /// threads: printed at the end and written to OUT/profile.json. Changes no result.
    #[arg(long)]
    pub profile: bool,
    /// Processes started for each external (`ext:`) model, serving requests side by side.
    /// Changes no result: every draw comes from the request's seeds.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: u16,
    /// A sampling option for an external generator, KEY=VALUE (VALUE read as JSON when it
    /// parses, as a string otherwise); repeatable; added to the configuration's `options`.
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub option: Vec<String>,
    #[command(flatten)]
    pub settings: RunSettings,
}

/// The run configuration's fields as flags; `None` keeps the YAML's (or the default) value.
#[derive(Debug, Default, Args, serde::Serialize)]
pub struct RunSettings {
    /// `geneval` (the official 553 prompts) or a metadata JSONL file.
    #[arg(value_name = "SUITE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<String>,
    /// baseline | orm | prm | parm | parm++ | oracle.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    /// Candidates per output image.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub n: Option<usize>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images_per_prompt: Option<usize>,
    /// Generation steps per schedule (default: the generator's).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<usize>,
    /// Classifier-free guidance scale (default: the generator's).
    #[arg(long = "cfg")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cfg_scale: Option<f64>,
    /// Token sampling temperature (default: the generator's; 0 draws the most likely code).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// Generator name (`base`), folder with generator.json, or `ext:CMD` (a worker speaking
    /// evalcot-ext/1, see external/PROTOCOL.md).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<String>,
    /// Comma-separated tags, e.g. `counting,position`.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    /// Prompt indices (0-based, inclusive ranges), e.g. `0-9,20`.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indices: Option<String>,
    /// At most this many prompts of each tag.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_tag: Option<usize>,
    /// At most this many prompts in all.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    /// Prompts batched together through the models.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_prompts: Option<usize>,
    /// Judge of orm/prm/parm/parm++: zero-shot, fine-tuned, a folder with judge.json, evidence
    /// (the soft GenEval rules over the annotator; evidence:DIR over another detector),
    /// evidence-zero-shot or evidence-fine-tuned (learned heads over that evidence; a folder
    /// with head.json), or `ext:CMD` (a worker).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    /// PARM's decisions: sample (as the paper's code) or threshold at 0.5.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<harness::run::Decision>,
    /// PARM: keep the best SHARE of an image's paths by potential P(yes) (at least one)
    /// instead of each path's own yes/no.
    #[arg(long, value_name = "SHARE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_best: Option<f64>,
    /// Evaluation detector: a folder, `first-stage` (the embedded one without its second
    /// stage), `ext:CMD` (a worker) or `embedded`; the embedded one when omitted, for evalcot's
    /// own generators only (an `ext:` generator needs this flag).
    #[arg(long, value_name = "DIR|ext:CMD|embedded")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<String>,
    /// Where the burn models compute: cpu, cuda (f32), cuda-f16 or cuda-bf16 (binary built with
    /// `--features cuda`); `ext:` models compute wherever their worker does. Verdicts agree
    /// across devices within the tolerance measured in docs/performance.md.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<harness::run::Device>,
    /// Where the generator draws its tokens: host (the reference: every log-probability comes
    /// back and is drawn from in f64) or device (drawn where the network runs, only the codes
    /// come back; a code can differ where f32 and f64 sums disagree). Recorded in config.yaml.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub draws: Option<harness::generator::Draws>,
    /// Trajectories per generator forward (default 32 on the CPU, 512 on a GPU): wider
    /// forwards give a GPU fewer, larger kernels. Changes no number on the CPU.
    #[arg(long, value_name = "T")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forward_batch: Option<usize>,
    /// Masked tokens guided and drawn at once (default 8 per trajectory of a forward): each
    /// slice is one wait for a GPU. Changes no number on the CPU.
    #[arg(long, value_name = "ROWS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slice_rows: Option<usize>,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The bank folder (written by `evalcot bank`).
    #[arg(value_name = "BANK")]
    pub bank: PathBuf,
    /// baseline | orm | parm | oracle (prm and parm++ change trajectories: run them live).
    #[arg(long)]
    pub strategy: String,
    /// Judge of orm/parm: zero-shot, fine-tuned, a folder with judge.json, evidence[:DIR], or
    /// `ext:CMD`.
    #[arg(long)]
    pub judge: Option<String>,
    /// Candidates per image (N′), at most the bank's N; the bank's N when absent.
    #[arg(long)]
    pub n: Option<usize>,
    /// PARM's decisions: sample or threshold.
    #[arg(long)]
    pub decision: Option<harness::run::Decision>,
    /// PARM: keep the best SHARE of an image's paths by potential P(yes), as `run`.
    #[arg(long, value_name = "SHARE")]
    pub keep_best: Option<f64>,
    /// Output folder (default runs/replay-<strategy>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Do only the K-th of N slices of the images (as `run --shard`).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// Time every phase, as `run --profile`.
    #[arg(long)]
    pub profile: bool,
    /// Accept a bank written by another evalcot build when its candidate 0 regenerates and
    /// decodes identically (a bank is otherwise replayed only by the build that wrote it).
    #[arg(long)]
    pub any_build: bool,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard folders of one run (`OUT.shard-K-of-N`, written by `run --shard`), all N.
    #[arg(value_name = "SHARD_DIR", required = true)]
    pub shards: Vec<PathBuf>,
    /// The merged run folder (must not exist, or be empty).
    #[arg(long, value_name = "RUN")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// A folder in the official GenEval layout (<digits>/metadata.jsonl, <digits>/samples/<digits>.png).
    #[arg(
        value_name = "IMAGEDIR",
        required_unless_present = "detections",
        conflicts_with = "detections"
    )]
    pub images: Option<PathBuf>,
    /// Detections JSONL instead of images, one image per line: {"folder", "image", "metadata", "detections": [{"class", "score", "box", "color"}]}.
    #[arg(long, value_name = "FILE")]
    pub detections: Option<PathBuf>,
    /// Detector folder (detector.json + detector.bpk), `first-stage` (the embedded evaluation
    /// detector without its second stage), `ext:CMD` (a worker, see external/PROTOCOL.md) or
    /// `embedded`. When omitted, the embedded evaluation detector scores folders of evalcot's
    /// world (`world suite`, runs of its generators) and any other folder is refused: the
    /// embedded detector knows 64×64 glyph scenes only.
    #[arg(long, value_name = "DIR|ext:CMD|embedded")]
    pub detector: Option<String>,
    /// Images per detector batch.
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    /// Where the detector computes: cpu, cuda, cuda-f16 or cuda-bf16 (binary built with
    /// `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: harness::run::Device,
    /// Where to write results: a `.jsonl` file (summary.json goes beside it) or a folder
    /// (results.jsonl and summary.json go inside). Default: IMAGEDIR/results.jsonl.
    #[arg(long, value_name = "PATH")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub rules: RuleArgs,
}

/// The official evaluator's five `--options`.
#[derive(Debug, Args, Clone)]
pub struct RuleArgs {
    /// Keep detections with score strictly above this.
    #[arg(long, default_value_t = 0.3)]
    pub threshold: f64,
    /// The same, for every class of counting prompts.
    #[arg(long, default_value_t = 0.9)]
    pub counting_threshold: f64,
    /// At most this many detections per class.
    #[arg(long, default_value_t = 16)]
    pub max_objects: usize,
    /// Greedy NMS IoU threshold; 1.0 disables NMS.
    #[arg(long, default_value_t = 1.0)]
    pub max_overlap: f64,
    /// Position margin as a fraction of the summed box sizes.
    #[arg(long, default_value_t = 0.1)]
    pub position_threshold: f64,
}

impl RuleArgs {
    pub fn to_config(&self) -> Result<RuleConfig, String> {
        let cfg = RuleConfig {
            threshold: self.threshold,
            counting_threshold: self.counting_threshold,
            max_objects: self.max_objects,
            max_overlap: self.max_overlap,
            position_threshold: self.position_threshold,
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

#[derive(Debug, Args)]
pub struct SummaryArgs {
    /// A results.jsonl file.
    pub results: PathBuf,
    /// Print summary.json instead of the official text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SuiteArgs {
    /// Metadata JSONL; the official 553 prompts when omitted.
    #[arg(long, value_name = "FILE")]
    pub metadata: Option<PathBuf>,
    #[command(flatten)]
    pub select: SelectArgs,
    /// Print one metadata JSON line per prompt instead of a table.
    #[arg(long)]
    pub jsonl: bool,
}

/// Which prompts to use.
#[derive(Debug, Args, Clone, Default)]
pub struct SelectArgs {
    /// Comma-separated tags, e.g. `counting,position`.
    #[arg(long, value_parser = parse_tags)]
    pub tags: Option<TagList>,
    /// Prompt indices (0-based, inclusive ranges), e.g. `0-9,20`.
    #[arg(long, value_parser = parse_indices)]
    pub indices: Option<IndexRanges>,
    /// At most this many prompts of each tag.
    #[arg(long)]
    pub per_tag: Option<usize>,
    /// At most this many prompts in all.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl SelectArgs {
    pub fn to_selection(&self) -> Selection {
        Selection {
            tags: self.tags.clone().map(|t| t.0).unwrap_or_default(),
            indices: self.indices.clone().map(|i| i.0).unwrap_or_default(),
            per_tag: self.per_tag,
            limit: self.limit,
        }
    }
}

/// A comma-separated tag list as one argument value (clap would read `Vec<T>` as many values).
#[derive(Debug, Clone)]
pub struct TagList(pub Vec<Tag>);

/// Index ranges as one argument value.
#[derive(Debug, Clone)]
pub struct IndexRanges(pub Vec<std::ops::RangeInclusive<usize>>);

fn parse_tags(s: &str) -> Result<TagList, String> {
    Selection::parse_tags(s).map(TagList)
}

fn parse_indices(s: &str) -> Result<IndexRanges, String> {
    Selection::parse_indices(s).map(IndexRanges)
}

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Which model.
    pub model: TrainModel,
    /// YAML training config (see configs/).
    #[arg(long, value_name = "FILE")]
    pub config: PathBuf,
    /// Output folder: weights, metadata, loss curve, checkpoint.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Where to compute: cpu or cuda (binary built with `--features cuda`). Training runs in
    /// f32; the half-precision devices are for inference.
    #[arg(long, default_value = "cpu")]
    pub device: harness::run::Device,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum TrainModel {
    /// The object detector + colour classifier (evaluator or annotator).
    Detector,
    /// A detector's second stage: a crop classifier that re-scores its peaks.
    Rescorer,
    /// The VQ image tokenizer.
    Tokenizer,
    /// The masked-token generator (needs a trained tokenizer).
    Generator,
    /// A judge (zero-shot on renders, or fine-tuned on the generator with the annotator).
    Judge,
    /// A head over the annotator's evidence per clause, trained on an annotator-labelled bank
    /// (the `evidence-fine-tuned` judge).
    EvidenceHead,
    /// Preference alignment of a generator: DPO, iterative DPO, reward-guided DPO.
    Dpo,
    /// The autoregressive (raster-order) generator, the second generator family.
    Ar,
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Which model.
    pub model: EvalModel,
    /// Detector folder or `first-stage`; the embedded evaluation detector when omitted.
    #[arg(long, value_name = "DIR")]
    pub detector: Option<PathBuf>,
    /// Held-out random scenes (1–5 objects).
    #[arg(long, default_value_t = 2000)]
    pub images: usize,
    /// Object-free images for the false-positive count.
    #[arg(long, default_value_t = 500)]
    pub empty: usize,
    /// Ground-truth renders per official prompt.
    #[arg(long, default_value_t = 4)]
    pub suite_images: usize,
    /// Judges to evaluate (names or folders), comma-separated.
    #[arg(long, default_value = "zero-shot")]
    pub judges: String,
    /// Generator whose samples the judges are checked on.
    #[arg(long, default_value = "base")]
    pub generator: String,
    /// Validation prompts sampled for the generator check (2 samples each).
    #[arg(long, default_value_t = 100)]
    pub prompts: usize,
    /// Annotator detector folder that labels held-out generator trajectories for the judges
    /// (the one the fine-tuned judge's data were labelled with).
    #[arg(long, value_name = "DIR", default_value = models::open::ANNOTATOR)]
    pub annotator: PathBuf,
    /// Tokenizer folder; the embedded tokenizer when omitted.
    #[arg(long, value_name = "DIR")]
    pub tokenizer: Option<PathBuf>,
    /// Seed of the held-out scenes (training uses other streams).
    #[arg(long, default_value_t = 777)]
    pub seed: u64,
    /// `eval judge`: rank the candidates of a bank (written by `evalcot bank`) with each judge
    /// of --judges, against the evaluation detector's verdicts (within-image AUROC, best-of-N′).
    #[arg(long, value_name = "BANK")]
    pub bank: Option<PathBuf>,
    /// `eval judge --bank`: bootstrap resamples of prompts for the intervals (seeded by --seed).
    #[arg(long, default_value_t = 1000)]
    pub resamples: usize,
    /// `eval judge --bank`: accept a bank of another build (as `replay --any-build`).
    #[arg(long)]
    pub any_build: bool,
    /// `eval judge --bank`: also ask every judge about every preview (PARM's potential
    /// question, by step).
    #[arg(long)]
    pub by_step: bool,
    /// `eval judge --bank`: also ask every judge with the image taken away — blank, and
    /// shuffled among the image's candidates — which must rank at chance (seeded by --seed).
    #[arg(long)]
    pub ablations: bool,
    /// `eval judge --bank`: value the states after these steps (comma-separated) by
    /// Monte-Carlo rollouts, judged by the evaluation detector — the ceiling of any potential
    /// judge — and simulate PARM with them beside the judges' previews (implies --by-step).
    #[arg(long, value_name = "STEPS")]
    pub potential: Option<String>,
    /// `eval judge --bank --potential`: continuations per state.
    #[arg(long, default_value_t = 4)]
    pub rollouts: usize,
    /// Markdown report to write.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum EvalModel {
    Detector,
    /// The image tokenizer: PSNR, codebook use, GenEval of reconstructed ground truth.
    Tokenizer,
    /// Judges: accuracy/AUROC per task on held-out renders, agreement with GenEval on generator
    /// samples.
    Judge,
}

mod world;

pub use world::*;

#[cfg(test)]
mod tests;
