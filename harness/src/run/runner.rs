//! The run loop: suite → strategy → images (official layout) → detector → GenEval rules →
//! results. Runs are append-only: every finished image is a PNG renamed into place followed by
//! one line of `generation.jsonl`; a rerun of the same command skips what is complete, so a run
//! killed at any moment finishes with the same results as an uninterrupted one.
//!
//! A model that produces a NaN or an infinity fails only the image it was working on: that image
//! gets a `generation.jsonl` record whose `error` names the model and the input, and a result
//! counted as incorrect with that reason.

use crate::detector::Detector;
use crate::error::{Error, Location, ModelFault};
use crate::layout::LayoutWriter;
use crate::results::ResultRecord;
use crate::run::record::{
    read_generation, GenerationRecord, TimingRecord, GENERATION_FILE, TIMING_FILE,
};
use crate::run::shard::{Shard, ShardManifest};
use crate::run::{Compute, Context, Job, Outcome, Strategy};
use crate::{PromptEntry, RuleConfig};
use std::io::Write;
use std::path::{Path, PathBuf};

/// What the run loop needs besides the models.
pub struct RunPlan<'a> {
    pub out: &'a Path,
    pub prompts: &'a [PromptEntry],
    pub images_per_prompt: usize,
    pub seed: u64,
    /// Jobs handed to the strategy at once (several prompts' candidates share forwards).
    pub batch_jobs: usize,
    /// The fully resolved configuration, written as `config.yaml`; a folder holding another
    /// configuration is refused.
    pub resolved_config: &'a str,
    /// Only this slice of the images (`--shard K/N`); the folder then holds `shard.json`.
    pub shard: Option<Shard>,
    /// The evalcot build, recorded in `shard.json` so that shards of different builds are not
    /// merged.
    pub code_version: &'a str,
}

/// What a finished run produced.
pub struct RunOutput {
    pub records: Vec<ResultRecord>,
    pub compute: Compute,
    pub generated_now: usize,
    pub resumed: usize,
    pub results: PathBuf,
}

fn invalid(path: &Path, message: impl Into<String>) -> Error {
    Error::invalid(Location::file(path.display().to_string()), message)
}

/// Threads that generate at once: all of rayon's, or one when a model takes requests from one
/// thread at a time (an external worker).
pub fn workers(cx: &Context<'_>) -> usize {
    if cx.generator.concurrent() && cx.judge.is_none_or(|j| j.concurrent()) {
        rayon::current_num_threads().max(1)
    } else {
        1
    }
}

