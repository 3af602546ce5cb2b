//! Judge validation: accuracy and AUROC per task on held-out samples, and how often the judge's
//! final verdict agrees with the GenEval verdict (evaluation detector + rules) on generator
//! outputs of held-out (validation-split) training prompts.

use super::data::{self, JudgeSample};
use crate::store::ModelError;
use harness::detector::Detector;
use harness::generator::Generator;
use harness::judge::{Judge, JudgeRequest, JudgeTask};
use harness::rng::derive_seed;
use harness::{Metadata, RuleConfig};
use std::fmt::Write;

/// Accuracy at 0.5 and AUROC of scores against labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub n: usize,
    pub positives: usize,
    pub accuracy: f64,
    pub auroc: f64,
}

/// AUROC by the rank statistic (ties count one half); NaN when a class is absent.
pub fn scores(pairs: &[(f64, bool)]) -> Scores {
    let n = pairs.len();
    let pos = pairs.iter().filter(|p| p.1).count();
    let neg = n - pos;
    let correct = pairs.iter().filter(|(s, y)| (*s >= 0.5) == *y).count();
    let mut wins = 0.0;
    for (sp, _) in pairs.iter().filter(|p| p.1) {
        for (sn, _) in pairs.iter().filter(|p| !p.1) {
            wins += if sp > sn {
                1.0
            } else if sp == sn {
                0.5
            } else {
                0.0
            };
        }
    }
    Scores {
        n,
        positives: pos,
        accuracy: correct as f64 / n.max(1) as f64,
        auroc: if pos == 0 || neg == 0 {
            f64::NAN
        } else {
            wins / (pos * neg) as f64
        },
    }
}

/// Scores of `judge` on samples, per task.
pub fn per_task(
    judge: &dyn Judge,
    samples: &[JudgeSample],
) -> Result<Vec<(JudgeTask, Scores)>, String> {
    let mut out = Vec::new();
    for task in JudgeTask::ALL {
        let of_task: Vec<&JudgeSample> = samples.iter().filter(|s| s.task == task).collect();
        if of_task.is_empty() {
            continue;
        }
        let mut pairs = Vec::new();
        for chunk in of_task.chunks(64) {
            // Reflection samples ask about one clause: pose it as an image-level question on the
            // clause's own prompt, whose only include clause is that clause.
            let metas: Vec<Metadata> = chunk
                .iter()
                .map(|s| world::words::parse_prompt(&s.text).map_err(|e| e.to_string()))
                .collect::<Result<_, _>>()?;
            let requests: Vec<JudgeRequest<'_>> = chunk
                .iter()
                .zip(&metas)
                .map(|(s, m)| JudgeRequest {
                    task,
                    image: &s.image,
                    metadata: m,
                    step: None,
                })
                .collect();
            for (v, s) in judge.judge(&requests)?.into_iter().zip(chunk) {
                pairs.push((v.p_yes, s.label));
            }
        }
        out.push((task, scores(&pairs)));
    }
    Ok(out)
}

/// Held-out zero-shot-style samples (clean renders, matching or near misses) of validation
/// prompts.
pub fn clean_samples(
    prompts: &[Metadata],
    n: usize,
    seed: u64,
) -> Result<Vec<JudgeSample>, String> {
    let mut out = Vec::new();
    for i in 0..n {
        out.extend(data::zero_shot(prompts, seed, i)?);
    }
    Ok(out)
}

/// A generator sample of a held-out prompt with its GenEval verdict (evaluation detector +
/// rules): what [`agreement`] checks a judge against.
pub struct VerdictSample {
    pub metadata: Metadata,
    pub image: image::RgbImage,
    pub correct: bool,
}

/// `candidates` generator samples per prompt with their GenEval verdicts, drawn once and shared
/// by every judge under test. Prompts run one per core; every draw comes from (seed, prompt,
/// candidate), so the samples do not depend on the thread count.
pub fn verdict_samples(
    generator: &dyn Generator,
    detector: &dyn Detector,
    prompts: &[Metadata],
    candidates: usize,
    seed: u64,
) -> Result<Vec<VerdictSample>, String> {
    let indexed: Vec<(usize, &Metadata)> = prompts.iter().enumerate().collect();
    let width = if generator.concurrent() {
        rayon::current_num_threads()
    } else {
        1
    };
    let mut out = Vec::new();
    harness::waves::in_order(
        &indexed,
        width,
        |&(p, m)| -> Result<Vec<VerdictSample>, String> {
            let mut trajs: Vec<_> = (0..candidates)
                .map(|c| {
                    generator.start(
                        &m.prompt,
                        derive_seed(seed, &[p as u64, c as u64]),
                        generator.default_steps(),
                    )
                })
                .collect();
            generator.run_to_end(&mut trajs)?;
            let images = generator.decode(&trajs)?;
            let metas = vec![m; images.len()];
            let truth =
                harness::scoring::judge_images(detector, &images, &metas, &RuleConfig::default())?;
            Ok(images
                .into_iter()
                .zip(truth)
                .map(|(image, t)| VerdictSample {
                    metadata: m.clone(),
                    image,
                    correct: t.is_ok_and(|j| j.correct),
                })
                .collect())
        },
        |_, part| {
            out.extend(part?);
            Ok::<(), String>(())
        },
    )?;
    Ok(out)
}

