//! Judge validation: accuracy and AUROC per task on held-out samples, and how often the judge's
//! final verdict agrees with the GenEval verdict (evaluation detector + rules) on generator
//! outputs of held-out (validation-split) training prompts.

use super::data::{self, JudgeSample};
use harness::detector::Detector;
use harness::generator::Generator;
use harness::judge::{Judge, JudgeRequest, JudgeTask};
use harness::rng::derive_seed;
use harness::{Metadata, RuleConfig};

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
