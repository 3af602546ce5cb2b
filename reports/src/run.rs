//! Reading what `evalcot run` wrote into a run folder: `config.yaml` (the resolved run
//! configuration), `results.jsonl` (official GenEval records plus evalcot's additions) and
//! `generation.jsonl` (per-image compute). Readers here are lenient about keys they do not use,
//! so that runs written by older or newer versions of the runner still report; every problem
//! they do find names the file, the line and the field.

use harness::error::{Error, Location, Result};
use harness::run::record::{json_lines, GenerationRecord, TimingRecord, GENERATION_EXPECTED};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

/// `(prompt index, image index)`: the key of one output image.
pub type ImageKey = (usize, usize);

/// One scored output image.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageResult {
    pub prompt_index: usize,
    pub image_index: usize,
    pub tag: String,
    pub prompt: String,
    pub correct: bool,
    pub reason: String,
}

impl ImageResult {
    pub fn key(&self) -> ImageKey {
        (self.prompt_index, self.image_index)
    }
}

/// Compute spent on one output image, as `generation.jsonl` records it.
pub type ImageCompute = harness::run::Compute;

/// The part of the resolved `config.yaml` a report shows.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct RunMeta {
    pub strategy: String,
    pub generator: String,
    pub n: usize,
    pub images_per_prompt: usize,
    pub seed: u64,
    pub steps: Option<usize>,
    pub judge: String,
}

impl RunMeta {
    /// Whether the strategy asks a judge (its `judge` setting matters).
    pub fn uses_judge(&self) -> bool {
        // A strategy this build does not know is shown with its judge.
        self.strategy
            .parse::<harness::run::StrategyKind>()
            .map_or(true, |k| k.needs_judge())
    }

    /// `orm N=20 (zero-shot)`, `baseline`, `oracle N=4`.
    pub fn label(&self) -> String {
        let mut s = self.strategy.clone();
        if self.strategy != "baseline" {
            s.push_str(&format!(" N={}", self.n));
        }
        if self.uses_judge() && !self.judge.is_empty() {
            let judge = Path::new(&self.judge)
                .file_name()
                .map_or(self.judge.clone(), |n| n.to_string_lossy().into_owned());
            s.push_str(&format!(" ({judge})"));
        }
        s
    }
}

/// The strategy shown for a run known only by its `results.jsonl`.
pub const RESULTS_ONLY: &str = "results only";

/// One run folder, read.
#[derive(Debug, Clone)]
pub struct Run {
    pub dir: PathBuf,
    /// Unique among the runs of one report.
    pub label: String,
    pub meta: RunMeta,
    /// Sorted by key.
    pub images: Vec<ImageResult>,
    /// Per image; every image of `images` has one.
    pub compute: BTreeMap<ImageKey, ImageCompute>,
    /// Images whose generation failed (no PNG; counted incorrect).
    pub failed: usize,
    /// Per image: what its generation record's `trace` says about every candidate (for
    /// best-of-N′ scaling curves); every image of `images` has one.
    pub candidates: BTreeMap<ImageKey, CandidateTrace>,
    /// Per image: wall seconds from `timing.jsonl` (absent for runs written before it existed,
    /// or for images resumed from such a run).
    pub seconds: BTreeMap<ImageKey, f64>,
    /// The detector that scored the run, from `summary.json` (absent in runs made before it was
    /// recorded, when every run was scored by evaluator-v2).
    pub scored_by: Option<String>,
}

/// The detector named in `dir/summary.json`, if the file exists and names one.
pub fn scored_by(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("summary.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json.get(crate::SCORED_BY_KEY)?.as_str().map(str::to_string)
}

/// Every candidate of one output image, as the strategy's `trace` records it (ORM: `p_yes`
/// and `candidate_correct`; oracle: `candidate_correct`). Read leniently: a field that is absent
/// or not an array of the expected type is `None`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CandidateTrace {
    /// The verifier's score of each candidate, in candidate order.
    pub p_yes: Option<Vec<f64>>,
    /// Each candidate's GenEval verdict by the evaluation detector, in candidate order.
    pub correct: Option<Vec<bool>>,
    /// The record has an `error` (the image's generation failed).
    pub failed: bool,
}

