//! Strategies and the run loop on the test kit's dummy generator and detector.

use harness::error::ModelFault;
use harness::generator::Generator;
use harness::run::runner::{self, RunPlan};
use harness::testkit::{DummyDetector, DummyGenerator};
use harness::{RuleConfig, Suite};
use strategies::{by_name, Context, Job};

fn jobs(n: usize) -> Vec<Job> {
    let suite = Suite::official();
    (0..n)
        .map(|i| Job {
            prompt_index: i,
            image_index: 0,
            metadata: suite.prompts[i].metadata.clone(),
            seed: 1000 + i as u64,
        })
        .collect()
}

fn context<'a>(g: &'a DummyGenerator, n: usize) -> Context<'a> {
    Context {
        generator: g,
        steps: g.default_steps(),
        n,
        detector: Some(&DummyDetector),
        rules: RuleConfig::default(),
        judge: None,
        decision: harness::run::Decision::Threshold,
        keep_best: None,
    }
}

fn correct(images: &[image::RgbImage], jobs: &[Job]) -> usize {
    let metas: Vec<_> = jobs.iter().map(|j| &j.metadata).collect();
    harness::scoring::judge_images(&DummyDetector, images, &metas, &RuleConfig::default())
        .unwrap()
        .iter()
        .filter(|v| v.as_ref().unwrap().correct)
        .count()
}

#[test]
fn oracle_beats_baseline_and_counts_compute() {
    let g = DummyGenerator::default();
    // Single-object prompts: the dummy draws the prompt's class with probability 0.1 per cell.
    let js = jobs(40);
    let base = by_name("baseline")
        .unwrap()
        .run(&context(&g, 8), &js)
        .unwrap();
    let oracle = by_name("oracle")
        .unwrap()
        .run(&context(&g, 8), &js)
        .unwrap();
    let b: Vec<_> = base.iter().map(|o| o.image.clone()).collect();
    let o: Vec<_> = oracle.iter().map(|o| o.image.clone()).collect();
    let (cb, co) = (correct(&b, &js), correct(&o, &js));
    assert!(co > cb + 5, "oracle {co} vs baseline {cb} of 40");
    assert_eq!(base[0].compute.forwards, 8); // 4 steps × CFG pair
    assert_eq!(oracle[0].compute.forwards, 64);
    assert_eq!(oracle[0].compute.judge_calls, 8);
    // Baseline is the oracle's first candidate whenever that one is correct.
    for (i, o) in oracle.iter().enumerate() {
        if o.trace["chosen"] == 0 {
            assert_eq!(o.image, base[i].image);
        }
    }
}

#[test]
fn results_do_not_depend_on_batching() {
    let g = DummyGenerator::default();
    let js = jobs(6);
    let s = by_name("oracle").unwrap();
    let all = s.run(&context(&g, 5), &js).unwrap();
    for (i, j) in js.iter().enumerate() {
        let one = s.run(&context(&g, 5), std::slice::from_ref(j)).unwrap();
        assert_eq!(one[0].image, all[i].image);
        assert_eq!(one[0].trace, all[i].trace);
    }
}

