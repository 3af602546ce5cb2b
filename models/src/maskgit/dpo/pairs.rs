//! Preference pairs: K judged samples per training prompt, and one (chosen, rejected) pair per
//! prompt by the configured rule.

use super::config::*;
use crate::store::ModelError;
use harness::generator::{Generator, Trajectory};
use harness::judge::{Judge, JudgeRequest, JudgeTask};
use harness::rng::{derive_seed, Rng};
use harness::Metadata;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// One preference pair: image tokens of a "yes" and a "no" sample of the same prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Pair {
    pub prompt: String,
    pub chosen: Vec<u32>,
    pub rejected: Vec<u32>,
    pub p_chosen: f64,
    pub p_rejected: f64,
}

/// What pair building saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PairStats {
    pub prompts: usize,
    pub all_yes: usize,
    pub all_no: usize,
    /// `ranked`: prompts dropped because their best and worst P(yes) were closer than `min_gap`.
    #[serde(default)]
    pub too_close: usize,
    pub pairs: usize,
}

/// A training prompt's K samples (image tokens) and the labelling judge's P(yes) for each: what
/// pairs are picked from, cached so that a new rule does not resample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedPrompt {
    pub prompt: String,
    pub tokens: Vec<Vec<u32>>,
    pub p_yes: Vec<f64>,
}

pub(super) fn err(message: impl Into<String>) -> ModelError {
    ModelError::config("DPO", message)
}

/// Samples K images per training prompt with `sampler`, labels them with `labeller`'s `final`
/// verdict and picks pairs by `cfg.rule` ([`judge_samples`] then [`select_pairs`]).
pub fn build_pairs(
    cfg: &PairsConfig,
    sampler: &dyn Generator,
    labeller: &dyn Judge,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Vec<Pair>, PairStats), ModelError> {
    let judged = judge_samples(cfg, sampler, labeller, progress)?;
    Ok(select_pairs(cfg, &judged))
}

