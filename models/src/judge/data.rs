//! Judge training data, built like the paper's.
//!
//! - **Zero-shot** (the stand-in for a general-purpose multimodal model): clean renders of
//!   training prompts, matching (yes) or a near miss that breaks one clause (no); never a
//!   generator output. Reflection samples come from the same renders, clause by clause.
//! - **Fine-tuned**: the generator's own trajectories on training prompts, every step image
//!   decoded, labelled by the *annotator* detector and the GenEval rules:
//!   `final` (ORM) — the final verdict; `step` (PRM) — Math-Shepherd: yes if any of the
//!   candidate's own ending and `rollouts` fresh continuations from that step ends correct;
//!   `clarity` — yes from the first step after which the annotator's verdict on every step image
//!   equals the final verdict (measured per trajectory, not copied from Show-o's 10/11);
//!   `potential` — the final verdict, asked at clear steps; `reflect` — per include clause,
//!   whether the annotator finds it satisfied, with the cells of its objects as the region.

use harness::detector::Detector;
use harness::generator::{Generator, Trajectory};
use harness::judge::JudgeTask;
use harness::rng::{derive_seed, Rng};
use harness::rules::{self, Judgement};
use harness::scoring::judge_images;
use harness::{Metadata, RuleConfig};
use image::RgbImage;
use world::prompts;
use world::scene::SceneOptions;

/// One supervised question.
#[derive(Debug, Clone)]
pub struct JudgeSample {
    pub image: RgbImage,
    pub task: JudgeTask,
    /// The prompt (or, for `reflect`, the clause) the question is about.
    pub text: String,
    pub label: bool,
    /// For `reflect`: 8×8 targets, 1 where an object of the clause's class is centred.
    pub cells: Option<Vec<f32>>,
}

/// Token grid side of the judge's spatial head (= the generator's token grid).
pub const CELLS: usize = 8;

/// The question a reflection asks about include clause `i`: the template prompt of that clause
/// alone (`a photo of three dogs`, `a photo of a red dog`, `a photo of a dog left of a cat`).
pub fn clause_metadata(m: &Metadata, i: usize) -> Option<Metadata> {
    let c = m.include.get(i)?;
    if let Some(pos) = c.position {
        let anchor = m.include.get(pos.group)?;
        return Some(prompts::position(c.class, pos.relation, anchor.class));
    }
    if let Some(color) = c.color {
        return Some(prompts::colors(color, c.class));
    }
    if c.count >= 2 {
        return prompts::counting(c.class, c.count);
    }
    Some(prompts::single_object(c.class))
}

/// 8×8 cell targets from box centres in a 64×64 image.
pub fn cells_of(boxes: &[[f64; 4]], size: f64) -> Vec<f32> {
    let mut out = vec![0f32; CELLS * CELLS];
    for b in boxes {
        let cx = ((b[0] + b[2]) / 2.0 / size * CELLS as f64).floor() as isize;
        let cy = ((b[1] + b[3]) / 2.0 / size * CELLS as f64).floor() as isize;
        if (0..CELLS as isize).contains(&cx) && (0..CELLS as isize).contains(&cy) {
            out[cy as usize * CELLS + cx as usize] = 1.0;
        }
    }
    out
}

/// Reflection samples of one judged image: one per include clause with a template question.
fn reflections(
    image: &RgbImage,
    m: &Metadata,
    passed: &[bool],
    boxes: &[Vec<[f64; 4]>],
) -> Vec<JudgeSample> {
    (0..m.include.len())
        .filter_map(|i| {
            let q = clause_metadata(m, i)?;
            Some(JudgeSample {
                image: image.clone(),
                task: JudgeTask::Reflect,
                text: q.prompt,
                label: passed[i],
                cells: Some(cells_of(&boxes[i], image.width() as f64)),
            })
        })
        .collect()
}

/// Zero-shot sample `index`: a matching render or a near miss (half each), asked `final`, plus
/// its clause reflections.
pub fn zero_shot(
    prompts: &[Metadata],
    seed: u64,
    index: usize,
) -> Result<Vec<JudgeSample>, String> {
    let mut rng = Rng::derived(seed, &[index as u64]);
    let m = rng.choose(prompts).ok_or("no training prompts")?.clone();
    let scene_seed = derive_seed(seed, &[index as u64, 1]);
    let opts = SceneOptions::default();
    let (scene, broken) = if rng.chance(0.5) {
        (
            world::scene_for_metadata(&m, scene_seed, &opts).map_err(|e| e.to_string())?,
            None,
        )
    } else {
        let nm = world::nearmiss::near_miss(&m, scene_seed, &opts).map_err(|e| e.to_string())?;
        (nm.scene, Some(nm.clause))
    };
    let mut out = vec![JudgeSample {
        image: scene.image.clone(),
        task: JudgeTask::Final,
        text: m.prompt.clone(),
        label: broken.is_none(),
        cells: None,
    }];
    // Clause truth from the scene's exact objects through the GenEval rules.
    let dets = scene.detections();
    let j = rules::judge(&m, &dets, &RuleConfig::default()).map_err(|e| e.to_string())?;
    let (passed, boxes) = clause_truth(&m, &j, &dets.iter().map(|d| d.bbox).collect::<Vec<_>>());
    out.extend(reflections(&scene.image, &m, &passed, &boxes));
    Ok(out)
}

