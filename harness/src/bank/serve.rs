//! A bank served back to strategies: a [`Generator`] whose steps are the banked states, and a
//! [`Detector`] that answers for the banked final images from what the evaluation detector said
//! when the bank was made.

use super::{read_job, BankedJob};
use crate::detector::{DetectedObject, Detector};
use crate::error::ModelFault;
use crate::generator::{Generator, Trajectory};
use crate::run::Job;
use image::RgbImage;
use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Banked jobs kept in memory at once (a job of 20 candidates × 19 states of 256 tokens is about
/// 0.8 MB); a job pushed out is read again if asked for.
const CACHED_JOBS: usize = 256;

struct Loaded {
    jobs: HashMap<(usize, usize), Arc<BankedJob>>,
    order: VecDeque<(usize, usize)>,
}

/// Where each candidate seed of a bank lives, and the jobs read so far.
struct Index {
    dir: PathBuf,
    n: usize,
    /// candidate seed → (prompt index, image index, candidate, prompt)
    seeds: HashMap<u64, (usize, usize, usize, Arc<str>)>,
    loaded: Mutex<Loaded>,
    /// Detector outputs of every final image read so far, by image hash.
    objects: Mutex<HashMap<u128, Vec<DetectedObject>>>,
}

impl Index {
    fn job(&self, p: usize, k: usize, prompt: &str) -> Result<Arc<BankedJob>, ModelFault> {
        if let Some(j) = self.loaded.lock().expect("bank cache").jobs.get(&(p, k)) {
            return Ok(j.clone());
        }
        let job = Arc::new(
            read_job(&self.dir, p, k, prompt, self.n)
                .map_err(|e| ModelFault::Failed(e.to_string()))?,
        );
        {
            let mut objects = self.objects.lock().expect("bank cache");
            for c in &job.candidates {
                objects.insert(c.image_hash, c.objects.clone());
            }
        }
        let mut loaded = self.loaded.lock().expect("bank cache");
        if loaded.jobs.insert((p, k), job.clone()).is_none() {
            loaded.order.push_back((p, k));
        }
        while loaded.order.len() > CACHED_JOBS {
            if let Some(old) = loaded.order.pop_front() {
                loaded.jobs.remove(&old);
            }
        }
        Ok(job)
    }

    /// The banked states of the candidate whose seed is `seed`.
    fn states(&self, seed: u64) -> Result<(Arc<BankedJob>, usize), ModelFault> {
        let (p, k, c, prompt) = self.seeds.get(&seed).ok_or_else(|| {
            ModelFault::Failed(format!(
                "a candidate with seed {seed} is not in bank {}: only the candidates a run draws \
                 are banked (strategies that fork or re-mask paths run only live)",
                self.dir.display()
            ))
        })?;
        Ok((self.job(*p, *k, prompt)?, *c))
    }
}

/// A generator that replays a bank: `start` is the generator's own, each step hands back the
/// banked state after that step (compute included), `decode` and `log_prob` are the generator's.
/// A trajectory that is not the banked one (forked, re-masked, another seed) is an error, never
/// a silently different image.
pub struct BankGenerator<'g> {
    inner: &'g dyn Generator,
    index: Arc<Index>,
}