/// K samples per training prompt and their `final` P(yes). Every draw comes from
/// `(cfg.seed, prompt, sample)`, so chunks run one per core (when both models allow it) and the
/// result does not depend on the thread count.
pub fn judge_samples(
    cfg: &PairsConfig,
    sampler: &dyn Generator,
    labeller: &dyn Judge,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<JudgedPrompt>, ModelError> {
    let prompts = world::prompts::training_prompts(cfg.prompts, cfg.seed);
    const CHUNK: usize = 8;
    let chunks: Vec<(usize, &[Metadata])> = prompts
        .chunks(CHUNK)
        .enumerate()
        .map(|(c, chunk)| (c * CHUNK, chunk))
        .collect();
    let width = if sampler.concurrent() && labeller.concurrent() {
        rayon::current_num_threads()
    } else {
        1
    };
    let mut out = Vec::with_capacity(prompts.len());
    harness::waves::in_order(
        &chunks,
        width,
        |&(first, chunk)| judge_chunk(cfg, sampler, labeller, first, chunk),
        |_, part| {
            out.extend(part?);
            progress(out.len(), prompts.len());
            Ok::<(), ModelError>(())
        },
    )?;
    Ok(out)
}

/// The judged samples of the prompts `first..first + chunk.len()`.
pub(super) fn judge_chunk(
    cfg: &PairsConfig,
    sampler: &dyn Generator,
    labeller: &dyn Judge,
    first: usize,
    chunk: &[Metadata],
) -> Result<Vec<JudgedPrompt>, ModelError> {
    let steps = cfg.steps.unwrap_or_else(|| sampler.default_steps());
    let k = cfg.samples_per_prompt;
    let mut batch: Vec<Trajectory> = Vec::with_capacity(chunk.len() * k);
    for (j, m) in chunk.iter().enumerate() {
        for s in 0..k {
            batch.push(sampler.start(
                &m.prompt,
                derive_seed(cfg.seed, &[(first + j) as u64, s as u64]),
                steps,
            ));
        }
    }
    sampler.run_to_end(&mut batch).map_err(err)?;
    let images = sampler.decode(&batch).map_err(err)?;
    let requests: Vec<JudgeRequest<'_>> = images
        .iter()
        .enumerate()
        .map(|(b, image)| JudgeRequest {
            task: JudgeTask::Final,
            image,
            metadata: &chunk[b / k],
            step: None,
        })
        .collect();
    let verdicts = labeller.judge(&requests).map_err(err)?;
    Ok(chunk
        .iter()
        .enumerate()
        .map(|(j, m)| JudgedPrompt {
            prompt: m.prompt.clone(),
            tokens: (0..k)
                .map(|s| batch[j * k + s].prediction.clone())
                .collect(),
            p_yes: (0..k).map(|s| verdicts[j * k + s].p_yes).collect(),
        })
        .collect())
}

/// The samples of `cfg.bank` (see [`PairsConfig::bank`]), made by generator `sampler` (its
/// name) and labelled by a detector other than `evaluator` (the evaluation detector's name).
pub fn bank_samples(
    cfg: &PairsConfig,
    sampler: &str,
    evaluator: &str,
) -> Result<Vec<JudgedPrompt>, ModelError> {
    let Some(dir) = cfg.bank.as_deref().map(Path::new) else {
        return Err(err("pairs.bank: no bank named"));
    };
    let at = |m: String| {
        ModelError::from(harness::Error::invalid(
            harness::error::Location::file(dir.join(harness::bank::MANIFEST).display().to_string()),
            m,
        ))
    };
    let manifest = harness::bank::read_manifest(dir)?
        .ok_or_else(|| at("no bank here (evalcot bank writes bank.json)".into()))?;
    if cfg.judge != "bank" {
        return Err(err(format!(
            "pairs.judge {:?}: with pairs.bank the labels are the bank's verdicts; write judge: bank",
            cfg.judge
        )));
    }
    if harness::detector::is_evaluation_detector(&manifest.detector, evaluator) {
        return Err(at(format!(
            "detector {:?} is the evaluation detector: pairs are labelled by an annotator (evalcot bank … --detector models/weights/annotator)",
            manifest.detector
        )));
    }
    if manifest.generator != sampler {
        return Err(at(format!(
            "generator {:?}: the pairs' sampler is {sampler:?}",
            manifest.generator
        )));
    }
    if manifest.shard.is_some() || manifest.config.images_per_prompt != 1 {
        return Err(at("a whole bank of one image per prompt is expected".into()));
    }
    let k = cfg.samples_per_prompt;
    if k < 2 || k > manifest.config.n {
        return Err(at(format!(
            "pairs.samples_per_prompt {k}: the bank holds {} candidates per prompt (2 or more needed)",
            manifest.config.n
        )));
    }
    let prompts = manifest.config.prompts()?;
    if cfg.prompts > prompts.len() {
        return Err(at(format!(
            "pairs.prompts {}: the bank holds {} prompts",
            cfg.prompts,
            prompts.len()
        )));
    }
    let jobs = harness::run::Job::all(&prompts[..cfg.prompts], 1, manifest.config.seed);
    jobs.iter()
        .map(|job| {
            let banked = harness::bank::read_job(
                dir,
                job.prompt_index,
                job.image_index,
                &job.metadata.prompt,
                manifest.config.n,
            )?;
            Ok(JudgedPrompt {
                prompt: job.metadata.prompt.clone(),
                tokens: banked.candidates[..k]
                    .iter()
                    .map(|c| c.last().prediction.clone())
                    .collect(),
                p_yes: banked.candidates[..k]
                    .iter()
                    .map(|c| if c.correct { 1.0 } else { 0.0 })
                    .collect(),
            })
        })
        .collect()
}

/// One pair per judged prompt by `cfg.rule`, or the reason it has none (counted in the stats).
/// Draws come from `(cfg.seed, prompt)`.
pub fn select_pairs(cfg: &PairsConfig, judged: &[JudgedPrompt]) -> (Vec<Pair>, PairStats) {
    let mut stats = PairStats {
        prompts: judged.len(),
        ..PairStats::default()
    };
    let mut pairs = Vec::new();
    for (i, jp) in judged.iter().enumerate() {
        let k = jp.p_yes.len();
        let (c_s, r_s) = match cfg.rule {
            PairRule::Verdict => {
                let yes: Vec<usize> = (0..k).filter(|&s| jp.p_yes[s] >= 0.5).collect();
                let no: Vec<usize> = (0..k).filter(|&s| jp.p_yes[s] < 0.5).collect();
                if no.is_empty() {
                    stats.all_yes += 1;
                    continue;
                }
                if yes.is_empty() {
                    stats.all_no += 1;
                    continue;
                }
                let mut rng = Rng::derived(cfg.seed, &[i as u64, u64::MAX]);
                (yes[rng.index(yes.len())], no[rng.index(no.len())])
            }
            PairRule::Ranked => {
                // Ties keep the first sample, so the pick is a function of the scores alone.
                let by = |better: fn(f64, f64) -> bool| {
                    (1..k).fold(0, |b, s| {
                        if better(jp.p_yes[s], jp.p_yes[b]) {
                            s
                        } else {
                            b
                        }
                    })
                };
                let (hi, lo) = (by(|a, b| a > b), by(|a, b| a < b));
                if jp.p_yes[hi] - jp.p_yes[lo] < cfg.min_gap.max(f64::MIN_POSITIVE) {
                    stats.too_close += 1;
                    continue;
                }
                (hi, lo)
            }
        };
        pairs.push(Pair {
            prompt: jp.prompt.clone(),
            chosen: jp.tokens[c_s].clone(),
            rejected: jp.tokens[r_s].clone(),
            p_chosen: jp.p_yes[c_s],
            p_rejected: jp.p_yes[r_s],
        });
    }
    stats.pairs = pairs.len();
    (pairs, stats)
}

/// The judged samples of `cfg` in the training folder `out`: read back from `OUT/samples.jsonl`
/// when `OUT/samples.json` holds this sampling key (a resumed run or a new pair rule does not
/// resample), else made by `make` and written — the samples first, then the key, so that a key
/// always means whole samples.
pub fn cached_samples<E: From<ModelError>>(
    out: &Path,
    cfg: &PairsConfig,
    make: impl FnOnce() -> Result<Vec<JudgedPrompt>, E>,
) -> Result<Vec<JudgedPrompt>, E> {
    let samples_path = out.join("samples.jsonl");
    let key_path = out.join("samples.json");
    let key = serde_json::to_value(cfg.sampling_key()).map_err(|e| err(e.to_string()))?;
    let cached = std::fs::read_to_string(&key_path)
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .is_some_and(|k| k == key)
        && samples_path.exists();
    if cached {
        let text = std::fs::read_to_string(&samples_path)
            .map_err(|e| ModelError::from(harness::Error::io(&samples_path, e)))?;
        let lines = harness::run::record::json_lines(
            &text,
            &samples_path.display().to_string(),
            false,
            "a judged prompt",
        )
        .map_err(ModelError::from)?;
        return Ok(lines.into_iter().map(|(_, j)| j).collect());
    }
    let judged = make()?;
    write_jsonl(&samples_path, &judged)?;
    let key_text = serde_json::to_string_pretty(&key).map_err(|e| err(e.to_string()))?;
    harness::fsutil::write_atomic(&key_path, key_text.as_bytes()).map_err(ModelError::from)?;
    Ok(judged)
}

/// Writes the pairs and what pair building saw: `OUT/pairs.jsonl`, `OUT/pairs.json`.
pub fn write_pairs(
    out: &Path,
    cfg: &PairsConfig,
    pairs: &[Pair],
    stats: &PairStats,
) -> Result<(), ModelError> {
    write_jsonl(&out.join("pairs.jsonl"), pairs)?;
    let text = serde_json::to_string_pretty(&(cfg, stats)).map_err(|e| err(e.to_string()))?;
    harness::fsutil::write_atomic(&out.join("pairs.json"), text.as_bytes())?;
    Ok(())
}

/// One JSON line per record, written atomically.
fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<(), ModelError> {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(|e| err(e.to_string()))?);
        text.push('\n');
    }
    harness::fsutil::write_atomic(path, text.as_bytes())?;
    Ok(())
}
