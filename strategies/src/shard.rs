//! Sharded runs. `--shard K/N` makes a run produce only the K-th of N disjoint slices of its
//! images: the i-th (prompt, image) pair of the run, in suite order, belongs to shard i mod N, so
//! every shard gets a mix of tags and a similar amount of work. Because every random draw comes
//! from (seed, prompt, image, candidate, step), the union of the N shard folders is the
//! unsharded run; [`merge`] checks that the shards belong together and are finished, and writes
//! that union as one ordinary run folder.

use crate::runner::{key_of, read_generation, GenerationRecord};
use harness::error::{Error, Location, Result};
use harness::layout::LayoutWriter;
use harness::results::ResultRecord;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The file that marks a run folder as one shard of a sharded run.
pub const MANIFEST: &str = "shard.json";
/// The file a merged run keeps as provenance.
pub const MERGE_RECORD: &str = "merge.json";
const FORMAT: &str = "evalcot-shard/1";

/// The K-th (0-based) of N slices of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// `K/N` with 0-based K, `auto` (K and N from the scheduler's environment) or `auto/N` (K
    /// from the environment). `env` looks a variable up (`std::env::var` in the binary).
    ///
    /// Environment, first match wins: `EVALCOT_SHARD=K/N`; Slurm job arrays
    /// (`SLURM_ARRAY_TASK_ID`, minus `SLURM_ARRAY_TASK_MIN`, divided by `SLURM_ARRAY_TASK_STEP`;
    /// N from `SLURM_ARRAY_TASK_COUNT`); Kubernetes Indexed Jobs (`JOB_COMPLETION_INDEX`, which
    /// comes without the completions count, so N must be written: `auto/N`).
    pub fn parse(
        spec: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> std::result::Result<Shard, String> {
        let (k, n) = spec
            .split_once('/')
            .map_or((spec, None), |(k, n)| (k, Some(n)));
        let count = n
            .map(|n| number(n, &format!("the shard count in --shard {spec}")))
            .transpose()?;
        let shard = if k.trim() == "auto" {
            from_env(count, env)?
        } else {
            let count = count.ok_or_else(|| {
                format!("--shard {spec}: expected K/N (0-based K, e.g. 0/8), auto or auto/N")
            })?;
            Shard {
                index: number(k, &format!("the shard index in --shard {spec}"))?,
                count,
            }
        };
        shard.check()?;
        Ok(shard)
    }

    fn check(self) -> std::result::Result<(), String> {
        if self.count == 0 {
            return Err("the shard count must be at least 1".into());
        }
        if self.index >= self.count {
            return Err(format!(
                "shard index {} is out of range for {} shards (indices are 0-based: 0..{})",
                self.index,
                self.count,
                self.count - 1
            ));
        }
        Ok(())
    }

    /// Whether the run's `ordinal`-th image belongs to this shard.
    pub fn owns(&self, ordinal: usize) -> bool {
        ordinal % self.count == self.index
    }

    /// The folder of this shard of the run `out`: `OUT.shard-K-of-N` (K zero-padded so that the
    /// folders sort by index).
    pub fn folder(&self, out: &Path) -> PathBuf {
        let width = (self.count - 1).to_string().len();
        let name = out
            .file_name()
            .map_or_else(|| "run".to_string(), |n| n.to_string_lossy().into_owned());
        out.with_file_name(format!(
            "{name}.shard-{:0width$}-of-{}",
            self.index, self.count
        ))
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn number(s: &str, what: &str) -> std::result::Result<usize, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("{what}: expected a whole number, found {s:?}"))
}

