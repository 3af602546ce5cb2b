//! Test doubles with exact, cheap behaviour (lm-eval's `DummyLM` idea): a generator whose tokens
//! are object classes and a detector that reads them back, so that strategies, the run loop and
//! resumption are tested in milliseconds without any network.

use crate::detector::{DetectedObject, Detector};
use crate::generator::{cosine_mask_len, Generator, Trajectory, MASK};
use crate::rng::Rng;
use crate::vocab::{ClassId, NUM_CLASSES};
use image::{Rgb, RgbImage};

/// Tokens are class ids (0..80); position `p` of a `side`×`side` grid is a 8×8-pixel cell.
/// Each step commits a cosine-schedule share of the masked positions with uniformly drawn
/// classes, except that a class named in the prompt is drawn with probability `bias`.
pub struct DummyGenerator {
    pub side: usize,
    pub steps: usize,
    pub bias: f64,
}

impl Default for DummyGenerator {
    fn default() -> Self {
        DummyGenerator {
            side: 2,
            steps: 4,
            bias: 0.1,
        }
    }
}

/// Token that means "background" (no object in the cell).
pub const EMPTY: u32 = NUM_CLASSES as u32;

impl DummyGenerator {
    fn prompt_class(prompt: &str) -> Option<u32> {
        // The longest class name contained in the prompt.
        (0..NUM_CLASSES)
            .filter_map(|i| {
                let c = ClassId::new(i)?;
                prompt
                    .contains(c.name())
                    .then_some((c.name().len(), i as u32))
            })
            .max()
            .map(|(_, i)| i)
    }
}

impl Generator for DummyGenerator {
    fn name(&self) -> &str {
        "dummy"
    }

    fn grid(&self) -> (usize, usize) {
        (self.side, self.side)
    }

    fn default_steps(&self) -> usize {
        self.steps
    }

    fn step(&self, batch: &mut [Trajectory]) -> Result<(), crate::error::ModelFault> {
        for t in batch.iter_mut().filter(|t| !t.done()) {
            let mut rng = Rng::new(t.step_seed());
            let wanted = Self::prompt_class(&t.prompt);
            let draw = |rng: &mut Rng| match wanted {
                Some(c) if rng.chance(self.bias) => c,
                _ if rng.chance(0.5) => EMPTY,
                _ => rng.below(NUM_CLASSES as u64) as u32,
            };
            let prediction: Vec<u32> = t
                .tokens
                .iter()
                .map(|&v| if v == MASK { draw(&mut rng) } else { v })
                .collect();
            let masked: Vec<usize> = (0..t.tokens.len())
                .filter(|&p| t.tokens[p] == MASK)
                .collect();
            let keep = cosine_mask_len(t.schedule_masked, t.step, t.steps, masked.len());
            // Commit all but the last `keep` masked positions.
            for &p in &masked[..masked.len() - keep] {
                t.tokens[p] = prediction[p];
            }
            t.prediction = prediction;
            t.step += 1;
            t.forwards += 2;
        }
        Ok(())
    }

    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, crate::error::ModelFault> {
        Ok(batch
            .iter()
            .map(|t| {
                let grid = if t.prediction.len() == t.tokens.len() {
                    &t.prediction
                } else {
                    &t.tokens
                };
                let s = (self.side * 8) as u32;
                RgbImage::from_fn(s, s, |x, y| {
                    let p = (y / 8) as usize * self.side + (x / 8) as usize;
                    let v = grid[p].min(255) as u8;
                    Rgb([v, 0, 0])
                })
            })
            .collect())
    }

    fn log_prob(
        &self,
        prompt: &str,
        tokens: &[u32],
        _seed: u64,
    ) -> Result<f64, crate::error::ModelFault> {
        let wanted = Self::prompt_class(prompt);
        Ok(tokens
            .iter()
            .map(|&t| {
                if Some(t) == wanted {
                    self.bias.ln()
                } else {
                    (0.5f64).ln()
                }
            })
            .sum())
    }
}

