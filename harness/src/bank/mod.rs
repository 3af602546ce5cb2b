//! Candidate banks. Every random draw of a candidate comes from (run seed, prompt, image,
//! candidate, step), and PARM's truncation only stops paths, so N candidates generated once serve
//! baseline, ORM, best-of-N′, PARM and the oracle exactly, for any judge. A bank keeps every
//! state of every candidate (tokens and prediction after each step, see [`codec`]) and what the
//! evaluation detector saw in each final image; [`serve::BankGenerator`] hands those states back
//! to a strategy as if a generator had computed them, so a replay writes the run that
//! `evalcot run` would have written, with the same compute charged.
//!
//! Layout: `BANK/bank.json` ([`BankManifest`]) and `BANK/jobs/PPPPP-IIII.evb`, one gzip file per
//! (prompt, image), each written under a temporary name and renamed: a killed bank resumes from
//! the jobs it has, and a job file is always whole.

pub mod codec;
pub mod judge;
pub mod serve;
pub mod value;
pub mod write;

use crate::error::{Error, Location, Result};
use crate::run::RunConfig;
use crate::PromptEntry;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

pub use codec::{BankedCandidate, BankedJob};
pub use serve::{BankGenerator, CachedDetector};

/// The file that describes a bank.
pub const MANIFEST: &str = "bank.json";
pub const FORMAT: &str = "evalcot-bank/1";
const JOBS: &str = "jobs";

/// What a bank holds and how it was made; a replay refuses a bank whose manifest differs from
/// what it would generate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankManifest {
    pub format: String,
    /// The evalcot build that wrote the bank: replays are exact only with the same build.
    pub code_version: String,
    /// The generator's name as results record it.
    pub generator: String,
    /// The evaluation detector that judged the final candidates.
    pub detector: String,
    /// The generation settings, resolved as a run resolves them (steps, guidance filled in);
    /// `n` is the candidates per image, `strategy` is `oracle` (what the bank's verdicts are).
    pub config: RunConfig,
    /// Prompts of the selection and a digest of their indices and texts.
    pub prompts: usize,
    pub suite_digest: String,
    /// `[K, N]` when this folder is the K-th of N shards of a bank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<[usize; 2]>,
}

impl BankManifest {
    /// The first field in which `self` (a bank on disk) differs from `want`, as a message.
    pub fn difference(&self, want: &BankManifest) -> Option<String> {
        self.difference_but(want, false)
    }

    /// [`BankManifest::difference`], not counting the build when `any_build`.
    pub fn difference_but(&self, want: &BankManifest, any_build: bool) -> Option<String> {
        let pairs = [
            ("format", self.format.clone(), want.format.clone()),
            (
                "build",
                self.code_version.clone(),
                want.code_version.clone(),
            ),
            ("generator", self.generator.clone(), want.generator.clone()),
            ("detector", self.detector.clone(), want.detector.clone()),
            (
                "suite (prompt indices and texts)",
                format!("{} prompts, digest {}", self.prompts, self.suite_digest),
                format!("{} prompts, digest {}", want.prompts, want.suite_digest),
            ),
            (
                "shard",
                format!("{:?}", self.shard),
                format!("{:?}", want.shard),
            ),
        ];
        for (what, have, wanted) in pairs {
            if have != wanted && !(any_build && what == "build") {
                return Some(format!("{what}: the bank has {have}, expected {wanted}"));
            }
        }
        if self.config != want.config {
            let a = serde_norway::to_string(&self.config).unwrap_or_default();
            let b = serde_norway::to_string(&want.config).unwrap_or_default();
            let line = a
                .lines()
                .zip(b.lines())
                .find(|(x, y)| x != y)
                .map_or_else(|| "a field".to_string(), |(x, y)| format!("{x:?} vs {y:?}"));
            return Some(format!("generation settings differ: {line}"));
        }
        None
    }
}

