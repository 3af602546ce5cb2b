//! The step-wise generator interface. A generator refines an image over `T` steps (MaskGIT /
//! Show-o: masked image tokens filled in by confidence); strategies drive it one step at a time,
//! look at the decoded *full current prediction* after any step, fork candidates, re-open token
//! positions for self-correction, and ask for log-probabilities (DPO).
//!
//! Every random draw of a trajectory comes from its `seed` and the step index, never from batch
//! composition or thread order: the same `(seed, step)` gives the same tokens whichever batch the
//! trajectory is stepped in.

use crate::error::ModelFault;
use crate::rng::derive_seed;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A token position that is not decided yet.
pub const MASK: u32 = u32::MAX;

/// One candidate's generation state.
#[derive(Debug, Clone, PartialEq)]
pub struct Trajectory {
    /// The prompt text the generator is conditioned on.
    pub prompt: String,
    /// Source of every random draw of this candidate (by convention step `t` draws from
    /// `derive_seed(seed, [t])`; the autoregressive family draws per token position instead).
    pub seed: u64,
    /// Steps taken in the current schedule.
    pub step: usize,
    /// Steps in the current schedule.
    pub steps: usize,
    /// Committed tokens, [`MASK`] where still undecided (row-major over the token grid).
    pub tokens: Vec<u32>,
    /// The full current prediction (every position filled); empty before the first step.
    pub prediction: Vec<u32>,
    /// Undecided positions when the current schedule began (all of them at `start`, the
    /// re-opened ones after [`Trajectory::remask`]).
    pub schedule_masked: usize,
    /// Generator forward passes spent on this candidate so far (a CFG pair counts two).
    pub forwards: u64,
    /// A worker's own state of this candidate (evalcot-ext/2 `state`: a diffusion model's
    /// latents, say), opaque to evalcot and sent back with the next step; `None` for token
    /// generators. Shared, so that forks cost nothing until they step.
    pub state: Option<Arc<Vec<u8>>>,
    /// The image of the current state when the generator hands one back with each step (a
    /// diffusion model's decoded x0 prediction) or makes whole images (`generate`):
    /// [`Generator::decode`] returns it without asking again.
    pub preview: Option<Arc<RgbImage>>,
}

impl Trajectory {
    /// A fresh, fully masked trajectory over `len` token positions.
    pub fn new(prompt: &str, seed: u64, steps: usize, len: usize) -> Trajectory {
        Trajectory {
            prompt: prompt.to_string(),
            seed,
            step: 0,
            steps,
            tokens: vec![MASK; len],
            prediction: Vec::new(),
            schedule_masked: len,
            forwards: 0,
            state: None,
            preview: None,
        }
    }

    pub fn done(&self) -> bool {
        self.step >= self.steps
    }

    /// Undecided positions.
    pub fn masked(&self) -> usize {
        self.tokens.iter().filter(|&&t| t == MASK).count()
    }

    /// The seed of this trajectory's draws at its current step.
    pub fn step_seed(&self) -> u64 {
        derive_seed(self.seed, &[self.step as u64])
    }

    /// A branch of this trajectory with its own randomness from here on (PRM expands the kept
    /// state into N branches; branch `key` of the same state is always the same branch).
    pub fn fork(&self, key: u64) -> Trajectory {
        let mut t = self.clone();
        t.seed = derive_seed(self.seed, &[u64::MAX, key]);
        t
    }

    /// Re-opens `positions` of a finished (or partial) trajectory and starts a new schedule of
    /// `steps` steps over them: self-correction regenerates a blamed region, conditioned on the
    /// rest of the image. Positions out of range are an error.
    pub fn remask(
        &self,
        positions: &[usize],
        steps: usize,
        seed: u64,
    ) -> Result<Trajectory, String> {
        let mut t = self.clone();
        if t.prediction.len() == t.tokens.len() {
            // Commit the current prediction first: re-opening applies to a complete image.
            t.tokens.clone_from(&t.prediction);
        }
        for &p in positions {
            if p >= t.tokens.len() {
                return Err(format!(
                    "re-mask position {p} is outside the {}-token grid",
                    t.tokens.len()
                ));
            }
            t.tokens[p] = MASK;
        }
        t.seed = seed;
        t.step = 0;
        t.steps = steps.max(1);
        t.schedule_masked = t.masked();
        if t.schedule_masked == 0 {
            t.step = t.steps;
        }
        Ok(t)
    }
}

/// How many positions stay masked after step `t` (0-based) of `steps`, when the schedule began
/// with `n0` masked positions and `unknown` are masked now: Show-o's cosine schedule
/// `floor(n0·cos(π/2·(t+1)/T))`, clamped to `[1, unknown−1]` — except that the last step
/// commits everything.
pub fn cosine_mask_len(n0: usize, t: usize, steps: usize, unknown: usize) -> usize {
    if t + 1 >= steps || unknown <= 1 {
        return 0;
    }
    let ratio = (std::f64::consts::FRAC_PI_2 * (t + 1) as f64 / steps as f64).cos();
    let len = (n0 as f64 * ratio).floor() as usize;
    len.clamp(1, unknown - 1)
}

/// The re-masking temperature at step `t`: `τ0·∏_{k<t}(1−(k+1)/T)`, compounding as in Show-o but
/// computed from the step index, so that every candidate starts again from `τ0` (the paper's code
/// carries τ over from one candidate to the next, which makes candidates 2…N re-mask
/// deterministically).
pub fn remask_temperature(tau0: f64, t: usize, steps: usize) -> f64 {
    (0..t).fold(tau0, |tau, k| tau * (1.0 - (k + 1) as f64 / steps as f64))
}