fn from_env(
    count: Option<usize>,
    env: &dyn Fn(&str) -> Option<String>,
) -> std::result::Result<Shard, String> {
    let agree = |found: usize, source: &str| match count {
        Some(n) if n != found => Err(format!(
            "--shard auto/{n}, but {source} says {found} shards; make them agree"
        )),
        _ => Ok(found),
    };
    if let Some(v) = env("EVALCOT_SHARD") {
        let (k, n) = v
            .split_once('/')
            .ok_or_else(|| format!("EVALCOT_SHARD={v:?}: expected K/N"))?;
        let n = agree(number(n, "EVALCOT_SHARD's count")?, "EVALCOT_SHARD")?;
        return Ok(Shard {
            index: number(k, "EVALCOT_SHARD's index")?,
            count: n,
        });
    }
    if let Some(id) = env("SLURM_ARRAY_TASK_ID") {
        let id = number(&id, "SLURM_ARRAY_TASK_ID")?;
        let min = env("SLURM_ARRAY_TASK_MIN")
            .map(|m| number(&m, "SLURM_ARRAY_TASK_MIN"))
            .transpose()?
            .unwrap_or(0);
        let step = env("SLURM_ARRAY_TASK_STEP")
            .map(|s| number(&s, "SLURM_ARRAY_TASK_STEP"))
            .transpose()?
            .unwrap_or(1)
            .max(1);
        if id < min || (id - min) % step != 0 {
            return Err(format!(
                "SLURM_ARRAY_TASK_ID {id} is not on the array min {min}, step {step}"
            ));
        }
        let n = match env("SLURM_ARRAY_TASK_COUNT") {
            Some(c) => agree(
                number(&c, "SLURM_ARRAY_TASK_COUNT")?,
                "SLURM_ARRAY_TASK_COUNT",
            )?,
            None => count
                .ok_or("--shard auto: SLURM_ARRAY_TASK_COUNT is not set; write --shard auto/N")?,
        };
        return Ok(Shard {
            index: (id - min) / step,
            count: n,
        });
    }
    if let Some(i) = env("JOB_COMPLETION_INDEX") {
        let count = count.ok_or(
            "--shard auto: a Kubernetes Indexed Job does not export its completions count; \
             write --shard auto/N with N = the Job's completions",
        )?;
        return Ok(Shard {
            index: number(&i, "JOB_COMPLETION_INDEX")?,
            count,
        });
    }
    Err(
        "--shard auto: none of EVALCOT_SHARD, SLURM_ARRAY_TASK_ID (Slurm job arrays) or \
         JOB_COMPLETION_INDEX (Kubernetes Indexed Jobs) is set"
            .into(),
    )
}

/// `shard.json`: which slice of which run a folder holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardManifest {
    pub format: String,
    pub index: usize,
    pub count: usize,
    /// The evalcot build that wrote the shard; shards of different builds are not merged.
    pub code_version: String,
    /// Images of the whole run, all shards together.
    pub run_images: usize,
    /// This shard's images as (prompt index, image index), in run order.
    pub images: Vec<(usize, usize)>,
}

impl ShardManifest {
    pub fn new(
        shard: Shard,
        code_version: &str,
        run_images: usize,
        images: Vec<(usize, usize)>,
    ) -> Self {
        ShardManifest {
            format: FORMAT.into(),
            index: shard.index,
            count: shard.count,
            code_version: code_version.into(),
            run_images,
            images,
        }
    }

    fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }
}

fn invalid(path: &Path, message: impl Into<String>) -> Error {
    Error::invalid(Location::file(path.display().to_string()), message)
}

/// Reads `DIR/shard.json`; `None` when the folder holds no shard.
pub fn read_manifest(dir: &Path) -> Result<Option<ShardManifest>> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let m: ShardManifest = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            Location::line(path.display().to_string(), e.line()),
            format!("not a shard manifest: {e}"),
        )
    })?;
    if m.format != FORMAT {
        return Err(invalid(
            &path,
            format!("format {:?}: this evalcot reads {FORMAT:?}", m.format),
        ));
    }
    m.shard().check().map_err(|e| invalid(&path, e))?;
    Ok(Some(m))
}

/// Makes `out` the folder of `manifest`'s shard (or of an unsharded run when `None`), refusing a
/// folder that holds another shard, a shard of another build, or an unsharded run.
pub fn claim(out: &Path, manifest: Option<&ShardManifest>) -> Result<()> {
    let path = out.join(MANIFEST);
    match (read_manifest(out)?, manifest) {
        (None, None) => Ok(()),
        (Some(have), Some(want)) if &have == want => Ok(()),
        (Some(have), Some(want)) => Err(invalid(
            &path,
            format!(
                "holds shard {} of {} images written by evalcot {}; this is shard {} of {} \
                 images by evalcot {}; use another --out or remove the folder",
                have.shard(),
                have.run_images,
                have.code_version,
                want.shard(),
                want.run_images,
                want.code_version
            ),
        )),
        (Some(have), None) => Err(invalid(
            &path,
            format!(
                "the folder holds shard {} of a sharded run; run with --shard {} or use \
                 another --out",
                have.shard(),
                have.shard()
            ),
        )),
        (None, Some(want)) => {
            let gen = out.join("generation.jsonl");
            if std::fs::metadata(&gen).is_ok_and(|m| m.len() > 0) {
                return Err(invalid(
                    &gen,
                    "the folder holds an unsharded run; a shard needs a folder of its own",
                ));
            }
            let text = serde_json::to_string(want).map_err(|e| invalid(&path, e.to_string()))?;
            harness::fsutil::write_atomic(&path, format!("{text}\n").as_bytes())
        }
    }
}