impl CandidateTrace {
    fn from_trace(trace: &serde_json::Value, failed: bool) -> CandidateTrace {
        let array = |k: &str| trace.get(k).and_then(|v| v.as_array());
        CandidateTrace {
            p_yes: array("p_yes").and_then(|a| a.iter().map(|x| x.as_f64()).collect()),
            correct: array("candidate_correct")
                .and_then(|a| a.iter().map(|x| x.as_bool()).collect()),
            failed,
        }
    }
}

/// A shard folder (`run --shard K/N`) holds a slice of a run: reporting or gating it alone would
/// pass off a part as the whole.
pub fn refuse_shard(dir: &Path) -> Result<()> {
    let shard = dir.join("shard.json");
    if shard.is_file() {
        return Err(Error::invalid(
            Location::file(shard.display().to_string()),
            "the folder is one shard of a sharded run; join all shards with `evalcot merge SHARD_DIR… --out RUN` and use RUN",
        ));
    }
    Ok(())
}

impl Run {
    /// Reads `dir/config.yaml`, `dir/results.jsonl` and `dir/generation.jsonl`; or, for a
    /// `results.jsonl` alone (a file, or a folder without `config.yaml` — the official
    /// evaluator's output, another harness's), its verdicts with the compute unknown.
    pub fn load(dir: &Path) -> Result<Run> {
        if dir.is_file() {
            return Run::results_only(dir);
        }
        if dir.is_dir() && !dir.join("config.yaml").exists() && dir.join("results.jsonl").is_file()
        {
            refuse_shard(dir)?;
            return Run::results_only(&dir.join("results.jsonl"));
        }
        if !dir.is_dir() {
            return Err(Error::invalid(
                Location::file(dir.display().to_string()),
                "is not a run folder (expected config.yaml, results.jsonl and generation.jsonl written by `evalcot run`)",
            ));
        }
        refuse_shard(dir)?;
        let meta = read_meta(&dir.join("config.yaml"))?;
        let results_path = dir.join("results.jsonl");
        let images = read_results(&results_path)?;
        let gen_path = dir.join("generation.jsonl");
        let generation = read_generation(&gen_path)?;
        let mut compute = BTreeMap::new();
        let mut candidates = BTreeMap::new();
        let mut failed = 0;
        for img in &images {
            let g = generation.get(&img.key()).ok_or_else(|| {
                Error::invalid(
                    Location::file(gen_path.display().to_string()),
                    format!(
                        "has no record for prompt {} image {} of {}; finish the run (rerun the same `evalcot run` command)",
                        img.prompt_index,
                        img.image_index,
                        results_path.display()
                    ),
                )
            })?;
            compute.insert(img.key(), g.compute);
            candidates.insert(img.key(), g.candidates.clone());
            failed += g.failed as usize;
        }
        Ok(Run {
            dir: dir.to_path_buf(),
            label: meta.label(),
            meta,
            images,
            compute,
            failed,
            candidates,
            seconds: read_timing(&dir.join("timing.jsonl"))?
                .into_iter()
                .filter(|(k, _)| generation.contains_key(k))
                .collect(),
            scored_by: scored_by(dir),
        })
    }

    /// A run known only by its `results.jsonl`: labelled by its folder (or the file's stem when
    /// it is not `results.jsonl`); no strategy, compute or candidates.
    fn results_only(path: &Path) -> Result<Run> {
        let images = read_results(path)?;
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let stem = path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        let label = match dir.file_name() {
            Some(d) if stem == "results" => d.to_string_lossy().into_owned(),
            _ => stem,
        };
        Ok(Run {
            scored_by: scored_by(&dir),
            dir,
            label,
            meta: RunMeta {
                strategy: RESULTS_ONLY.into(),
                ..RunMeta::default()
            },
            images,
            compute: BTreeMap::new(),
            failed: 0,
            candidates: BTreeMap::new(),
            seconds: BTreeMap::new(),
        })
    }

