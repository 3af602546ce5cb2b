//! Merging shard folders into one run folder: the shards must come from one build and one
//! resolved configuration and be finished; the union is written under a temporary name and
//! renamed into place, so a merge is whole or absent.

use super::shard::*;
use crate::error::{Error, Location, Result};
use crate::layout::sample_key as key_of;
use crate::layout::LayoutWriter;
use crate::results::ResultRecord;
use crate::run::record::{
    read_generation, GenerationRecord, TimingRecord, GENERATION_FILE, TIMING_FILE,
};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
    let generation = read_generation(&dir.join(GENERATION_FILE))?;
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
            &dir.join(GENERATION_FILE),
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
pub(super) fn first_difference(a: &str, b: &str) -> String {
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
    crate::fsutil::write_atomic(&staging.join("config.yaml"), any.config.as_bytes())?;
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
    let gen_path = staging.join(GENERATION_FILE);
    let mut text = String::new();
    for g in generation.values() {
        text.push_str(&serde_json::to_string(g).map_err(|e| invalid(&gen_path, e.to_string()))?);
        text.push('\n');
    }
    crate::fsutil::write_atomic(&gen_path, text.as_bytes())?;
    // Wall time: every shard's timing records, the last one of an image winning (a rerun shard
    // regenerates what it had not recorded), a line cut short by a kill dropped.
    let mut timing: BTreeMap<(usize, usize), String> = BTreeMap::new();
    for s in shards.values() {
        let path = s.dir.join(TIMING_FILE);
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
            let t: TimingRecord = serde_json::from_str(line).map_err(|e| {
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
        crate::fsutil::write_atomic(&staging.join(TIMING_FILE), text.as_bytes())?;
    }
    merge_profiles(shards.values().map(|s| s.dir.as_path()), staging)?;
    crate::results::write_results(&staging.join("results.jsonl"), &records)?;
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
    crate::fsutil::write_atomic(&path, format!("{text}\n").as_bytes())?;
    Ok(records)
}

/// `profile.json` of a run made with `--profile`: the shards' profiles added up
/// ([`crate::profile::Profile::merge`]) when every shard has one; when only some do, none is
/// written and the shards without one are named (a partial sum would understate the run).
fn merge_profiles<'a>(dirs: impl Iterator<Item = &'a Path>, staging: &Path) -> Result<()> {
    use crate::profile::Profile;
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
    crate::fsutil::write_atomic(&path, text.as_bytes())
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