/// One shard folder, read and checked.
struct ShardDir {
    dir: PathBuf,
    config: String,
    manifest: ShardManifest,
    generation: BTreeMap<(usize, usize), GenerationRecord>,
    results: Vec<ResultRecord>,
}

fn load_shard(dir: &Path) -> Result<ShardDir> {
    let config_path = dir.join("config.yaml");
    let config = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
    let manifest = read_manifest(dir)?.ok_or_else(|| {
        invalid(
            &dir.join(MANIFEST),
            "missing: the folder is not a shard (shards are written by `evalcot run --shard K/N`)",
        )
    })?;
    let generation = read_generation(&dir.join("generation.jsonl"))?;
    let expected: BTreeSet<_> = manifest.images.iter().copied().collect();
    let unfinished = |what: String| {
        invalid(
            dir,
            format!(
                "shard {} is unfinished: {what}; rerun its `evalcot run … --shard {}` command",
                manifest.shard(),
                manifest.shard()
            ),
        )
    };
    let generated = expected
        .iter()
        .filter(|k| {
            generation.get(k).is_some_and(|g| {
                g.error.is_some()
                    || dir
                        .join(LayoutWriter::folder_name(k.0))
                        .join("samples")
                        .join(LayoutWriter::image_name(k.1))
                        .is_file()
            })
        })
        .count();
    if generated < expected.len() {
        return Err(unfinished(format!(
            "{generated} of its {} images generated",
            expected.len()
        )));
    }
    if let Some(k) = generation.keys().find(|k| !expected.contains(k)) {
        return Err(invalid(
            &dir.join("generation.jsonl"),
            format!(
                "records prompt {} image {}, which is not an image of shard {}",
                k.0,
                k.1,
                manifest.shard()
            ),
        ));
    }
    let results_path = dir.join("results.jsonl");
    let results = match std::fs::read_to_string(&results_path) {
        Ok(text) => parse_results(&results_path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(unfinished("it was never scored (no results.jsonl)".into()))
        }
        Err(e) => return Err(Error::io(&results_path, e)),
    };
    let scored: BTreeSet<_> = results.iter().filter_map(|r| key_of(&r.filename)).collect();
    if scored != expected || scored.len() != results.len() {
        return Err(unfinished(format!(
            "results.jsonl scores {} of its {} images",
            scored.intersection(&expected).count(),
            expected.len()
        )));
    }
    Ok(ShardDir {
        dir: dir.to_path_buf(),
        config,
        manifest,
        generation,
        results,
    })
}

fn parse_results(path: &Path, text: &str) -> Result<Vec<ResultRecord>> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| {
                Error::invalid(
                    Location::line(path.display().to_string(), i + 1),
                    format!("not a result record: {e}"),
                )
            })
        })
        .collect()
}

/// The first line where two texts differ, for an error message.
fn first_difference(a: &str, b: &str) -> String {
    let (mut la, mut lb) = (a.lines(), b.lines());
    for n in 1.. {
        match (la.next(), lb.next()) {
            (None, None) => break,
            (x, y) if x == y => continue,
            (x, y) => {
                return format!(
                    "line {n}: {:?} against {:?}",
                    x.unwrap_or("(end)"),
                    y.unwrap_or("(end)")
                )
            }
        }
    }
    "they differ only in line endings".into()
}

