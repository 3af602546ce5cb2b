//! Where a run's time goes (`evalcot run --profile`): wall time per phase, summed over the
//! threads that spent it. Off unless [`enable`]d, and then a span costs two clock reads and two
//! relaxed atomic adds, so the instrumented code paths stay in place for every run.
//!
//! Phases nest: `generator.step` contains `generator.step.forward` and `generator.step.draw`,
//! and `judge` contains `judge.forward`. For the burn generator, forward is the inputs, the
//! network, guidance and whatever comes back to the host: with `--draws host` every masked
//! token's log-probabilities (the host then draws them under `draw`), with `--draws device` the
//! drawn codes (the draw itself happens in forward, and `draw` is only confidences and
//! re-masking). On a GPU the network runs lazily, so its time lands where the host waits for
//! those numbers. A forward is timed in pieces (the network, then each slice of rows), so its
//! call count is one per piece. Models behind the traits are timed by [`Timed`] wrappers, so
//! external workers are profiled the same way.

use crate::detector::{DetectedObject, Detector};
use crate::generator::{Generator, Trajectory};
use crate::judge::{Judge, JudgeRequest, Verdict};
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// A timed phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// `Generator::step` and `run_to_end`, all of it.
    Step,
    /// Inside a step: inputs, network, guidance and what comes back to the host.
    Forward,
    /// Inside a step: the host's part of the draws, confidences and re-masking.
    Draw,
    /// `Generator::decode`: tokens to images.
    Decode,
    /// `Generator::log_prob`.
    LogProb,
    /// `Judge::judge`, all of it.
    Judge,
    /// Inside a judge call: the network's forward and read-back.
    JudgeForward,
    /// `Detector::detect`.
    Detect,
}

const PHASES: [Phase; 8] = [
    Phase::Step,
    Phase::Forward,
    Phase::Draw,
    Phase::Decode,
    Phase::LogProb,
    Phase::Judge,
    Phase::JudgeForward,
    Phase::Detect,
];

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Step => "generator.step",
            Phase::Forward => "generator.step.forward",
            Phase::Draw => "generator.step.draw",
            Phase::Decode => "generator.decode",
            Phase::LogProb => "generator.log_prob",
            Phase::Judge => "judge",
            Phase::JudgeForward => "judge.forward",
            Phase::Detect => "detector",
        }
    }

    /// Whether the phase is part of another (its time is already counted there).
    fn nested(self) -> bool {
        matches!(self, Phase::Forward | Phase::Draw | Phase::JudgeForward)
    }

    /// Its slot in the counters: `PHASES` lists the variants in declaration order.
    fn index(self) -> usize {
        self as usize
    }
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static NANOS: [AtomicU64; PHASES.len()] = [const { AtomicU64::new(0) }; PHASES.len()];
static CALLS: [AtomicU64; PHASES.len()] = [const { AtomicU64::new(0) }; PHASES.len()];

/// Turns timing on for the rest of the process and clears what was counted.
pub fn enable() {
    for (n, c) in NANOS.iter().zip(&CALLS) {
        n.store(0, Ordering::Relaxed);
        c.store(0, Ordering::Relaxed);
    }
    ENABLED.store(true, Ordering::Relaxed);
}

pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Adds the time until it is dropped to `phase` (nothing when profiling is off).
#[must_use = "a span times until it is dropped"]
pub struct Span {
    phase: Phase,
    start: Option<Instant>,
}

