//! Sharded runs. `--shard K/N` makes a run produce only the K-th of N disjoint slices of its
//! images: the i-th (prompt, image) pair of the run, in suite order, belongs to shard i mod N, so
//! every shard gets a mix of tags and a similar amount of work. Because every random draw comes
//! from (seed, prompt, image, candidate, step), the union of the N shard folders is the
//! unsharded run; [`merge`](super::merge::merge) checks that the shards belong together and are finished, and writes
//! that union as one ordinary run folder.

use crate::error::{Error, Location, Result};
use crate::run::record::GENERATION_FILE;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The file that marks a run folder as one shard of a sharded run.
pub const MANIFEST: &str = "shard.json";
/// The file a merged run keeps as provenance.
pub const MERGE_RECORD: &str = "merge.json";
pub(super) const FORMAT: &str = "evalcot-shard/1";

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

    /// The items of `all` (a run's jobs in run order) that belong to `shard`; all without one.
    pub fn select<T>(shard: Option<Shard>, all: Vec<T>) -> Vec<T> {
        match shard {
            Some(s) => all
                .into_iter()
                .enumerate()
                .filter(|(i, _)| s.owns(*i))
                .map(|(_, j)| j)
                .collect(),
            None => all,
        }
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

    pub(crate) fn shard(&self) -> Shard {
        Shard {
            index: self.index,
            count: self.count,
        }
    }
}

pub(super) fn invalid(path: &Path, message: impl Into<String>) -> Error {
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
            let gen = out.join(GENERATION_FILE);
            if std::fs::metadata(&gen).is_ok_and(|m| m.len() > 0) {
                return Err(invalid(
                    &gen,
                    "the folder holds an unsharded run; a shard needs a folder of its own",
                ));
            }
            let text = serde_json::to_string(want).map_err(|e| invalid(&path, e.to_string()))?;
            crate::fsutil::write_atomic(&path, format!("{text}\n").as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::merge::first_difference;
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
