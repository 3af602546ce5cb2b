//! A trained judge behind `harness::judge::Judge`: batched questions, P(yes) by sigmoid, and
//! reflections that name the failing clause, what was found and the region to blame.

use super::config::{JudgeMode, JudgeTrainConfig};
use super::data::{clause_metadata, CELLS};
use super::model::{JudgeNet, JudgeNetConfig};
use crate::store::{module_from_bytes, ModelError};
use crate::train_loop::read_json;
use crate::vq::inference::images_to_tensor;
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use harness::error::ModelFault;
use harness::judge::{ClauseVerdict, Judge, JudgeRequest, JudgeTask, Verdict};
use harness::Metadata;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::path::Path;

pub const JUDGE_FORMAT: &str = "evalcot-judge-1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeMeta {
    pub format: String,
    pub name: String,
    pub mode: JudgeMode,
    pub net: JudgeNetConfig,
    /// The exact training configuration (reproduce with `evalcot train judge`).
    pub train: JudgeTrainConfig,
}

/// `[task token, prompt tokens…]`. A zero-shot judge was only taught "does this image show the
/// prompt", so every image-level task is asked as that question (as a general model would be).
pub fn question_ids(task: JudgeTask, text: &str, zero_shot: bool) -> Result<Vec<i64>, String> {
    let task = match (zero_shot, task) {
        (true, JudgeTask::Reflect) | (false, _) => task,
        (true, _) => JudgeTask::Final,
    };
    let vocab = world::words::vocab_size() as i64;
    let ids = world::words::encode_padded(text).map_err(|e| format!("prompt {text:?}: {e}"))?;
    let mut out = Vec::with_capacity(ids.len() + 1);
    out.push(vocab + task.index() as i64);
    out.extend(ids.iter().map(|&i| i as i64));
    Ok(out)
}

pub struct BurnJudge<B: Backend> {
    net: JudgeNet<B>,
    pub meta: JudgeMeta,
    device: B::Device,
}

impl<B: Backend> BurnJudge<B> {
    pub fn from_parts(
        meta: JudgeMeta,
        weights: Vec<u8>,
        what: &str,
        device: &B::Device,
    ) -> Result<Self, ModelError> {
        if meta.format != JUDGE_FORMAT {
            return Err(ModelError::Config {
                what: what.into(),
                message: format!("format {:?}, expected {JUDGE_FORMAT:?}", meta.format),
            });
        }
        meta.net.validate().map_err(|m| ModelError::Config {
            what: what.into(),
            message: m,
        })?;
        let net = module_from_bytes(meta.net.init::<B>(device), weights, what)?;
        Ok(BurnJudge {
            net,
            meta,
            device: device.clone(),
        })
    }

    pub fn load_dir(dir: &Path, device: &B::Device) -> Result<Self, ModelError> {
        let meta: JudgeMeta = read_json(&dir.join("judge.json"))?;
        let path = dir.join("judge.bpk");
        let bytes = std::fs::read(&path).map_err(|e| harness::Error::io(&path, e))?;
        Self::from_parts(meta, bytes, &path.display().to_string(), device)
    }

    /// `(P(yes), 8×8 cell probabilities)` per question.
    #[allow(clippy::type_complexity)]
    fn ask(
        &self,
        questions: &[(&RgbImage, JudgeTask, String)],
    ) -> Result<Vec<(f64, Vec<f32>)>, ModelFault> {
        if questions.is_empty() {
            return Ok(Vec::new());
        }
        let zero_shot = self.meta.mode == JudgeMode::ZeroShot;
        let size = self.meta.net.image_size as u32;
        let images: Vec<RgbImage> = questions
            .iter()
            .map(|(img, _, _)| harness::scoring::resize_for_detector(img, size).0)
            .collect();
        let mut q = Vec::new();
        for (_, task, text) in questions {
            q.extend(question_ids(*task, text, zero_shot)?);
        }
        let b = questions.len();
        let q = Tensor::<B, 2, Int>::from_data(
            TensorData::new(q, [b, self.meta.net.text_len + 1]),
            &self.device,
        );
        let forward = harness::profile::span(harness::profile::Phase::JudgeForward);
        let o = self.net.forward(images_to_tensor(&images, &self.device), q);
        let yes: Vec<f32> = sigmoid(o.yes)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| format!("{e:?}"))?;
        let cells: Vec<f32> = sigmoid(o.where_)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .map_err(|e| format!("{e:?}"))?;
        drop(forward);
        if yes.iter().chain(&cells).any(|v| !v.is_finite()) {
            return Err(ModelFault::non_finite(format!(
                "judge {} produced a non-finite score",
                self.meta.name
            )));
        }
        Ok(yes
            .iter()
            .zip(cells.chunks(CELLS * CELLS))
            .map(|(&y, c)| (y as f64, c.to_vec()))
            .collect())
    }
}