/// A digest of the prompts' indices and texts (FNV-1a, hex): banks of other prompts are refused.
pub fn suite_digest(prompts: &[PromptEntry]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in prompts {
        for b in format!("{}\t{}\n", p.index, p.metadata.prompt).bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

/// The file of job (prompt, image) in bank `dir`.
pub fn job_path(dir: &Path, prompt_index: usize, image_index: usize) -> PathBuf {
    dir.join(JOBS)
        .join(format!("{prompt_index:05}-{image_index:04}.evb"))
}

fn invalid(path: &Path, message: impl Into<String>) -> Error {
    Error::invalid(Location::file(path.display().to_string()), message)
}

/// Reads `DIR/bank.json`; `None` when there is none.
pub fn read_manifest(dir: &Path) -> Result<Option<BankManifest>> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let m: BankManifest = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            Location::line(path.display().to_string(), e.line()),
            format!("not a bank manifest: {e}"),
        )
    })?;
    if m.format != FORMAT {
        return Err(invalid(
            &path,
            format!("format {:?}: this evalcot reads {FORMAT:?}", m.format),
        ));
    }
    Ok(Some(m))
}

/// Reads and checks one job file: it must hold job (prompt, image) of `prompt` with `n`
/// candidates, at least as many as asked for.
pub fn read_job(
    dir: &Path,
    prompt_index: usize,
    image_index: usize,
    prompt: &str,
    n: usize,
) -> Result<BankedJob> {
    let path = job_path(dir, prompt_index, image_index);
    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
    let job = codec::decode(&bytes).map_err(|e| invalid(&path, e))?;
    if (job.prompt_index, job.image_index) != (prompt_index, image_index) || job.prompt != prompt {
        return Err(invalid(
            &path,
            format!(
                "holds prompt {} image {} ({:?}), expected prompt {prompt_index} image \
                 {image_index} ({prompt:?})",
                job.prompt_index, job.image_index, job.prompt
            ),
        ));
    }
    if job.candidates.len() < n {
        return Err(invalid(
            &path,
            format!("holds {} candidates, {n} needed", job.candidates.len()),
        ));
    }
    Ok(job)
}

/// The jobs of `jobs` that have no file in bank `dir` yet.
pub fn missing<'j>(dir: &Path, jobs: &'j [crate::run::Job]) -> Vec<&'j crate::run::Job> {
    jobs.iter()
        .filter(|j| !job_path(dir, j.prompt_index, j.image_index).is_file())
        .collect()
}

/// Checks that bank `dir` was made as `want` describes and is complete for `jobs`; the error
/// names the file and what differs.
pub fn check(dir: &Path, want: &BankManifest, jobs: &[crate::run::Job]) -> Result<()> {
    check_but(dir, want, jobs, false)
}

/// [`check`], accepting a bank of another build when `any_build` (then [`spot_check`] is what
/// vouches for it).
pub fn check_but(
    dir: &Path,
    want: &BankManifest,
    jobs: &[crate::run::Job],
    any_build: bool,
) -> Result<()> {
    let path = dir.join(MANIFEST);
    let have = read_manifest(dir)?
        .ok_or_else(|| invalid(&path, "missing: not a bank folder (see evalcot bank)"))?;
    if let Some(d) = have.difference_but(want, any_build) {
        let hint = if d.starts_with("build") {
            "; replay with the build that wrote it, remake the bank, or pass --any-build to accept \
             it when its candidate 0 regenerates and decodes identically"
        } else {
            ""
        };
        return Err(invalid(&path, format!("{d}{hint}")));
    }
    let gone = missing(dir, jobs);
    if let Some(first) = gone.first() {
        return Err(invalid(
            &job_path(dir, first.prompt_index, first.image_index),
            format!(
                "missing: the bank is incomplete ({} of {} images have no candidates); rerun \
                 the same evalcot bank command to finish it",
                gone.len(),
                jobs.len()
            ),
        ));
    }
    Ok(())
}