/// Checks that `shards` are all N shards of one run (same resolved configuration, same build,
/// none missing, duplicated or unfinished) and writes their union to `out` as one run folder:
/// `config.yaml`, the official layout, `generation.jsonl` and `results.jsonl` in run order
/// (byte for byte those of the unsharded run, with `out` as the folder), and `merge.json`.
/// `finish(staging, records)` adds files (the summary) before the folder appears at `out`,
/// all at once: a failed merge leaves nothing there.
pub fn merge(
    shards: &[PathBuf],
    out: &Path,
    finish: &dyn Fn(&Path, &[ResultRecord]) -> Result<()>,
) -> Result<Vec<ResultRecord>> {
    let loaded = shards
        .iter()
        .map(|d| load_shard(d))
        .collect::<Result<Vec<_>>>()?;
    let first = loaded
        .first()
        .ok_or_else(|| invalid(out, "merge needs at least one shard folder"))?;
    let count = first.manifest.count;
    for s in &loaded[1..] {
        if s.config != first.config {
            return Err(invalid(
                &s.dir.join("config.yaml"),
                format!(
                    "belongs to another run than {}: {}",
                    first.dir.display(),
                    first_difference(&s.config, &first.config)
                ),
            ));
        }
        if s.manifest.code_version != first.manifest.code_version {
            return Err(invalid(
                &s.dir.join(MANIFEST),
                format!(
                    "written by evalcot {}, but {} by evalcot {}; the shards of one run must \
                     come from one build",
                    s.manifest.code_version,
                    first.dir.display(),
                    first.manifest.code_version
                ),
            ));
        }
        if (s.manifest.count, s.manifest.run_images) != (count, first.manifest.run_images) {
            return Err(invalid(
                &s.dir.join(MANIFEST),
                format!(
                    "is shard {} of a run of {} images, but {} is shard {} of {} images",
                    s.manifest.shard(),
                    s.manifest.run_images,
                    first.dir.display(),
                    first.manifest.shard(),
                    first.manifest.run_images
                ),
            ));
        }
    }
    let mut by_index: BTreeMap<usize, &ShardDir> = BTreeMap::new();
    for s in &loaded {
        if let Some(other) = by_index.insert(s.manifest.index, s) {
            return Err(invalid(
                &s.dir,
                format!(
                    "is shard {} again (so is {}); give each shard once",
                    s.manifest.shard(),
                    other.dir.display()
                ),
            ));
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|k| !by_index.contains_key(k))
        .map(|k| format!("{k}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(invalid(
            out,
            format!(
                "cannot merge: shard{} {} missing (given {} of {count}: {})",
                if missing.len() > 1 { "s" } else { "" },
                missing.join(", "),
                loaded.len(),
                shards
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let mut owner: BTreeMap<(usize, usize), &Path> = BTreeMap::new();
    for s in by_index.values() {
        for k in &s.manifest.images {
            if let Some(other) = owner.insert(*k, &s.dir) {
                return Err(invalid(
                    &s.dir.join(MANIFEST),
                    format!(
                        "prompt {} image {} is also in {}; shards must be disjoint",
                        k.0,
                        k.1,
                        other.display()
                    ),
                ));
            }
        }
    }
    if owner.len() != first.manifest.run_images {
        return Err(invalid(
            out,
            format!(
                "the shards hold {} images, the run has {}",
                owner.len(),
                first.manifest.run_images
            ),
        ));
    }
    write_merged(&by_index, out, finish)
}

fn write_merged(
    shards: &BTreeMap<usize, &ShardDir>,
    out: &Path,
    finish: &dyn Fn(&Path, &[ResultRecord]) -> Result<()>,
) -> Result<Vec<ResultRecord>> {
    if std::fs::read_dir(out).is_ok_and(|mut d| d.next().is_some()) {
        return Err(invalid(
            out,
            "exists and is not empty; merge writes a new run folder",
        ));
    }
    let name = out
        .file_name()
        .map_or_else(|| "run".to_string(), |n| n.to_string_lossy().into_owned());
    let staging = out.with_file_name(format!(".{name}.merge.{}.tmp", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    let result = (|| {
        std::fs::create_dir_all(&staging).map_err(|e| Error::io(&staging, e))?;
        let records = stage(shards, &staging, out)?;
        finish(&staging, &records)?;
        if out.exists() {
            std::fs::remove_dir(out).map_err(|e| Error::io(out, e))?;
        }
        std::fs::rename(&staging, out).map_err(|e| Error::io(out, e))?;
        Ok(records)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// Writes the merged run into `staging`; result file names point into `out`, where the folder
/// will be.
fn stage(
    shards: &BTreeMap<usize, &ShardDir>,
    staging: &Path,
    out: &Path,
) -> Result<Vec<ResultRecord>> {
    let any = shards
        .values()
        .next()
        .ok_or_else(|| invalid(out, "no shard"))?;
    harness::fsutil::write_atomic(&staging.join("config.yaml"), any.config.as_bytes())?;
    let mut generation = BTreeMap::new();
    let mut records = Vec::new();
    for s in shards.values() {
        let prompts: BTreeSet<usize> = s.manifest.images.iter().map(|k| k.0).collect();
        for p in prompts {
            let folder = LayoutWriter::folder_name(p);
            copy_tree(&s.dir.join(&folder), &staging.join(&folder))?;
        }
        generation.extend(s.generation.iter().map(|(k, g)| (*k, g.clone())));
        for r in &s.results {
            let (p, i) = key_of(&r.filename).ok_or_else(|| {
                invalid(
                    &s.dir.join("results.jsonl"),
                    format!("unexpected sample name {}", r.filename),
                )
            })?;
            let mut r = r.clone();
            r.filename = out
                .join(LayoutWriter::folder_name(p))
                .join("samples")
                .join(LayoutWriter::image_name(i))
                .display()
                .to_string();
            records.push(((p, i), r));
        }
    }
    records.sort_by_key(|(k, _)| *k);
    let records: Vec<ResultRecord> = records.into_iter().map(|(_, r)| r).collect();
    let gen_path = staging.join("generation.jsonl");
    let mut text = String::new();
    for g in generation.values() {
        text.push_str(&serde_json::to_string(g).map_err(|e| invalid(&gen_path, e.to_string()))?);
        text.push('\n');
    }
    harness::fsutil::write_atomic(&gen_path, text.as_bytes())?;
    // Wall time: every shard's timing records, the last one of an image winning (a rerun shard
    // regenerates what it had not recorded), a line cut short by a kill dropped.
    let mut timing: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for s in shards.values() {
        let path = s.dir.join(crate::runner::TIMING_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::io(&path, e)),
        };
        for (i, line) in text
            .rfind('\n')
            .map_or("", |i| &text[..=i])
            .lines()
            .enumerate()
        {
            let t: crate::runner::TimingRecord = serde_json::from_str(line).map_err(|e| {
                Error::invalid(
                    Location::line(path.display().to_string(), i + 1),
                    format!("expected a timing record: {e}"),
                )
            })?;
            timing.insert((t.prompt_index, t.image_index), line.to_string());
        }
    }
    if !timing.is_empty() {
        let text: String = timing.values().map(|l| format!("{l}\n")).collect();
        harness::fsutil::write_atomic(&staging.join(crate::runner::TIMING_FILE), text.as_bytes())?;
    }
    merge_profiles(shards.values().map(|s| s.dir.as_path()), staging)?;
    harness::results::write_results(&staging.join("results.jsonl"), &records)?;
    let provenance = serde_json::json!({
        "format": "evalcot-merge/1",
        "code_version": any.manifest.code_version,
        "run_images": any.manifest.run_images,
        "shards": shards.values().map(|s| serde_json::json!({
            "index": s.manifest.index,
            "count": s.manifest.count,
            "folder": s.dir.display().to_string(),
            "images": s.manifest.images.len(),
        })).collect::<Vec<_>>(),
    });
    let path = staging.join(MERGE_RECORD);
    let text =
        serde_json::to_string_pretty(&provenance).map_err(|e| invalid(&path, e.to_string()))?;
    harness::fsutil::write_atomic(&path, format!("{text}\n").as_bytes())?;
    Ok(records)
}

/// `profile.json` of a run made with `--profile`: the shards' profiles added up
/// ([`harness::profile::Profile::merge`]) when every shard has one; when only some do, none is
/// written and the shards without one are named (a partial sum would understate the run).
fn merge_profiles<'a>(dirs: impl Iterator<Item = &'a Path>, staging: &Path) -> Result<()> {
    use harness::profile::Profile;
    let (mut found, mut missing) = (Vec::new(), Vec::new());
    for dir in dirs {
        let path = dir.join(PROFILE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => found.push(
                serde_json::from_str::<Profile>(&text)
                    .map_err(|e| invalid(&path, format!("expected a run profile: {e}")))?,
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(dir.display()),
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    if found.is_empty() {
        return Ok(());
    }
    if !missing.is_empty() {
        eprintln!(
            "merge: no {PROFILE_FILE} written: {} of the shards were run without --profile ({})",
            missing.len(),
            missing
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(());
    }
    let merged = Profile::merge(&found);
    let path = staging.join(PROFILE_FILE);
    let text = serde_json::to_string_pretty(&merged).map_err(|e| invalid(&path, e.to_string()))?;
    harness::fsutil::write_atomic(&path, text.as_bytes())
}

/// Written by `run --profile` beside a run's results.
pub const PROFILE_FILE: &str = "profile.json";

/// Copies a prompt folder; a file already there (the same prompt's metadata from another shard)
/// must be identical. Temporaries of killed runs are not copied.
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(|e| Error::io(to, e))?;
    for entry in std::fs::read_dir(from).map_err(|e| Error::io(from, e))? {
        let entry = entry.map_err(|e| Error::io(from, e))?;
        let name = entry.file_name();
        let (src, dst) = (entry.path(), to.join(&name));
        let text_name = name.to_string_lossy();
        if text_name.starts_with('.') && text_name.ends_with(".tmp") {
            continue;
        }
        if src.is_dir() {
            copy_tree(&src, &dst)?;
            continue;
        }
        let bytes = std::fs::read(&src).map_err(|e| Error::io(&src, e))?;
        match std::fs::read(&dst) {
            Ok(existing) if existing == bytes => {}
            Ok(_) => {
                return Err(invalid(
                    &src,
                    format!(
                        "differs from the same file of another shard ({})",
                        dst.display()
                    ),
                ))
            }
            Err(_) => std::fs::write(&dst, &bytes).map_err(|e| Error::io(&dst, e))?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn explicit_and_environment_shards_parse() {
        let none = env_of(&[]);
        assert_eq!(Shard::parse("2/3", &none), Ok(Shard { index: 2, count: 3 }));
        assert!(Shard::parse("3/3", &none).unwrap_err().contains("0-based"));
        assert!(Shard::parse("0/0", &none).is_err());
        assert!(Shard::parse("x/3", &none).unwrap_err().contains("\"x\""));
        assert!(Shard::parse("2", &none).unwrap_err().contains("K/N"));
        assert!(Shard::parse("auto", &none)
            .unwrap_err()
            .contains("JOB_COMPLETION_INDEX"));

        let slurm = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "5"),
            ("SLURM_ARRAY_TASK_MIN", "1"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
        ]);
        assert_eq!(
            Shard::parse("auto", &slurm),
            Ok(Shard { index: 2, count: 4 })
        );
        assert_eq!(
            Shard::parse("auto/4", &slurm),
            Ok(Shard { index: 2, count: 4 })
        );
        assert!(Shard::parse("auto/5", &slurm)
            .unwrap_err()
            .contains("agree"));

        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "7")]);
        assert_eq!(
            Shard::parse("auto/8", &k8s),
            Ok(Shard { index: 7, count: 8 })
        );
        assert!(Shard::parse("auto", &k8s).unwrap_err().contains("auto/N"));
        assert!(Shard::parse("auto/7", &k8s)
            .unwrap_err()
            .contains("out of range"));

        let own = env_of(&[("EVALCOT_SHARD", "1/2"), ("JOB_COMPLETION_INDEX", "0")]);
        assert_eq!(Shard::parse("auto", &own), Ok(Shard { index: 1, count: 2 }));
    }

    #[test]
    fn shards_partition_the_images_and_name_their_folders() {
        let shards: Vec<Shard> = (0..3).map(|index| Shard { index, count: 3 }).collect();
        for ordinal in 0..100 {
            assert_eq!(shards.iter().filter(|s| s.owns(ordinal)).count(), 1);
        }
        let s = Shard {
            index: 3,
            count: 12,
        };
        assert_eq!(
            s.folder(Path::new("runs/parm")),
            Path::new("runs/parm.shard-03-of-12")
        );
    }

    #[test]
    fn first_difference_names_the_line() {
        assert_eq!(
            first_difference("a\nseed: 1\n", "a\nseed: 2\n"),
            "line 2: \"seed: 1\" against \"seed: 2\""
        );
    }
}