/// Reads a [`DummyGenerator`] image back: one red object of class `v` per 8×8 cell of red value
/// `v < 80`, score 0.95.
pub struct DummyDetector;

impl Detector for DummyDetector {
    fn name(&self) -> &str {
        "dummy"
    }

    fn input_size(&self) -> u32 {
        16
    }

    fn detect(
        &self,
        images: &[RgbImage],
    ) -> Result<Vec<Vec<DetectedObject>>, crate::error::ModelFault> {
        Ok(images
            .iter()
            .map(|img| {
                let mut out = Vec::new();
                for cy in 0..img.height() / 8 {
                    for cx in 0..img.width() / 8 {
                        let v = img.get_pixel(cx * 8 + 4, cy * 8 + 4).0[0] as usize;
                        if let Some(class) = ClassId::new(v) {
                            let mut color_probs = [0.0f32; 10];
                            color_probs[0] = 1.0; // red
                            let (x, y) = ((cx * 8) as f32, (cy * 8) as f32);
                            out.push(DetectedObject {
                                class,
                                score: 0.95,
                                bbox: [x, y, x + 8.0, y + 8.0],
                                color_probs,
                                mask: None,
                            });
                        }
                    }
                }
                out
            })
            .collect())
    }
}

/// A judge that reads [`DummyGenerator`] images with [`DummyDetector`] and the GenEval rules:
/// P(yes) = `sharpness` when the image passes, `1 − sharpness` otherwise; clarity rises with the
/// step (clear from half-way); reflection names each include clause and blames the cells of the
/// clause's objects.
pub struct DummyJudge {
    pub sharpness: f64,
}

impl crate::judge::Judge for DummyJudge {
    fn name(&self) -> &str {
        "dummy"
    }

    fn judge(
        &self,
        requests: &[crate::judge::JudgeRequest<'_>],
    ) -> Result<Vec<crate::judge::Verdict>, crate::error::ModelFault> {
        use crate::judge::{ClauseVerdict, JudgeTask, Verdict};
        let cfg = crate::RuleConfig::default();
        requests
            .iter()
            .map(|r| {
                let objects = DummyDetector
                    .detect(std::slice::from_ref(r.image))?
                    .remove(0);
                let dets: Vec<_> = objects
                    .iter()
                    .map(|o| o.to_detection())
                    .collect::<Result<_, _>>()?;
                let j = crate::rules::judge(r.metadata, &dets, &cfg).map_err(|e| e.to_string())?;
                let p = |ok: bool| {
                    if ok {
                        self.sharpness
                    } else {
                        1.0 - self.sharpness
                    }
                };
                Ok(match r.task {
                    JudgeTask::Clarity => Verdict {
                        p_yes: r
                            .step
                            .map_or(1.0, |(s, t)| if 2 * s >= t { 0.95 } else { 0.05 }),
                        clauses: vec![],
                    },
                    JudgeTask::Reflect => {
                        let clauses: Vec<ClauseVerdict> = j
                            .clauses
                            .iter()
                            .filter_map(|c| match c.clause {
                                crate::rules::ClauseRef::Include(i) => Some(ClauseVerdict {
                                    clause: format!("include[{i}]"),
                                    p_pass: p(c.passed),
                                    explanation: c.reason.clone().unwrap_or_else(|| "ok".into()),
                                    region: c.objects.first().map(|&o| {
                                        let b = dets[o].bbox;
                                        [b[0] as f32, b[1] as f32, b[2] as f32, b[3] as f32]
                                    }),
                                }),
                                _ => None,
                            })
                            .collect();
                        Verdict {
                            p_yes: p(j.correct),
                            clauses,
                        }
                    }
                    _ => Verdict {
                        p_yes: p(j.correct),
                        clauses: vec![],
                    },
                })
            })
            .collect()
    }
}