/// Joins the N shards of one bank (`bank --shard K/N`) into bank `out`: every shard must be
/// there once, of the same bank (manifest equal but for the shard) and complete. Job files are
/// copied, each atomically; the manifest is written last, so `out` is a bank only once whole.
pub fn merge(shards: &[PathBuf], out: &Path) -> Result<BankManifest> {
    let mut manifests = Vec::new();
    for dir in shards {
        let path = dir.join(MANIFEST);
        let m = read_manifest(dir)?
            .ok_or_else(|| invalid(&path, "missing: not a bank folder (see evalcot bank)"))?;
        let [k, n] = m.shard.ok_or_else(|| {
            invalid(
                &path,
                "is a whole bank, not a shard (written by bank --shard K/N)",
            )
        })?;
        manifests.push((dir, path, m, k, n));
    }
    let Some((_, first_path, first, _, count)) = manifests.first().cloned() else {
        return Err(invalid(out, "no shard folders given"));
    };
    let whole = BankManifest {
        shard: None,
        ..first.clone()
    };
    let mut seen = vec![false; count];
    for (_, path, m, k, n) in &manifests {
        let unsharded = BankManifest {
            shard: None,
            ..m.clone()
        };
        if let Some(d) = unsharded.difference(&whole) {
            return Err(invalid(
                path,
                format!("belongs to another bank than {}: {d}", first_path.display()),
            ));
        }
        if *n != count || std::mem::replace(&mut seen[*k], true) {
            return Err(invalid(
                path,
                format!("shard {k} of {n}: expected each of shards 0..{count} once"),
            ));
        }
    }
    if let Some(k) = seen.iter().position(|s| !s) {
        return Err(invalid(out, format!("shard {k} of {count} is missing")));
    }
    if let Some(have) = read_manifest(out)?.filter(|h| h != &whole) {
        let d = have
            .difference(&whole)
            .unwrap_or_else(|| "another bank".into());
        return Err(invalid(
            &out.join(MANIFEST),
            format!("holds another bank ({d}); use another --out or remove it"),
        ));
    }
    let prompts = whole.config.prompts()?;
    let all = crate::run::Job::all(&prompts, whole.config.images_per_prompt, whole.config.seed);
    for (dir, _, _, k, n) in &manifests {
        let shard = crate::run::shard::Shard {
            index: *k,
            count: *n,
        };
        let mine = crate::run::shard::Shard::select(Some(shard), all.clone());
        check(
            dir,
            &BankManifest {
                shard: Some([*k, *n]),
                ..whole.clone()
            },
            &mine,
        )?;
        for j in &mine {
            let from = job_path(dir, j.prompt_index, j.image_index);
            let bytes = std::fs::read(&from).map_err(|e| Error::io(&from, e))?;
            crate::fsutil::write_atomic(&job_path(out, j.prompt_index, j.image_index), &bytes)?;
        }
    }
    let text = serde_json::to_string_pretty(&whole)
        .map_err(|e| invalid(&out.join(MANIFEST), e.to_string()))?;
    crate::fsutil::write_atomic(&out.join(MANIFEST), format!("{text}\n").as_bytes())?;
    Ok(whole)
}

/// Regenerates candidate 0 of `job` with `generator` and checks that every state equals the
/// banked one and that its final image, as `detector_size` pixels, is the one the bank's
/// detector saw: a bank made by another generator, other weights or a build that samples or
/// decodes differently is refused here rather than replayed as if it were this generator's (one
/// candidate's compute).
pub fn spot_check(
    dir: &Path,
    job: &crate::run::Job,
    generator: &dyn crate::generator::Generator,
    steps: usize,
    detector_size: u32,
) -> Result<()> {
    let banked = read_job(
        dir,
        job.prompt_index,
        job.image_index,
        &job.metadata.prompt,
        1,
    )?;
    let path = job_path(dir, job.prompt_index, job.image_index);
    let fault = |e: crate::error::ModelFault| invalid(&path, format!("spot check: {e}"));
    let mut live = vec![generator.start(&job.metadata.prompt, job.candidate_seed(0), steps)];
    let mut states = vec![live[0].clone()];
    while !live[0].done() {
        generator.step(&mut live).map_err(fault)?;
        states.push(live[0].clone());
    }
    let image = generator.decode(&live).map_err(fault)?.remove(0);
    let seen = crate::scoring::resize_for_detector(&image, detector_size).0;
    if states != banked.candidates[0].states
        || codec::image_hash(&seen) != banked.candidates[0].image_hash
    {
        return Err(invalid(
            &path,
            format!(
                "does not hold what generator {} draws for its candidate 0: the bank was made by \
                 another generator, other weights, other settings or another build",
                generator.name()
            ),
        ));
    }
    Ok(())
}