pub fn span(phase: Phase) -> Span {
    Span {
        phase,
        start: enabled().then(Instant::now),
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if let Some(start) = self.start {
            let i = self.phase.index();
            let nanos = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            NANOS[i].fetch_add(nanos, Ordering::Relaxed);
            CALLS[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One phase's totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhaseTime {
    pub phase: String,
    /// Wall seconds summed over threads.
    pub seconds: f64,
    pub calls: u64,
}

/// What a profiled run writes as `profile.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Wall seconds of the timed part (generation, or generation and scoring).
    pub wall_seconds: f64,
    /// Worker threads that shared the work: phase seconds add up to at most
    /// `wall_seconds × threads`.
    pub threads: usize,
    pub phases: Vec<PhaseTime>,
}

impl Profile {
    /// The totals so far.
    pub fn snapshot(wall_seconds: f64, threads: usize) -> Profile {
        let phases = PHASES
            .iter()
            .map(|&p| PhaseTime {
                phase: p.name().to_string(),
                seconds: NANOS[p.index()].load(Ordering::Relaxed) as f64 * 1e-9,
                calls: CALLS[p.index()].load(Ordering::Relaxed),
            })
            .collect();
        Profile {
            wall_seconds,
            threads,
            phases,
        }
    }

    /// The profiles of the shards of one run, as one: phase times and calls add up, the wall
    /// time is the longest shard's and the threads are all of them (shards run side by side).
    pub fn merge(parts: &[Profile]) -> Profile {
        let mut phases: Vec<PhaseTime> = Vec::new();
        for p in parts.iter().flat_map(|part| &part.phases) {
            match phases.iter_mut().find(|q| q.phase == p.phase) {
                Some(q) => {
                    q.seconds += p.seconds;
                    q.calls += p.calls;
                }
                None => phases.push(p.clone()),
            }
        }
        Profile {
            wall_seconds: parts.iter().map(|p| p.wall_seconds).fold(0.0, f64::max),
            threads: parts.iter().map(|p| p.threads).sum(),
            phases,
        }
    }

    /// A plain-text table: seconds, share of the threads' wall time, calls, milliseconds per call.
    pub fn render(&self) -> String {
        let budget = (self.wall_seconds * self.threads.max(1) as f64).max(1e-9);
        let mut s = format!(
            "profile: {:.1} s wall × {} threads = {:.1} thread-seconds\n{:<24} {:>10} {:>7} {:>9} {:>10}\n",
            self.wall_seconds, self.threads, budget, "phase", "seconds", "share", "calls", "ms/call"
        );
        let mut outside = budget;
        for p in &self.phases {
            let nested = PHASES.iter().any(|q| q.name() == p.phase && q.nested());
            let indent = if nested { "  " } else { "" };
            if !nested {
                outside -= p.seconds;
            }
            let per_call = if p.calls == 0 {
                0.0
            } else {
                1e3 * p.seconds / p.calls as f64
            };
            s.push_str(&format!(
                "{:<24} {:>10.2} {:>6.1}% {:>9} {:>10.3}\n",
                format!("{indent}{}", p.phase),
                p.seconds,
                100.0 * p.seconds / budget,
                p.calls,
                per_call
            ));
        }
        s.push_str(&format!(
            "{:<24} {:>10.2} {:>6.1}%   (strategy logic, writing images, threads waiting)\n",
            "outside the models",
            outside,
            100.0 * outside / budget
        ));
        s
    }
}

/// A model behind one of the traits, with every call timed (see the module's phases).
pub struct Timed<'a, M: ?Sized>(pub &'a M);

impl<G: Generator + ?Sized> Generator for Timed<'_, G> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn grid(&self) -> (usize, usize) {
        self.0.grid()
    }
    fn default_steps(&self) -> usize {
        self.0.default_steps()
    }
    fn concurrent(&self) -> bool {
        self.0.concurrent()
    }
    fn start(&self, prompt: &str, seed: u64, steps: usize) -> Trajectory {
        self.0.start(prompt, seed, steps)
    }
    fn step(&self, batch: &mut [Trajectory]) -> Result<(), crate::error::ModelFault> {
        let _t = span(Phase::Step);
        self.0.step(batch)
    }
    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, crate::error::ModelFault> {
        let _t = span(Phase::Decode);
        self.0.decode(batch)
    }
    fn log_prob(
        &self,
        prompt: &str,
        tokens: &[u32],
        seed: u64,
    ) -> Result<f64, crate::error::ModelFault> {
        let _t = span(Phase::LogProb);
        self.0.log_prob(prompt, tokens, seed)
    }
    fn run_to_end(&self, batch: &mut [Trajectory]) -> Result<(), crate::error::ModelFault> {
        let _t = span(Phase::Step);
        self.0.run_to_end(batch)
    }
    fn run_to_end_is_stepping(&self) -> bool {
        self.0.run_to_end_is_stepping()
    }
}