    /// Mean wall seconds per output image over the images that have a timing record, or `None`
    /// when none has.
    pub fn seconds_per_image(&self) -> Option<f64> {
        let timed: Vec<f64> = self
            .images
            .iter()
            .filter_map(|i| self.seconds.get(&i.key()).copied())
            .collect();
        (!timed.is_empty()).then(|| timed.iter().sum::<f64>() / timed.len() as f64)
    }

    /// Mean compute per output image; NaN when unknown (a results file alone).
    pub fn compute_per_image(&self) -> [f64; 4] {
        if self.compute.is_empty() {
            return [f64::NAN; 4];
        }
        let n = self.compute.len() as f64;
        let mut sum = [0.0; 4];
        for c in self.compute.values() {
            sum[0] += c.forwards as f64;
            sum[1] += c.judge_calls as f64;
            sum[2] += c.candidates as f64;
            sum[3] += c.truncated as f64;
        }
        sum.map(|s| s / n)
    }

    /// Path of an image's PNG inside the run folder.
    pub fn sample_path(&self, key: ImageKey) -> PathBuf {
        self.dir
            .join(format!("{:05}", key.0))
            .join("samples")
            .join(format!("{:04}.png", key.1))
    }
}

/// Gives runs with the same label distinct labels (the folder name is appended).
pub fn disambiguate_labels(runs: &mut [Run]) {
    let mut count: HashMap<String, usize> = HashMap::new();
    for r in runs.iter() {
        *count.entry(r.label.clone()).or_default() += 1;
    }
    for r in runs.iter_mut() {
        if count[&r.label] > 1 {
            let name = r.dir.file_name().map_or(r.dir.display().to_string(), |n| {
                n.to_string_lossy().into_owned()
            });
            r.label = format!("{} [{name}]", r.label);
        }
    }
    // Still equal (same folder name twice): number them.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for r in runs.iter_mut() {
        let k = seen.entry(r.label.clone()).or_default();
        *k += 1;
        if *k > 1 {
            r.label = format!("{} #{k}", r.label);
        }
    }
}

fn read_meta(path: &Path) -> Result<RunMeta> {
    let meta: RunMeta = harness::config::load_yaml(path)?;
    if meta.strategy.is_empty() {
        return Err(Error::invalid(
            Location::file(path.display().to_string()).with_field("strategy"),
            "missing: expected the strategy name (the resolved config `evalcot run` writes)",
        ));
    }
    Ok(meta)
}

#[derive(Deserialize)]
struct ResultLine {
    filename: String,
    tag: String,
    #[serde(default)]
    prompt: String,
    correct: bool,
    #[serde(default)]
    reason: String,
}

/// Reads a `results.jsonl` whose `filename`s are in the official layout
/// (`…/<prompt>/samples/<image>.png`); sorted by key. Duplicate keys are an error.
pub fn read_results(path: &Path) -> Result<Vec<ImageResult>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file = path.display().to_string();
    let mut seen: HashMap<ImageKey, usize> = HashMap::new();
    let mut out = Vec::new();
    let lines: Vec<(usize, ResultLine)> = json_lines(
        &text,
        &file,
        false,
        "a result object with `filename`, `tag`, `correct` (bool)",
    )?;
    for (line, r) in lines {
        let key = sample_key(&r.filename).ok_or_else(|| {
            Error::invalid(
                Location::line(&file, line).with_field("filename"),
                format!(
                    "{:?} is not <prompt digits>/samples/<image digits>.png",
                    r.filename
                ),
            )
        })?;
        if let Some(first) = seen.insert(key, line) {
            return Err(Error::invalid(
                Location::line(&file, line).with_field("filename"),
                format!(
                    "prompt {} image {} again (first on line {first})",
                    key.0, key.1
                ),
            ));
        }
        out.push(ImageResult {
            prompt_index: key.0,
            image_index: key.1,
            tag: r.tag,
            prompt: r.prompt,
            correct: r.correct,
            reason: r.reason,
        });
    }
    if out.is_empty() {
        return Err(Error::invalid(Location::file(file), "no results in file"));
    }
    out.sort_by_key(|r| r.key());
    Ok(out)
}

struct Generation {
    compute: ImageCompute,
    failed: bool,
    candidates: CandidateTrace,
}