/// Generates every missing image of the plan. `progress(done, total)` after each batch.
pub fn generate(
    plan: &RunPlan<'_>,
    strategy: &dyn Strategy,
    cx: &Context<'_>,
    progress: &mut dyn FnMut(usize, usize),
) -> crate::Result<(usize, usize)> {
    let out = plan.out;
    let all_jobs = Job::all(plan.prompts, plan.images_per_prompt, plan.seed);
    let run_images = all_jobs.len();
    let mine = Shard::select(plan.shard, all_jobs);
    let manifest = plan.shard.map(|s| {
        let images = mine
            .iter()
            .map(|j| (j.prompt_index, j.image_index))
            .collect();
        ShardManifest::new(s, plan.code_version, run_images, images)
    });
    if let Some(s) = plan.shard.filter(|_| mine.is_empty()) {
        return Err(invalid(
            out,
            format!(
                "shard {s} has no image: the run has {run_images}; use at most {run_images} shards"
            ),
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
    let config_path = out.join("config.yaml");
    match std::fs::read_to_string(&config_path) {
        Ok(existing) if existing != plan.resolved_config => return Err(invalid(
            &config_path,
            "belongs to a run with another configuration; use another --out or remove the folder",
        )),
        Ok(_) => {}
        Err(_) => crate::fsutil::write_atomic(&config_path, plan.resolved_config.as_bytes())?,
    }
    crate::run::shard::claim(out, manifest.as_ref())?;
    let writer = LayoutWriter::create(out)?;
    remove_stale_temporaries(out);
    let mut prompts_written = std::collections::BTreeSet::new();
    for j in &mine {
        if prompts_written.insert(j.prompt_index) {
            writer.write_metadata(j.prompt_index, &j.metadata)?;
            let folder = out.join(LayoutWriter::folder_name(j.prompt_index));
            remove_stale_temporaries(&folder);
            remove_stale_temporaries(&folder.join("samples"));
        }
    }
    let gen_path = out.join(GENERATION_FILE);
    let done = read_generation(&gen_path)?;
    let total = mine.len();
    let jobs: Vec<Job> = mine
        .into_iter()
        .filter(|j| {
            !done.get(&(j.prompt_index, j.image_index)).is_some_and(|r| {
                r.error.is_some() || writer.sample_path(j.prompt_index, j.image_index).exists()
            })
        })
        .collect();
    let resumed = total - jobs.len();
    let mut finished = resumed;
    progress(finished, total);
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&gen_path)
        .map_err(|e| Error::io(&gen_path, e))?;
    // Batches run on all of rayon's threads at once, each thread taking the next batch when
    // it is free (one matmul stream per core: these matrices are too small for burn's threaded
    // GEMM to pay); records are still written in job order, and no draw depends on which
    // thread ran a batch.
    let chunks: Vec<&[Job]> = jobs.chunks(plan.batch_jobs.max(1)).collect();
    let width = workers(cx);
    // Wall time goes to its own file: generation records must not depend on the machine.
    let timing_path = out.join(TIMING_FILE);
    let mut timing = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&timing_path)
        .map_err(|e| Error::io(&timing_path, e))?;
    crate::waves::in_order(
        &chunks,
        width,
        |chunk| {
            let started = std::time::Instant::now();
            let outcomes = run_chunk(out, strategy, cx, chunk);
            (outcomes, started.elapsed().as_secs_f64())
        },
        |chunk, (outcomes, seconds)| {
            write_outcomes(&writer, &mut log, &gen_path, strategy, cx, chunk, outcomes?)?;
            let mut lines = String::new();
            for job in *chunk {
                let rec = TimingRecord {
                    prompt_index: job.prompt_index,
                    image_index: job.image_index,
                    seconds: seconds / chunk.len() as f64,
                    batch: chunk.len(),
                    threads: width,
                };
                lines.push_str(
                    &serde_json::to_string(&rec)
                        .map_err(|e| invalid(&timing_path, e.to_string()))?,
                );
                lines.push('\n');
            }
            timing
                .write_all(lines.as_bytes())
                .map_err(|e| Error::io(&timing_path, e))?;
            finished += chunk.len();
            progress(finished, total);
            Ok::<(), Error>(())
        },
    )?;
    log.sync_all().map_err(|e| Error::io(&gen_path, e))?;
    Ok((total - resumed, resumed))
}

/// Writes one batch's images (each PNG atomically, before its record) and generation records.
fn write_outcomes(
    writer: &LayoutWriter,
    log: &mut std::fs::File,
    gen_path: &Path,
    strategy: &dyn Strategy,
    cx: &Context<'_>,
    chunk: &[Job],
    outcomes: Vec<Result<Outcome, String>>,
) -> crate::Result<()> {
    for (job, o) in chunk.iter().zip(outcomes) {
        let (compute, trace, error) = match o {
            Ok(o) => {
                // The PNG lands (atomically) before its record: a record always means a
                // whole image.
                writer.write_sample(job.prompt_index, job.image_index, &o.image)?;
                (o.compute, o.trace, None)
            }
            Err(reason) => (Compute::default(), serde_json::Value::Null, Some(reason)),
        };
        let rec = GenerationRecord {
            prompt_index: job.prompt_index,
            image_index: job.image_index,
            strategy: strategy.name().to_string(),
            generator: cx.generator.name().to_string(),
            compute,
            trace,
            error,
        };
        let line = serde_json::to_string(&rec).map_err(|e| invalid(gen_path, e.to_string()))?;
        log.write_all(format!("{line}\n").as_bytes())
            .and_then(|_| log.flush())
            .map_err(|e| Error::io(gen_path, e))?;
    }
    Ok(())
}

/// Runs one batch of jobs. When a model's NaN or infinity fails the batch, each job is run alone
/// (results do not depend on batching), so that only the jobs that fail by themselves fail, each
/// with a reason naming the strategy, the model (from its message) and the input. Any other
/// error aborts the run.
fn run_chunk(
    out: &Path,
    strategy: &dyn Strategy,
    cx: &Context<'_>,
    chunk: &[Job],
) -> crate::Result<Vec<Result<Outcome, String>>> {
    let checked = |jobs: &[Job], r: Result<Vec<Outcome>, ModelFault>| match r {
        Ok(o) if o.len() == jobs.len() => Ok(Ok(o)),
        Ok(o) => Err(invalid(
            out,
            format!(
                "strategy {} returned {} images for {} jobs",
                strategy.name(),
                o.len(),
                jobs.len()
            ),
        )),
        Err(ModelFault::NonFinite(e)) => Ok(Err(e)),
        Err(ModelFault::Failed(e)) => {
            Err(invalid(out, format!("strategy {}: {e}", strategy.name())))
        }
    };
    let fail = |job: &Job, e: String| {
        format!(
            "prompt {} image {} ({:?}): strategy {}: {e}",
            job.prompt_index,
            job.image_index,
            job.metadata.prompt,
            strategy.name()
        )
    };
    match checked(chunk, strategy.run(cx, chunk))? {
        Ok(outcomes) => Ok(outcomes.into_iter().map(Ok).collect()),
        Err(e) if chunk.len() == 1 => Ok(vec![Err(fail(&chunk[0], e))]),
        Err(_) => chunk
            .iter()
            .map(|job| {
                let one = std::slice::from_ref(job);
                Ok(match checked(one, strategy.run(cx, one))? {
                    Ok(mut o) => Ok(o.remove(0)),
                    Err(e) => Err(fail(job, e)),
                })
            })
            .collect(),
    }
}

/// Removes temporary files left by killed runs (`.<name>.<pid>.tmp`, see
/// [`crate::fsutil::temp_path`]) from `dir`. Readers never count them; this only tidies up.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".tmp") && entry.path().is_file() {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Scores the run folder with the evaluation detector and joins each result with its
/// generation record (compute, decisions). Writes `results.jsonl`.
pub fn score(
    out: &Path,
    detector: &dyn Detector,
    rules: &RuleConfig,
    batch_size: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> crate::Result<(Vec<ResultRecord>, Compute)> {
    let gen = read_generation(&out.join(GENERATION_FILE))?;
    // Images that failed in generation have no PNG; a run where every image failed has none.
    let mut records = if gen.is_empty() || gen.values().any(|g| g.error.is_none()) {
        crate::scoring::score_image_dir(out, detector, rules, batch_size, progress)?.records
    } else {
        Vec::new()
    };
    let mut total = Compute::default();
    for r in &mut records {
        let key = crate::layout::sample_key(&r.filename)
            .ok_or_else(|| invalid(out, format!("unexpected sample name {}", r.filename)))?;
        let g = gen.get(&key).ok_or_else(|| {
            invalid(
                &out.join(GENERATION_FILE),
                format!(
                    "has no record for {}; rerun the same command to finish the run",
                    r.filename
                ),
            )
        })?;
        total += g.compute;
        merge_record(out, r, g)?;
    }
    for g in gen.values() {
        if let Some(reason) = &g.error {
            records.push(failed_generation(out, g, reason)?);
        }
    }
    records.sort_by_key(|r| crate::layout::sample_key(&r.filename));
    crate::results::write_results(&out.join("results.jsonl"), &records)?;
    Ok((records, total))
}

/// Adds a generation record's fields (compute, trace, error) to a result.
fn merge_record(out: &Path, r: &mut ResultRecord, g: &GenerationRecord) -> crate::Result<()> {
    let value = serde_json::to_value(g).map_err(|e| invalid(out, e.to_string()))?;
    if let serde_json::Value::Object(map) = value {
        for (k, v) in map {
            if k != "prompt_index" && k != "image_index" {
                r.extra.insert(k, v);
            }
        }
    }
    Ok(())
}

/// The result of an image that failed in generation: incorrect, with the failure as its reason.
fn failed_generation(
    out: &Path,
    g: &GenerationRecord,
    reason: &str,
) -> crate::Result<ResultRecord> {
    let folder = LayoutWriter::folder_name(g.prompt_index);
    let meta = crate::layout::read_folder_metadata(&out.join(&folder).join("metadata.jsonl"))?;
    let filename = out
        .join(&folder)
        .join("samples")
        .join(LayoutWriter::image_name(g.image_index));
    let mut r = ResultRecord {
        filename: filename.display().to_string(),
        tag: meta.tag.as_str().to_string(),
        prompt: meta.prompt.clone(),
        correct: false,
        reason: reason.to_string(),
        metadata: meta.to_json_string(),
        details: "{}".into(),
        extra: serde_json::Map::new(),
    };
    merge_record(out, &mut r, g)?;
    Ok(r)
}