/// Per include clause: passed, and the boxes of the objects it judged.
fn clause_truth(
    m: &Metadata,
    j: &Judgement,
    boxes: &[[f64; 4]],
) -> (Vec<bool>, Vec<Vec<[f64; 4]>>) {
    let mut passed = vec![false; m.include.len()];
    let mut found = vec![Vec::new(); m.include.len()];
    for c in &j.clauses {
        if let rules::ClauseRef::Include(i) = c.clause {
            passed[i] = c.passed;
            found[i] = c
                .objects
                .iter()
                .filter_map(|&o| boxes.get(o).copied())
                .collect();
        }
    }
    (passed, found)
}

/// Settings of fine-tuned data collection.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CollectConfig {
    /// Training prompts sampled.
    pub prompts: usize,
    /// Candidates per prompt.
    pub candidates: usize,
    /// Steps whose PRM label gets fresh rollouts (others get none: labelled from the own
    /// ending only when it is correct).
    pub rollout_every: usize,
    /// Fresh continuations per labelled step (Math-Shepherd uses 4 with the own ending).
    pub rollouts: usize,
    /// Generator steps per schedule.
    pub steps: usize,
    /// Candidates stepped together.
    pub batch: usize,
}

impl Default for CollectConfig {
    fn default() -> Self {
        CollectConfig {
            prompts: 600,
            candidates: 2,
            rollout_every: 4,
            rollouts: 2,
            steps: 18,
            batch: 32,
        }
    }
}