/// Reads `generation.jsonl` (the run loop's records, `harness::run::record`). A last line
/// without its newline (a run killed while appending) is ignored, as the runner does.
fn read_generation(path: &Path) -> Result<HashMap<ImageKey, Generation>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let lines: Vec<(usize, GenerationRecord)> = json_lines(
        &text,
        &path.display().to_string(),
        true,
        GENERATION_EXPECTED,
    )?;
    Ok(lines
        .into_iter()
        .map(|(_, g)| {
            let failed = g.error.is_some();
            let generation = Generation {
                compute: g.compute,
                failed,
                candidates: CandidateTrace::from_trace(&g.trace, failed),
            };
            ((g.prompt_index, g.image_index), generation)
        })
        .collect())
}

/// `timing.jsonl` (optional): the run's wall seconds per image; the last record of an image wins (a
/// killed run regenerates it), and a final line cut short by a kill is dropped.
fn read_timing(path: &Path) -> Result<BTreeMap<ImageKey, f64>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let lines: Vec<(usize, TimingRecord)> = json_lines(
        &text,
        &path.display().to_string(),
        true,
        "a timing record with `prompt_index`, `image_index`, `seconds`",
    )?;
    // `threads` batches run at once, one per thread: the run's wall time per image is the
    // batch's share divided by the threads that shared the machine. Later records win.
    Ok(lines
        .into_iter()
        .map(|(_, t)| {
            let seconds = t.seconds / t.threads.max(1) as f64;
            ((t.prompt_index, t.image_index), seconds)
        })
        .collect())
}

pub use harness::layout::sample_key;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_keys() {
        assert_eq!(sample_key("/x/run/00012/samples/0003.png"), Some((12, 3)));
        assert_eq!(sample_key("imgs\\00001\\samples\\0000.png"), Some((1, 0)));
        assert_eq!(sample_key("00012/samples/x.png"), None);
        assert_eq!(sample_key("0003.png"), None);
    }

    #[test]
    fn labels() {
        let mut m = RunMeta {
            strategy: "orm".into(),
            n: 20,
            judge: "models/weights/judge-ft".into(),
            ..RunMeta::default()
        };
        assert_eq!(m.label(), "orm N=20 (judge-ft)");
        m.strategy = "baseline".into();
        assert_eq!(m.label(), "baseline");
        m.strategy = "oracle".into();
        assert_eq!(m.label(), "oracle N=20");
    }

    #[test]
    fn result_errors_name_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("results.jsonl");
        std::fs::write(
            &p,
            "{\"filename\":\"r/00000/samples/0000.png\",\"tag\":\"a\",\"correct\":true}\n{\"filename\":\"r/x.png\",\"tag\":\"a\",\"correct\":true}\n",
        )
        .unwrap();
        let e = read_results(&p).unwrap_err().to_string();
        assert!(e.contains("results.jsonl:2: field `filename`"), "{e}");
        std::fs::write(
            &p,
            "{\"filename\":\"r/00000/samples/0000.png\",\"tag\":\"a\",\"correct\":true}\n{\"filename\":\"s/00000/samples/0000.png\",\"tag\":\"a\",\"correct\":false}\n",
        )
        .unwrap();
        let e = read_results(&p).unwrap_err().to_string();
        assert!(
            e.contains(":2: field `filename`") && e.contains("line 1"),
            "{e}"
        );
    }

    #[test]
    fn timing_is_optional_last_record_wins_and_a_cut_line_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("timing.jsonl");
        assert!(read_timing(&p).unwrap().is_empty());
        std::fs::write(
            &p,
            "{\"prompt_index\":0,\"image_index\":1,\"seconds\":2.0}\n{\"prompt_index\":0,\"image_index\":1,\"seconds\":1.0,\"batch\":2,\"threads\":2}\n{\"prompt_index\":3,",
        )
        .unwrap();
        let t = read_timing(&p).unwrap();
        assert_eq!(t.into_iter().collect::<Vec<_>>(), vec![((0, 1), 0.5)]);
        std::fs::write(&p, "{\"prompt_index\":0}\n").unwrap();
        let e = read_timing(&p).unwrap_err().to_string();
        assert!(e.contains("timing.jsonl:1") && e.contains("seconds"), "{e}");
    }
}