/// Local maxima of the cell map above 0.5: the judge's count and where the objects are.
fn peaks(cells: &[f32]) -> Vec<(usize, usize)> {
    let at = |x: isize, y: isize| -> f32 {
        if (0..CELLS as isize).contains(&x) && (0..CELLS as isize).contains(&y) {
            cells[y as usize * CELLS + x as usize]
        } else {
            0.0
        }
    };
    let mut out = Vec::new();
    for y in 0..CELLS as isize {
        for x in 0..CELLS as isize {
            let v = at(x, y);
            let is_max = (-1..=1)
                .all(|dy| (-1..=1).all(|dx| (dx == 0 && dy == 0) || at(x + dx, y + dy) <= v));
            if v > 0.5 && is_max {
                out.push((x as usize, y as usize));
            }
        }
    }
    out
}

/// The explanation of a failed clause, in the paper's spirit ("expected 3 dog, found 2").
fn explain(m: &Metadata, i: usize, found: usize) -> String {
    let c = &m.include[i];
    let name = c.class.name();
    if let Some(pos) = c.position {
        let anchor = m.include[pos.group].class.name();
        return format!("the {name} is not {} the {anchor}", pos.relation);
    }
    if let Some(color) = c.color {
        return format!("expected a {color} {name}, it is not {color} or missing");
    }
    format!("expected {} {name}, found {found}", c.count)
}

impl<B: Backend> Judge for BurnJudge<B>
where
    JudgeNet<B>: Send + Sync,
    B::Device: Send + Sync,
{
    fn name(&self) -> &str {
        &self.meta.name
    }

    fn judge(&self, requests: &[JudgeRequest<'_>]) -> Result<Vec<Verdict>, ModelFault> {
        // Image-level questions in one batch; reflections as one question per include clause.
        let mut questions = Vec::new();
        let mut owners: Vec<(usize, Option<usize>)> = Vec::new();
        for (r, req) in requests.iter().enumerate() {
            if req.task == JudgeTask::Reflect {
                for i in 0..req.metadata.include.len() {
                    if let Some(cm) = clause_metadata(req.metadata, i) {
                        questions.push((req.image, JudgeTask::Reflect, cm.prompt));
                        owners.push((r, Some(i)));
                    }
                }
            } else {
                questions.push((req.image, req.task, req.metadata.prompt.clone()));
                owners.push((r, None));
            }
        }
        let answers = self.ask(&questions)?;
        let mut out: Vec<Verdict> = requests
            .iter()
            .map(|_| Verdict {
                p_yes: 1.0,
                clauses: Vec::new(),
            })
            .collect();
        for ((r, clause), (p, cells)) in owners.into_iter().zip(answers) {
            match clause {
                None => out[r].p_yes = p,
                Some(i) => {
                    let m = requests[r].metadata;
                    let found = peaks(&cells);
                    let px = requests[r].image.width() as f32 / CELLS as f32;
                    let region = (!found.is_empty()).then(|| {
                        let x1 = found.iter().map(|c| c.0).min().unwrap_or(0) as f32;
                        let y1 = found.iter().map(|c| c.1).min().unwrap_or(0) as f32;
                        let x2 = found.iter().map(|c| c.0).max().unwrap_or(0) as f32 + 1.0;
                        let y2 = found.iter().map(|c| c.1).max().unwrap_or(0) as f32 + 1.0;
                        [x1 * px, y1 * px, x2 * px, y2 * px]
                    });
                    // The image passes reflection when every clause does.
                    out[r].p_yes = out[r].p_yes.min(p);
                    out[r].clauses.push(ClauseVerdict {
                        clause: format!("include[{i}]"),
                        p_pass: p,
                        explanation: if p >= 0.5 {
                            "ok".into()
                        } else {
                            explain(m, i, found.len())
                        },
                        region,
                    });
                }
            }
        }
        Ok(out)
    }
}