impl<J: Judge + ?Sized> Judge for Timed<'_, J> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn concurrent(&self) -> bool {
        self.0.concurrent()
    }
    fn judge(
        &self,
        requests: &[JudgeRequest<'_>],
    ) -> Result<Vec<Verdict>, crate::error::ModelFault> {
        let _t = span(Phase::Judge);
        self.0.judge(requests)
    }
}

impl<D: Detector + ?Sized> Detector for Timed<'_, D> {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn input_size(&self) -> u32 {
        self.0.input_size()
    }
    fn detect(
        &self,
        images: &[RgbImage],
    ) -> Result<Vec<Vec<DetectedObject>>, crate::error::ModelFault> {
        let _t = span(Phase::Detect);
        self.0.detect(images)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit;

    #[test]
    fn every_phase_has_its_own_counter_slot() {
        for (i, p) in PHASES.iter().enumerate() {
            assert_eq!(p.index(), i, "{}", p.name());
        }
    }

    #[test]
    fn timed_models_give_the_same_results_and_count_their_calls() {
        let generator = testkit::DummyGenerator::default();
        let steps = generator.default_steps();
        let start = |g: &dyn Generator| -> Vec<Trajectory> {
            (0..3)
                .map(|i| g.start("a photo of a dog", 7 + i, steps))
                .collect()
        };
        let mut plain = start(&generator);
        generator.run_to_end(&mut plain).unwrap();
        enable();
        let timed = Timed(&generator as &dyn Generator);
        let mut through = start(&timed);
        timed.run_to_end(&mut through).unwrap();
        let images = timed.decode(&through).unwrap();
        assert_eq!(
            through.iter().map(|t| &t.tokens).collect::<Vec<_>>(),
            plain.iter().map(|t| &t.tokens).collect::<Vec<_>>()
        );
        assert_eq!(images, generator.decode(&plain).unwrap());
        let tokens = &through[0].tokens;
        assert_eq!(
            timed.log_prob("a photo of a dog", tokens, 3).unwrap(),
            generator.log_prob("a photo of a dog", tokens, 3).unwrap()
        );
        let detector = testkit::DummyDetector;
        let found = Timed(&detector as &dyn Detector).detect(&images).unwrap();
        assert_eq!(found.len(), images.len());
        let judge = testkit::DummyJudge { sharpness: 0.9 };
        let suite = crate::Suite::official();
        let request = JudgeRequest {
            task: crate::judge::JudgeTask::Final,
            image: &images[0],
            metadata: &suite.prompts[0].metadata,
            step: None,
        };
        let timed_judge = Timed(&judge as &dyn Judge);
        assert_eq!(
            timed_judge.judge(std::slice::from_ref(&request)).unwrap()[0].p_yes,
            judge.judge(std::slice::from_ref(&request)).unwrap()[0].p_yes
        );
        let p = Profile::snapshot(1.0, 2);
        let calls = |name: &str| p.phases.iter().find(|q| q.phase == name).unwrap().calls;
        let twice = Profile::merge(&[p.clone(), p.clone()]);
        assert_eq!(twice.threads, 4);
        assert_eq!(twice.wall_seconds, 1.0);
        for (a, b) in p.phases.iter().zip(&twice.phases) {
            assert_eq!((a.phase.as_str(), 2 * a.calls), (b.phase.as_str(), b.calls));
        }
        // Only this test enables profiling; the counts are at least this test's calls.
        for name in [
            "generator.step",
            "generator.decode",
            "generator.log_prob",
            "detector",
            "judge",
        ] {
            assert!(calls(name) >= 1, "{name}");
        }
        // The dummies have no inner phases: nothing nested was counted.
        assert_eq!(calls("generator.step.forward"), 0);
        let table = p.render();
        assert!(table.contains("  generator.step.forward"), "{table}");
        assert!(table.contains("outside the models"), "{table}");
    }
}