impl<'g> BankGenerator<'g> {
    /// Serves bank `dir` (checked beforehand with [`super::check`]) for `jobs`, the first `n`
    /// candidates of each.
    pub fn new(inner: &'g dyn Generator, dir: &Path, jobs: &[Job], n: usize) -> Self {
        let seeds = jobs
            .iter()
            .flat_map(|j| {
                let prompt: Arc<str> = j.metadata.prompt.as_str().into();
                (0..n).map(move |c| {
                    (
                        j.candidate_seed(c),
                        (j.prompt_index, j.image_index, c, prompt.clone()),
                    )
                })
            })
            .collect();
        BankGenerator {
            inner,
            index: Arc::new(Index {
                dir: dir.to_path_buf(),
                n,
                seeds,
                loaded: Mutex::new(Loaded {
                    jobs: HashMap::new(),
                    order: VecDeque::new(),
                }),
                objects: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The evaluation detector `inner`, answering from the bank for banked final images.
    pub fn detector<'d>(&self, inner: &'d dyn Detector) -> CachedDetector<'d> {
        CachedDetector {
            inner,
            index: self.index.clone(),
        }
    }

    /// Moves `t` to banked state `to` (of its own candidate), after checking that `t` is the
    /// banked state it claims to be.
    fn advance(&self, t: &mut Trajectory, to_end: bool) -> Result<(), ModelFault> {
        if t.done() {
            return Ok(());
        }
        let (job, c) = self.index.states(t.seed)?;
        let states = &job.candidates[c].states;
        let here = states
            .get(t.step)
            .filter(|s| s.step == t.step && s.tokens == t.tokens && s.prediction == t.prediction);
        if here.is_none() {
            return Err(ModelFault::Failed(format!(
                "candidate seed {} at step {} is not the banked state (it was changed outside the \
                 generator): bank {}",
                t.seed,
                t.step,
                self.index.dir.display()
            )));
        }
        let prompt = std::mem::take(&mut t.prompt);
        *t = match (to_end, &job.candidates[c].end) {
            (false, _) => states[(t.step + 1).min(states.len() - 1)].clone(),
            (true, _) if self.inner.run_to_end_is_stepping() => states[states.len() - 1].clone(),
            (true, Some(end)) if t.step == 0 => end.clone(),
            // Finishing a partly stepped path in one pass: only the generator knows what that
            // pass charges, so it runs; its image must be the banked one.
            (true, _) => {
                let mut live = std::slice::from_mut(t).to_vec();
                live[0].prompt.clone_from(&prompt);
                self.inner.run_to_end(&mut live)?;
                let last = &states[states.len() - 1];
                if (&live[0].tokens, &live[0].prediction) != (&last.tokens, &last.prediction) {
                    return Err(ModelFault::Failed(format!(
                        "candidate seed {}: the generator finished it differently from the bank",
                        t.seed
                    )));
                }
                live.remove(0)
            }
        };
        t.prompt = prompt;
        Ok(())
    }
}

impl Generator for BankGenerator<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn grid(&self) -> (usize, usize) {
        self.inner.grid()
    }
    fn default_steps(&self) -> usize {
        self.inner.default_steps()
    }
    fn concurrent(&self) -> bool {
        self.inner.concurrent()
    }
    fn run_to_end_is_stepping(&self) -> bool {
        self.inner.run_to_end_is_stepping()
    }
    fn start(&self, prompt: &str, seed: u64, steps: usize) -> Trajectory {
        self.inner.start(prompt, seed, steps)
    }
    fn step(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        batch.iter_mut().try_for_each(|t| self.advance(t, false))
    }
    fn run_to_end(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        batch.iter_mut().try_for_each(|t| self.advance(t, true))
    }
    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, ModelFault> {
        self.inner.decode(batch)
    }
    fn log_prob(&self, prompt: &str, tokens: &[u32], seed: u64) -> Result<f64, ModelFault> {
        self.inner.log_prob(prompt, tokens, seed)
    }
}

/// The evaluation detector with the bank's answers for the final images it has seen: the same
/// outputs it gave when the bank was made, without running it again. Other images (previews,
/// anything not banked) go to the detector.
pub struct CachedDetector<'d> {
    inner: &'d dyn Detector,
    index: Arc<Index>,
}

impl Detector for CachedDetector<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn input_size(&self) -> u32 {
        self.inner.input_size()
    }
    fn detect(&self, images: &[RgbImage]) -> Result<Vec<Vec<DetectedObject>>, ModelFault> {
        let mut out: Vec<Option<Vec<DetectedObject>>> = {
            let known = self.index.objects.lock().expect("bank cache");
            images
                .iter()
                .map(|img| known.get(&super::codec::image_hash(img)).cloned())
                .collect()
        };
        let todo: Vec<usize> = (0..images.len()).filter(|&i| out[i].is_none()).collect();
        if !todo.is_empty() {
            let batch: Vec<RgbImage> = todo.iter().map(|&i| images[i].clone()).collect();
            for (i, objects) in todo.into_iter().zip(self.inner.detect(&batch)?) {
                out[i] = Some(objects);
            }
        }
        Ok(out.into_iter().map(|o| o.unwrap_or_default()).collect())
    }
}

/// A detector that remembers what it returned for each image (by hash), so that a bank can keep
/// the outputs its replays will be answered with.
pub struct RecordingDetector<'d> {
    pub inner: &'d dyn Detector,
    pub seen: Mutex<Vec<(u128, Vec<DetectedObject>)>>,
}

impl Detector for RecordingDetector<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn input_size(&self) -> u32 {
        self.inner.input_size()
    }
    fn detect(&self, images: &[RgbImage]) -> Result<Vec<Vec<DetectedObject>>, ModelFault> {
        let out = self.inner.detect(images)?;
        let mut seen = self.seen.lock().expect("recording detector");
        for (img, objects) in images.iter().zip(&out) {
            seen.push((super::codec::image_hash(img), objects.clone()));
        }
        Ok(out)
    }
}