/// Labelled trajectories of the generator (see the module doc), judged by `annotator`.
pub fn collect(
    generator: &dyn Generator,
    annotator: &dyn Detector,
    prompts: &[Metadata],
    cfg: &CollectConfig,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<JudgeSample>, String> {
    let mut rng = Rng::derived(seed, &[0x7a]);
    let chosen: Vec<Metadata> = (0..cfg.prompts)
        .map(|_| rng.choose(prompts).cloned().ok_or("no training prompts"))
        .collect::<Result<_, _>>()?;
    let jobs: Vec<(usize, usize)> = (0..chosen.len())
        .flat_map(|p| (0..cfg.candidates).map(move |c| (p, c)))
        .collect();
    // Chunks run one per thread at once and are concatenated in order: the samples do not
    // depend on the thread count (every draw comes from the prompt, candidate and step).
    let chunks: Vec<&[(usize, usize)]> = jobs.chunks(cfg.batch.max(1)).collect();
    let mut out = Vec::new();
    let mut done = 0;
    harness::waves::in_order(
        &chunks,
        rayon::current_num_threads(),
        |chunk| collect_chunk(generator, annotator, &chosen, chunk, cfg, seed),
        |chunk, part| {
            out.extend(part?);
            done += chunk.len();
            progress(done, jobs.len());
            Ok::<(), String>(())
        },
    )?;
    Ok(out)
}

/// Labelled samples of one batch of `(prompt, candidate)` jobs.
fn collect_chunk(
    generator: &dyn Generator,
    annotator: &dyn Detector,
    chosen: &[Metadata],
    chunk: &[(usize, usize)],
    cfg: &CollectConfig,
    seed: u64,
) -> Result<Vec<JudgeSample>, String> {
    let rules_cfg = RuleConfig::default();
    let mut out = Vec::new();
    let mut trajs: Vec<Trajectory> = chunk
        .iter()
        .map(|&(p, c)| {
            generator.start(
                &chosen[p].prompt,
                derive_seed(seed, &[p as u64, c as u64]),
                cfg.steps,
            )
        })
        .collect();
    let metas: Vec<&Metadata> = chunk.iter().map(|&(p, _)| &chosen[p]).collect();
    // Step images and the states to roll out from.
    let mut step_images: Vec<Vec<RgbImage>> = vec![Vec::new(); chunk.len()];
    let mut states: Vec<Vec<Trajectory>> = vec![Vec::new(); chunk.len()];
    for t in 0..cfg.steps {
        generator.step(&mut trajs)?;
        let imgs = generator.decode(&trajs)?;
        for (k, img) in imgs.into_iter().enumerate() {
            step_images[k].push(img);
            if cfg.rollouts > 0 && (t + 1) % cfg.rollout_every.max(1) == 0 && t + 1 < cfg.steps {
                states[k].push(trajs[k].clone());
            }
        }
    }
    let verdict = |images: &[RgbImage], metas: &[&Metadata]| -> Result<Vec<bool>, String> {
        Ok(judge_images(annotator, images, metas, &rules_cfg)?
            .into_iter()
            .map(|v| v.is_ok_and(|j| j.correct))
            .collect())
    };
    for k in 0..chunk.len() {
        let m = metas[k];
        let finals = step_images[k].last().cloned().ok_or("no steps")?;
        let per_step = verdict(&step_images[k], &vec![m; cfg.steps])?;
        let final_ok = *per_step.last().unwrap_or(&false);
        // Clarity boundary: the first step from which every step verdict equals the final.
        let boundary = (0..cfg.steps)
            .rev()
            .take_while(|&s| per_step[s] == final_ok)
            .last()
            .unwrap_or(cfg.steps - 1);
        // Rollouts: fresh continuations from the kept states.
        let mut rolled: Vec<Trajectory> = states[k]
            .iter()
            .flat_map(|s| (0..cfg.rollouts).map(move |r| s.fork(r as u64)))
            .collect();
        generator.run_to_end(&mut rolled)?;
        let roll_imgs = generator.decode(&rolled)?;
        let roll_ok = verdict(&roll_imgs, &vec![m; roll_imgs.len()])?;
        for (s, img) in step_images[k].iter().enumerate() {
            let clear = s >= boundary;
            out.push(JudgeSample {
                image: img.clone(),
                task: JudgeTask::Clarity,
                text: m.prompt.clone(),
                label: clear,
                cells: None,
            });
            if clear {
                out.push(JudgeSample {
                    image: img.clone(),
                    task: JudgeTask::Potential,
                    text: m.prompt.clone(),
                    label: final_ok,
                    cells: None,
                });
            }
            // PRM: labelled where rollouts exist, or where the own ending already says yes.
            let rolled_here = states[k].iter().position(|st| st.step == s + 1);
            let label = match rolled_here {
                Some(i) => {
                    final_ok
                        || roll_ok[i * cfg.rollouts..(i + 1) * cfg.rollouts]
                            .iter()
                            .any(|&v| v)
                }
                None if final_ok => true,
                None => continue,
            };
            out.push(JudgeSample {
                image: img.clone(),
                task: JudgeTask::Step,
                text: m.prompt.clone(),
                label,
                cells: None,
            });
        }
        out.push(JudgeSample {
            image: finals.clone(),
            task: JudgeTask::Final,
            text: m.prompt.clone(),
            label: final_ok,
            cells: None,
        });
        // Reflection on the final image from the annotator's clause outcomes.
        let size = annotator.input_size();
        let resized = harness::scoring::resize_for_detector(&finals, size).0;
        let objs = annotator.detect(std::slice::from_ref(&resized))?.remove(0);
        let dets = objs
            .iter()
            .map(|o| o.to_detection())
            .collect::<Result<Vec<_>, _>>()?;
        let j = rules::judge(m, &dets, &rules_cfg).map_err(|e| e.to_string())?;
        let (passed, boxes) = clause_truth(m, &j, &dets.iter().map(|d| d.bbox).collect::<Vec<_>>());
        out.extend(reflections(&finals, m, &passed, &boxes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::testkit::{DummyDetector, DummyGenerator};

    /// What a sample says, comparable: task, text, label, cells and the image's bytes.
    fn key(s: &JudgeSample) -> (String, String, bool, Option<Vec<u32>>, Vec<u8>) {
        (
            format!("{:?}", s.task),
            s.text.clone(),
            s.label,
            s.cells
                .as_ref()
                .map(|c| c.iter().map(|v| v.to_bits()).collect()),
            s.image.as_raw().clone(),
        )
    }

    /// Chunks are collected on several threads at once; the pool must not notice.
    #[test]
    fn collected_samples_do_not_depend_on_the_thread_count() {
        let generator = DummyGenerator {
            side: 4,
            steps: 6,
            bias: 0.6,
        };
        let source = world::dataset::SampleSource::new(world::dataset::DatasetKind::Prompts, 5);
        let cfg = CollectConfig {
            prompts: 6,
            candidates: 2,
            rollout_every: 2,
            rollouts: 2,
            steps: 6,
            batch: 3,
        };
        let run = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("thread pool");
            pool.install(|| {
                collect(
                    &generator,
                    &DummyDetector,
                    source.prompts(),
                    &cfg,
                    9,
                    &mut |_, _| {},
                )
            })
            .expect("collects")
        };
        let one: Vec<_> = run(1).iter().map(key).collect();
        let three: Vec<_> = run(3).iter().map(key).collect();
        assert!(one.len() > 6 * 2 * 6, "{} samples", one.len());
        assert!(one.iter().any(|k| k.2) && one.iter().any(|k| !k.2));
        assert_eq!(one, three);
    }
}
