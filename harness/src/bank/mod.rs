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
pub mod serve;
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
            if have != wanted {
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
    let path = dir.join(MANIFEST);
    let have = read_manifest(dir)?
        .ok_or_else(|| invalid(&path, "missing: not a bank folder (see evalcot bank)"))?;
    if let Some(d) = have.difference(want) {
        return Err(invalid(&path, d));
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