#[test]
fn an_interrupted_run_resumes_to_the_same_results() {
    let g = DummyGenerator::default();
    let suite = Suite::official();
    let prompts: Vec<_> = suite.prompts[..5].to_vec();
    let strategy = by_name("oracle").unwrap();
    let run = |out: &std::path::Path, stop_after: Option<usize>| {
        let plan = RunPlan {
            out,
            prompts: &prompts,
            images_per_prompt: 2,
            seed: 7,
            batch_jobs: 3,
            resolved_config: "strategy: oracle\n",
            shard: None,
            code_version: "test",
        };
        let mut batches = 0;
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runner::generate(&plan, strategy.as_ref(), &context(&g, 4), &mut |_, _| {
                batches += 1;
                if Some(batches) == stop_after {
                    panic!("killed");
                }
            })
        }));
        if stop_after.is_none() {
            r.unwrap().unwrap();
        }
    };
    let full = tempfile::tempdir().unwrap();
    run(full.path(), None);
    let cut = tempfile::tempdir().unwrap();
    run(cut.path(), Some(3)); // killed after two of four batches
                              // A torn record line from the kill is dropped on resume.
    let gen = cut.path().join("generation.jsonl");
    let mut text = std::fs::read_to_string(&gen).unwrap();
    text.push_str("{\"prompt_index\": 4, \"ima");
    std::fs::write(&gen, text).unwrap();
    run(cut.path(), None);
    let rules = RuleConfig::default();
    let (a, ca) = runner::score(full.path(), &DummyDetector, &rules, 4, &|_| {}).unwrap();
    let (b, cb) = runner::score(cut.path(), &DummyDetector, &rules, 4, &|_| {}).unwrap();
    assert_eq!(a.len(), 10);
    let strip = |rs: Vec<harness::results::ResultRecord>, root: &std::path::Path| {
        rs.into_iter()
            .map(|mut r| {
                r.filename = r.filename.replace(&root.display().to_string(), "");
                serde_json::to_string(&r).unwrap()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(strip(a, full.path()), strip(b, cut.path()));
    assert_eq!(ca, cb);
    assert_eq!(ca.forwards, 10 * 4 * 8);
    // A folder of another configuration is refused.
    let plan = RunPlan {
        out: full.path(),
        prompts: &prompts,
        images_per_prompt: 2,
        seed: 8,
        batch_jobs: 3,
        resolved_config: "strategy: oracle\nseed: 8\n",
        shard: None,
        code_version: "test",
    };
    let err = runner::generate(&plan, strategy.as_ref(), &context(&g, 4), &mut |_, _| {})
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.yaml") && err.contains("another configuration"),
        "{err}"
    );
}

fn judged<'a>(g: &'a DummyGenerator, j: &'a dyn harness::judge::Judge, n: usize) -> Context<'a> {
    Context {
        judge: Some(j),
        ..context(g, n)
    }
}

#[test]
fn verifiers_improve_on_the_baseline_and_account_for_compute() {
    let g = DummyGenerator::default();
    let judge = harness::testkit::DummyJudge { sharpness: 0.9 };
    let js = jobs(40);
    let score = |name: &str| {
        let outs = by_name(name)
            .unwrap()
            .run(&judged(&g, &judge, 8), &js)
            .unwrap();
        let images: Vec<_> = outs.iter().map(|o| o.image.clone()).collect();
        (correct(&images, &js), outs)
    };
    let (base, _) = score("baseline");
    let (orm, orm_out) = score("orm");
    let (oracle, _) = score("oracle");
    let (prm, prm_out) = score("prm");
    let (parm, parm_out) = score("parm");
    let (plus, plus_out) = score("parm++");
    // A judge that agrees with the evaluator makes ORM the oracle.
    assert_eq!(orm, oracle);
    assert!(orm > base + 5, "orm {orm} vs baseline {base}");
    assert!(prm >= base, "prm {prm} vs baseline {base}");
    assert!(parm > base, "parm {parm} vs baseline {base}");
    assert!(plus >= parm, "parm++ {plus} vs parm {parm}");
    assert_eq!(orm_out[0].compute.forwards, 8 * 8);
    // ORM records every candidate's GenEval verdict (for best-of-N′ curves); the chosen one's is
    // the verdict of the image it returned.
    for (o, job) in orm_out.iter().zip(&js) {
        let verdicts: Vec<bool> =
            serde_json::from_value(o.trace["candidate_correct"].clone()).unwrap();
        let chosen = o.trace["chosen"].as_u64().unwrap() as usize;
        assert_eq!(verdicts.len(), 8);
        assert_eq!(
            verdicts[chosen],
            correct(std::slice::from_ref(&o.image), std::slice::from_ref(job)) == 1
        );
    }
    assert_eq!(prm_out[0].compute.forwards, 8 * 8); // N branches × 4 steps × CFG pair
    assert_eq!(prm_out[0].compute.judge_calls, 8 * 4);
    // PARM truncates paths judged hopeless: fewer forwards than N full candidates overall.
    let parm_fwd: u64 = parm_out.iter().map(|o| o.compute.forwards).sum();
    let truncated: u64 = parm_out.iter().map(|o| o.compute.truncated).sum();
    assert!(
        truncated > 0 && parm_fwd < 40 * 8 * 8,
        "{parm_fwd} forwards, {truncated} truncated"
    );
    // PARM++ records its reflection rounds.
    assert!(plus_out
        .iter()
        .any(|o| o.trace.as_array().is_some_and(|a| a.len() > 1)));
}

#[test]
fn parm_relative_to_the_best_paths_keeps_a_share_of_each_image_and_never_falls_back() {
    let g = DummyGenerator::default();
    let judge = harness::testkit::DummyJudge { sharpness: 0.9 };
    let js = jobs(24);
    for (share, keep) in [(0.25, 2u64), (0.3, 3), (0.01, 1), (1.0, 8)] {
        let cx = Context {
            keep_best: Some(share),
            ..judged(&g, &judge, 8)
        };
        let outs = by_name("parm").unwrap().run(&cx, &js).unwrap();
        for o in &outs {
            let kept: Vec<bool> = serde_json::from_value(o.trace["kept"].clone()).unwrap();
            // Every path of an image is assessed at the last step at the latest; the kept
            // ones are the best `keep` by potential, and one always survives.
            assert_eq!(
                kept.iter().filter(|&&k| k).count() as u64,
                keep,
                "{}",
                o.trace
            );
            assert_eq!(o.compute.truncated, 8 - keep);
            assert_eq!(o.trace["fallback_lowest_p_no"], false);
        }
    }
}

/// [`harness::testkit::DummyJudge`], except that every answer about a prompt containing `word`
/// is NaN (P(yes) and each clause's P(pass)), as a judge with broken weights would give.
struct NanJudge {
    inner: harness::testkit::DummyJudge,
    word: &'static str,
}

impl harness::judge::Judge for NanJudge {
    fn name(&self) -> &str {
        "nan-judge"
    }
    fn judge(
        &self,
        requests: &[harness::judge::JudgeRequest<'_>],
    ) -> Result<Vec<harness::judge::Verdict>, ModelFault> {
        let mut verdicts = self.inner.judge(requests)?;
        for (r, v) in requests.iter().zip(&mut verdicts) {
            if r.metadata.prompt.contains(self.word) {
                v.p_yes = f64::NAN;
                for c in &mut v.clauses {
                    c.p_pass = f64::NAN;
                }
            }
        }
        Ok(verdicts)
    }
}

/// [`DummyGenerator`], except that a batch holding a prompt containing `word` fails as the burn
/// generator does on a NaN log-probability.
struct NanGenerator {
    inner: DummyGenerator,
    word: &'static str,
}

impl Generator for NanGenerator {
    fn name(&self) -> &str {
        "nan-gen"
    }
    fn grid(&self) -> (usize, usize) {
        self.inner.grid()
    }
    fn default_steps(&self) -> usize {
        self.inner.default_steps()
    }
    fn step(&self, batch: &mut [harness::generator::Trajectory]) -> Result<(), ModelFault> {
        if batch.iter().any(|t| t.prompt.contains(self.word)) {
            return Err(ModelFault::non_finite(
                "generator nan-gen produced a non-finite log-probability (NaN)",
            ));
        }
        self.inner.step(batch)
    }
    fn decode(
        &self,
        batch: &[harness::generator::Trajectory],
    ) -> Result<Vec<image::RgbImage>, ModelFault> {
        self.inner.decode(batch)
    }
    fn log_prob(&self, prompt: &str, tokens: &[u32], seed: u64) -> Result<f64, ModelFault> {
        self.inner.log_prob(prompt, tokens, seed)
    }
}

/// Runs `strategy` on the first five prompts (2 images each, batches of 4 jobs) into `out` and
/// scores it; returns the result lines with `out` stripped and how many images were generated.
fn run_and_score(
    out: &std::path::Path,
    strategy: &str,
    cx: &Context<'_>,
) -> (Vec<serde_json::Value>, usize) {
    let prompts: Vec<_> = Suite::official().prompts[..5].to_vec();
    let plan = RunPlan {
        out,
        prompts: &prompts,
        images_per_prompt: 2,
        seed: 3,
        batch_jobs: 4,
        resolved_config: "x\n",
        shard: None,
        code_version: "test",
    };
    let s = by_name(strategy).unwrap();
    let (generated, _) = runner::generate(&plan, s.as_ref(), cx, &mut |_, _| {}).unwrap();
    let (records, _) =
        runner::score(out, &DummyDetector, &RuleConfig::default(), 4, &|_| {}).unwrap();
    let root = out.display().to_string();
    let lines = records
        .into_iter()
        .map(|mut r| {
            r.filename = r.filename.replace(&root, "RUN");
            serde_json::to_value(&r).unwrap()
        })
        .collect();
    (lines, generated)
}

#[test]
fn a_nan_from_a_model_fails_only_its_image_with_a_reason_naming_model_and_input() {
    let g = DummyGenerator::default();
    let good = harness::testkit::DummyJudge { sharpness: 0.9 };
    let nan = NanJudge {
        inner: harness::testkit::DummyJudge { sharpness: 0.9 },
        word: "cow",
    };
    for strategy in ["orm", "prm", "parm", "parm++"] {
        let reference = tempfile::tempdir().unwrap();
        let (want, _) = run_and_score(reference.path(), strategy, &judged(&g, &good, 3));
        let dir = tempfile::tempdir().unwrap();
        let (got, generated) = run_and_score(dir.path(), strategy, &judged(&g, &nan, 3));
        assert_eq!((got.len(), generated), (10, 10), "{strategy}");
        for (w, r) in want.iter().zip(&got) {
            if r["prompt"] == "a photo of a cow" {
                let reason = r["reason"].as_str().unwrap();
                assert_eq!(r["correct"], false);
                assert_eq!(r["error"], r["reason"]);
                assert!(
                    reason.contains("judge nan-judge returned a non-finite")
                        && reason.contains("on prompt \"a photo of a cow\"")
                        && reason.starts_with("prompt 1 image ")
                        && reason.contains(&format!("strategy {strategy}")),
                    "{strategy}: {reason}"
                );
            } else {
                // The other images of the failed batches are exactly those of a clean run.
                assert_eq!(w, r, "{strategy}");
            }
        }
        // A failed image is final: rerunning generates nothing and changes nothing.
        let (again, generated) = run_and_score(dir.path(), strategy, &judged(&g, &nan, 3));
        assert_eq!((&again, generated), (&got, 0), "{strategy}");
    }
    // The generator's NaN fails its image the same way, for every strategy.
    let broken = NanGenerator {
        inner: DummyGenerator::default(),
        word: "clock",
    };
    let cx = Context {
        generator: &broken,
        ..judged(&g, &good, 3)
    };
    let dir = tempfile::tempdir().unwrap();
    let (got, _) = run_and_score(dir.path(), "baseline", &cx);
    let failed: Vec<_> = got.iter().filter(|r| r.get("error").is_some()).collect();
    assert_eq!(failed.len(), 2);
    for r in failed {
        assert_eq!(r["prompt"], "a photo of a clock");
        assert!(
            r["reason"].as_str().unwrap().contains(
                "(\"a photo of a clock\"): strategy baseline: generator nan-gen produced a non-finite"
            ),
            "{}",
            r["reason"]
        );
    }
    // Every image failing still gives a complete, scored run.
    let all = NanGenerator {
        inner: DummyGenerator::default(),
        word: "a photo",
    };
    let cx = Context {
        generator: &all,
        ..judged(&g, &good, 3)
    };
    let dir = tempfile::tempdir().unwrap();
    let (got, _) = run_and_score(dir.path(), "oracle", &cx);
    assert_eq!(got.len(), 10);
    assert!(got
        .iter()
        .all(|r| r["correct"] == false && r.get("error").is_some()));
}
