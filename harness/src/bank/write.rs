//! Making a bank: the N candidates of every (prompt, image) stepped to the end with every state
//! kept, the final images judged by the evaluation detector, one job file each.

use super::codec::{encode, BankedCandidate, BankedJob};
use super::serve::RecordingDetector;
use super::{job_path, missing, read_manifest, BankManifest, MANIFEST};
use crate::error::{Error, ModelFault, Result};
use crate::generator::Trajectory;
use crate::run::candidates::Candidates;
use crate::run::{Context, Job};
use std::path::Path;
use std::sync::Mutex;

/// Makes (or finishes) bank `out` for `jobs`, `batch_jobs` jobs at a time through the models.
/// `progress(done, total)` after each batch. Returns (jobs made now, jobs already there).
pub fn generate(
    out: &Path,
    manifest: &BankManifest,
    jobs: &[Job],
    cx: &Context<'_>,
    batch_jobs: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(usize, usize)> {
    match read_manifest(out)? {
        Some(have) => {
            if let Some(d) = have.difference(manifest) {
                return Err(super::invalid(
                    &out.join(MANIFEST),
                    format!("belongs to another bank ({d}); use another --out or remove it"),
                ));
            }
        }
        None => {
            std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
            let text = serde_json::to_string_pretty(manifest)
                .map_err(|e| super::invalid(&out.join(MANIFEST), e.to_string()))?;
            crate::fsutil::write_atomic(&out.join(MANIFEST), format!("{text}\n").as_bytes())?;
        }
    }
    let todo: Vec<Job> = missing(out, jobs).into_iter().cloned().collect();
    let (total, resumed) = (jobs.len(), jobs.len() - todo.len());
    let mut finished = resumed;
    progress(finished, total);
    let chunks: Vec<&[Job]> = todo.chunks(batch_jobs.max(1)).collect();
    crate::waves::in_order(
        &chunks,
        crate::run::runner::workers(cx),
        |chunk| bank_chunk(cx, chunk),
        |chunk, banked| {
            let banked = banked.map_err(|e| {
                super::invalid(
                    out,
                    format!(
                        "prompt {} image {} and the {} images batched with it: {e}",
                        chunk[0].prompt_index,
                        chunk[0].image_index,
                        chunk.len() - 1
                    ),
                )
            })?;
            for job in banked {
                let path = job_path(out, job.prompt_index, job.image_index);
                crate::fsutil::write_atomic(&path, &encode(&job))?;
            }
            finished += chunk.len();
            progress(finished, total);
            Ok::<(), Error>(())
        },
    )?;
    Ok((total - resumed, resumed))
}

/// The candidates of `jobs`, stepped one step at a time with every state kept.
fn bank_chunk(cx: &Context<'_>, jobs: &[Job]) -> std::result::Result<Vec<BankedJob>, ModelFault> {
    let n = cx.n.max(1);
    let mut cands = Candidates::start(cx, jobs, n);
    let mut states: Vec<Vec<Trajectory>> = (0..cands.len())
        .map(|i| vec![cands.path(i).clone()])
        .collect();
    loop {
        let open: Vec<usize> = (0..cands.len()).filter(|&i| !cands.done(i)).collect();
        if open.is_empty() {
            break;
        }
        cands.step(&open)?;
        for i in open {
            states[i].push(cands.path(i).clone());
        }
    }
    // Where finishing in one pass charges other compute than stepping, that pass is banked too
    // (ORM, the baseline and the oracle finish fresh candidates that way); its image must be
    // the stepped one.
    let mut ends: Vec<Option<Trajectory>> = vec![None; states.len()];
    if !cx.generator.run_to_end_is_stepping() {
        let mut fresh: Vec<Trajectory> = states.iter().map(|s| s[0].clone()).collect();
        cx.generator.run_to_end(&mut fresh)?;
        for ((end, s), slot) in fresh.into_iter().zip(&states).zip(&mut ends) {
            let last = s.last().expect("a fresh state at least");
            if (&end.tokens, &end.prediction) != (&last.tokens, &last.prediction) {
                return Err(ModelFault::Failed(format!(
                    "generator {}: run_to_end and stepping give different images for seed {}",
                    cx.generator.name(),
                    end.seed
                )));
            }
            *slot = Some(end);
        }
    }
    let all = cands.all();
    let images = cands.decode(&all)?;
    let detector = cx
        .detector
        .ok_or("a bank needs the evaluation detector to judge its candidates")?;
    let recording = RecordingDetector {
        inner: detector,
        seen: Mutex::new(Vec::new()),
    };
    let metas: Vec<_> = all.iter().map(|&i| cands.meta(i)).collect();
    let verdicts = crate::scoring::judge_images(&recording, &images, &metas, &cx.rules)?;
    let seen = recording.seen.into_inner().expect("recording detector");
    if seen.len() != images.len() {
        return Err(ModelFault::Failed(format!(
            "the detector saw {} images for {} candidates",
            seen.len(),
            images.len()
        )));
    }
    let mut states = states.into_iter().zip(ends);
    let mut judged = seen.into_iter().zip(verdicts);
    Ok(jobs
        .iter()
        .map(|j| BankedJob {
            prompt_index: j.prompt_index,
            image_index: j.image_index,
            prompt: j.metadata.prompt.clone(),
            candidates: (0..n)
                .map(|_| {
                    let ((image_hash, objects), verdict) =
                        judged.next().expect("one verdict per candidate");
                    let (correct, reason) = match verdict {
                        Ok(v) => (v.correct, v.reason),
                        Err(e) => (false, e),
                    };
                    let (states, end) = states.next().expect("states per candidate");
                    BankedCandidate {
                        states,
                        end,
                        image_hash,
                        objects,
                        correct,
                        reason,
                    }
                })
                .collect(),
        })
        .collect())
}