/// Where a burn generator's step draws its tokens (run configuration `draws`). `host`: the guided log-probabilities of every masked token
/// (8,192 per token) come back to the host, which draws by inverse CDF in f64 — the reference,
/// and what every recorded run used. `device`: guidance, the cumulative sum and the draw run
/// where the network does, and only each token's code and log-probability come back; the
/// uniforms and the Gumbel noise are still the host's, drawn from the same per-step streams.
/// An f32 cumulative sum over 8,192 codes puts a bin edge up to about 1e-5 away from where the
/// f64 one does (a GPU's tree-ordered scan closer), so a draw whose uniform falls in that gap
/// picks the neighbouring code: rare where the model is sure, but not bit-identical, which is
/// why the choice is recorded in a run's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Draws {
    #[default]
    Host,
    Device,
}

impl std::str::FromStr for Draws {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(Draws::Host),
            "device" => Ok(Draws::Device),
            other => Err(format!("draws {other:?}: expected host or device")),
        }
    }
}

/// A step-wise image generator. Implementations: the burn masked-token generator (`models`),
/// and external processes (any model that can start, step and decode).
pub trait Generator: Send + Sync {
    /// Short name recorded in results (`base`, `dpo`, …).
    fn name(&self) -> &str;
    /// Token grid `(rows, cols)`; trajectories hold `rows·cols` tokens.
    fn grid(&self) -> (usize, usize);
    /// Steps of a default schedule.
    fn default_steps(&self) -> usize;
    /// Whether batches may run on several threads at once. In-process models gain a core each;
    /// a model behind one worker process answers one request at a time anyway, and its first
    /// failure must reach the user unmixed with the failures of batches queued behind it.
    fn concurrent(&self) -> bool {
        true
    }
    /// A fresh trajectory for `prompt`.
    fn start(&self, prompt: &str, seed: u64, steps: usize) -> Trajectory {
        let (r, c) = self.grid();
        Trajectory::new(prompt, seed, steps, r * c)
    }
    /// Advances every unfinished trajectory of `batch` by one step (finished ones are left
    /// alone). Batching is only for speed: results equal stepping each alone.
    fn step(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault>;
    /// Decodes each trajectory's full current prediction (its committed tokens where it has no
    /// prediction yet).
    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, ModelFault>;
    /// Conditional log-probability of complete `tokens` given `prompt`, summed over positions
    /// hidden by a random cosine-schedule mask drawn from `seed` (DPO's sequence score).
    fn log_prob(&self, prompt: &str, tokens: &[u32], seed: u64) -> Result<f64, ModelFault>;

    /// Whether [`Generator::run_to_end`] is stepping to the end, compute included (the
    /// default). A generator that finishes in a cheaper pass says `false`, so that a bank also
    /// records what that pass charges.
    fn run_to_end_is_stepping(&self) -> bool {
        true
    }

    /// Whether trajectories carry the generator's own opaque state (and previews) instead of
    /// tokens: such candidates cannot be banked (a bank stores token states) or re-masked.
    fn opaque_state(&self) -> bool {
        false
    }

    /// Runs `batch` to the end of its schedules.
    fn run_to_end(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        while batch.iter().any(|t| !t.done()) {
            self.step(batch)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_schedule_matches_show_o_and_ends_committed() {
        // 64 tokens over 18 steps: strictly fewer masked after each step, none after the last.
        let mut unknown = 64;
        let mut seen = Vec::new();
        for t in 0..18 {
            let len = cosine_mask_len(64, t, 18, unknown);
            assert!(len < unknown, "step {t}: {len} ≥ {unknown}");
            seen.push(len);
            unknown = len;
        }
        assert_eq!(seen[0], 63); // floor(64·cos(π/36)) = 63
        assert_eq!(
            seen[8],
            (64.0 * (std::f64::consts::FRAC_PI_2 * 9.0 / 18.0).cos()) as usize
        );
        assert_eq!(*seen.last().unwrap(), 0);
    }

    #[test]
    fn temperature_restarts_for_every_candidate() {
        assert_eq!(remask_temperature(1.0, 0, 18), 1.0);
        let t1 = remask_temperature(1.0, 1, 18);
        assert!((t1 - (1.0 - 1.0 / 18.0)).abs() < 1e-12);
        assert_eq!(remask_temperature(1.0, 18, 18), 0.0);
    }

    #[test]
    fn remask_reopens_positions_and_rejects_bad_ones() {
        let mut t = Trajectory::new("a cat", 7, 4, 6);
        t.prediction = vec![1, 2, 3, 4, 5, 6];
        t.tokens = t.prediction.clone();
        t.step = 4;
        let r = t.remask(&[0, 5], 3, 9).unwrap();
        assert_eq!(r.tokens, vec![MASK, 2, 3, 4, 5, MASK]);
        assert_eq!((r.step, r.steps, r.schedule_masked, r.seed), (0, 3, 2, 9));
        assert!(!r.done());
        assert!(t.remask(&[6], 3, 9).unwrap_err().contains("outside"));
    }

    #[test]
    fn forks_differ_from_parent_and_each_other_but_repeat() {
        let t = Trajectory::new("a cat", 7, 4, 6);
        assert_ne!(t.fork(0).seed, t.seed);
        assert_ne!(t.fork(0).seed, t.fork(1).seed);
        assert_eq!(t.fork(3), t.fork(3));
    }
}