/// Final-image agreement with GenEval: the judge's P(yes) ≥ 0.5 against each sample's verdict;
/// returns (scores, GenEval accuracy of the samples).
pub fn agreement(judge: &dyn Judge, samples: &[VerdictSample]) -> Result<(Scores, f64), String> {
    let mut pairs = Vec::new();
    for chunk in samples.chunks(64) {
        let requests: Vec<JudgeRequest<'_>> = chunk
            .iter()
            .map(|s| JudgeRequest {
                task: JudgeTask::Final,
                image: &s.image,
                metadata: &s.metadata,
                step: None,
            })
            .collect();
        for (v, s) in judge.judge(&requests)?.into_iter().zip(chunk) {
            pairs.push((v.p_yes, s.correct));
        }
    }
    let s = scores(&pairs);
    Ok((s, s.positives as f64 / s.n.max(1) as f64))
}

/// What `evalcot eval judge` validates: the judges (comma-separated names or folders) on held-out
/// prompts, the generator whose samples and trajectories they judge, the annotator that labels
/// those, and the evaluation detector for GenEval verdicts.
#[derive(Debug, Clone)]
pub struct JudgeValidation {
    pub judges: String,
    pub generator: String,
    pub annotator: std::path::PathBuf,
    pub detector: Option<std::path::PathBuf>,
    pub images: usize,
    pub prompts: usize,
    pub seed: u64,
    /// The report's path as the command line named it (for the "Command:" line).
    pub out: String,
}

/// The Markdown report of a judge validation (docs/judges.md).
pub fn validate(opts: &JudgeValidation) -> Result<String, ModelError> {
    let fail = ModelError::Failed;

    let det = crate::open::cpu_detector(opts.detector.as_deref())?;
    let generator = crate::open::cpu_generator(&opts.generator)?;
    // Held-out prompts: the validation split of the training prompts (never trained on).
    let all = world::prompts::training_prompts(world::prompts::DEFAULT_COUNT, opts.seed);
    let val = world::prompts::split(&all, opts.seed).1;
    let clean = clean_samples(&val, opts.images, opts.seed).map_err(fail)?;
    let step = (val.len() / opts.prompts.max(1)).max(1);
    let sampled: Vec<_> = val
        .iter()
        .step_by(step)
        .take(opts.prompts)
        .cloned()
        .collect();
    let t = std::time::Instant::now();
    // Held-out trajectories of the generator, labelled exactly as the fine-tuned judge's training
    // data (annotator detector + GenEval rules; Math-Shepherd rollouts for `step`): every task
    // scored on the kind of data a judge meets inside a strategy.
    let annotator =
        crate::detector::BurnDetector::<crate::Cpu>::load_dir(&opts.annotator, &Default::default())
            .map_err(|e| fail(format!("--annotator {}: {e}", opts.annotator.display())))?;
    let collect = super::data::CollectConfig {
        prompts: opts.prompts,
        candidates: 2,
        rollout_every: 6,
        rollouts: 1,
        steps: Generator::default_steps(&generator),
        batch: 16,
    };
    let trajectories = super::data::collect(
        &generator,
        &annotator,
        &val,
        &collect,
        opts.seed,
        &mut |_, _| {},
    )
    .map_err(|e| fail(format!("labelling held-out generator trajectories: {e}")))?;
    let verdicts = verdict_samples(&generator, &det, &sampled, 2, opts.seed)
        .map_err(|e| fail(format!("sampling held-out generator images: {e}")))?;
    let mut s = String::new();
    let _ = writeln!(s, "# Judge validation\n");
    let _ = writeln!(
        s,
        "Command: `evalcot eval judge --judges {} --generator {} --images {} --prompts {} --seed {} --out {}`.\n",
        opts.judges, opts.generator, opts.images, opts.prompts, opts.seed, opts.out
    );
    let _ = writeln!(s, "Held-out prompts: the validation split of the training prompts (seed {}), never trained on. *Clean renders*: {} prompts rendered matching or as a near miss (the zero-shot judge's kind of data), asked `final`, plus one `reflect` question per include clause. *Generator samples*: 2 samples of generator `{}` for each of {} prompts; the GenEval verdict comes from the evaluation detector and the rules. *Generator trajectories*: 2 trajectories of `{}` for each of {} prompts drawn from the same split, every step labelled as the fine-tuned judge's training data are (the annotator detector and the GenEval rules; `step` by one fresh rollout every 6 steps, Math-Shepherd style; `clarity` by the measured boundary; `potential` from the final verdict).\n", opts.seed, opts.images, opts.generator, sampled.len(), opts.generator, opts.prompts);
    let _ = writeln!(
        s,
        "| judge | data | task | n | positives | accuracy | AUROC |\n|---|---|---|---|---|---|---|"
    );
    for name in opts
        .judges
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let judge = crate::open::cpu_judge(name)?;
        let mut row = |data: &str, task: &str, sc: Scores| {
            let _ = writeln!(
                s,
                "| {name} | {data} | {task} | {} | {} | {:.3} | {:.3} |",
                sc.n, sc.positives, sc.accuracy, sc.auroc
            );
        };
        for (samples, data) in [
            (&clean, "clean renders"),
            (&trajectories, "generator trajectories"),
        ] {
            for (task, sc) in per_task(&judge, samples).map_err(fail)? {
                row(data, task.as_str(), sc);
            }
        }
        let (sc, geneval) = agreement(&judge, &verdicts).map_err(fail)?;
        row(
            &format!("generator samples (agreement with GenEval; GenEval accuracy {geneval:.3})"),
            "final",
            sc,
        );
    }
    let _ = writeln!(s, "\n{:.0} s on this machine.", t.elapsed().as_secs_f64());
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auroc_and_accuracy() {
        let s = scores(&[(0.9, true), (0.8, true), (0.3, false), (0.85, false)]);
        assert_eq!(s.n, 4);
        assert!((s.accuracy - 0.75).abs() < 1e-12);
        assert!((s.auroc - 0.75).abs() < 1e-12);
        assert!(scores(&[(0.9, true)]).auroc.is_nan());
    }
}
