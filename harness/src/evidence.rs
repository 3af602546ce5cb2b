//! A verifier that looks at the image through a detector: the GenEval rules made soft. Each
//! clause of the prompt is checked against the detector's objects of the prompted class —
//! P(at least `count` of them are there) from their calibrated scores (a Poisson-binomial
//! count), P(the top `count` have the asked colour) from their colour probabilities, P(the
//! relation holds) from their boxes with the official margin — and P(yes) is the product over
//! clauses. No term depends on the prompt alone: an image without the prompted objects gets a
//! low score whatever the prompt, so a judge like this can order the samples of one prompt.
//!
//! With the annotator as its detector (never the evaluation detector: the two are trained apart)
//! it is both a judge strategies can use and the reference for judges trained on the
//! annotator's labels, which cannot know more than the annotator does.

use crate::detector::{DetectedObject, Detector};
use crate::error::ModelFault;
use crate::judge::{ClauseVerdict, Judge, JudgeRequest, JudgeTask, Verdict};
use crate::rules::RuleConfig;
#[cfg(test)]
use crate::Tag;
use crate::{ClassId, Metadata, Relation};

/// Detections below this calibrated score are taken as absent (they change no probability
/// that matters and would only slow the count distribution).
const FLOOR: f64 = 0.01;
/// Softness of a relation's margin: the normalised offset beyond the official ±0.5 at which a
/// relation is taken as e⁻¹-far from certain.
const RELATION_SCALE: f64 = 0.05;

/// The share of a schedule from which a preview counts as clear (PARM's clarity). Chosen on
/// held-out trajectories of training-distribution prompts, never on GenEval (docs/verifiers.md,
/// *Clarity*): the shipped base generator's previews barely predict its final verdicts until the
/// last step (within-image AUROC ≤ 0.69 before it, 0.96 at it), and every earlier share cost
/// PARM more than 0.01 of accuracy against ORM there, so previews are clear only at the end.
/// `evidence@SHARE` sets another share.
pub const CLARITY_FROM: f64 = 1.0;

/// The soft GenEval rules over a detector's output.
pub struct EvidenceJudge {
    detector: Box<dyn Detector>,
    name: String,
    rules: RuleConfig,
    clarity_from: f64,
    head: Option<Head>,
}

/// The evidence of one image for a prompt, summed over the prompt's clauses by kind: ln of
/// P(count), P(colour), P(position) of the include clauses and of P(pass) of the exclude
/// clauses, each floored at [`Head::FLOOR`]. Every entry comes from the image, but how many
/// factors a prompt has does not: with no object drawn, a two-object prompt's count entry is
/// twice a one-object prompt's, and a factor the prompt does not ask for is 0. So a head's
/// P(yes) for an empty image still depends on the prompt's shape (the blank ablation's pooled
/// AUROC shows how much); within one prompt's candidates it cannot.
pub type Features = [f64; 4];

/// What the features are called, in order (reports, head files).
pub const FEATURES: [&str; 4] = ["count", "colour", "position", "exclude"];

/// A learned combination of the evidence: P(yes) = ε + (1 − 2ε)·σ(bias + Σₖ (wₖ + w_{tag,k}) · featureₖ).
/// The only prompt-dependent parameters multiply evidence from the image (a tag's weights), so
/// no term can carry the verdict from the prompt alone; the bias is one number for all prompts.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    pub format: String,
    pub bias: f64,
    pub weights: [f64; 4],
    /// Per tag (its official name), added to `weights`; a tag absent here uses `weights`.
    pub tag_weights: std::collections::BTreeMap<String, [f64; 4]>,
    /// ε of the noise layer: P(yes) = ε + (1 − 2ε)·σ(logit), so that the head is never surer
    /// than its labels are right (0 in heads made before it).
    #[serde(default)]
    pub label_noise: f64,
    /// The annotator folder whose evidence the head was trained on (the judge reads the same).
    pub detector: String,
    /// How the head was made (config, data, command), for its report; not read.
    #[serde(default)]
    pub made_by: serde_json::Value,
}

impl Head {
    pub const FORMAT: &'static str = "evalcot-evidence-head-1";
    /// Each probability's floor before its logarithm: an absent object is strong evidence, not
    /// infinite evidence.
    pub const FLOOR: f64 = 1e-4;

    /// The logit of P(yes).
    pub fn logit(&self, f: &Features, tag: &str) -> f64 {
        let extra = self.tag_weights.get(tag).copied().unwrap_or([0.0; 4]);
        self.bias
            + f.iter()
                .zip(self.weights.iter().zip(extra))
                .map(|(x, (w, e))| (w + e) * x)
                .sum::<f64>()
    }

    pub fn p_yes(&self, f: &Features, tag: &str) -> f64 {
        let q = 1.0 / (1.0 + (-self.logit(f, tag)).exp());
        self.label_noise + (1.0 - 2.0 * self.label_noise) * q
    }

    /// Reads `head.json`, naming the file and what is wrong with it.
    pub fn load(path: &std::path::Path) -> crate::error::Result<Head> {
        let text = std::fs::read_to_string(path).map_err(|e| crate::error::Error::io(path, e))?;
        let head: Head = serde_json::from_str(&text).map_err(|e| {
            crate::error::Error::invalid(
                crate::error::Location::file(path.display().to_string()),
                format!("not an evidence head: {e}"),
            )
        })?;
        if head.format != Head::FORMAT {
            return Err(crate::error::Error::invalid(
                crate::error::Location::file(path.display().to_string()),
                format!("format {:?}: expected {:?}", head.format, Head::FORMAT),
            ));
        }
        if !(0.0..0.5).contains(&head.label_noise) {
            return Err(crate::error::Error::invalid(
                crate::error::Location::file(path.display().to_string()),
                format!(
                    "label_noise {}: expected a rate in [0, 0.5)",
                    head.label_noise
                ),
            ));
        }
        let finite = head.bias.is_finite()
            && head
                .weights
                .iter()
                .chain(head.tag_weights.values().flatten())
                .all(|w| w.is_finite());
        if !finite {
            return Err(crate::error::Error::invalid(
                crate::error::Location::file(path.display().to_string()),
                "a weight is not finite",
            ));
        }
        Ok(head)
    }
}

impl EvidenceJudge {
    pub fn new(detector: Box<dyn Detector>) -> Self {
        let name = format!("evidence({})", detector.name());
        EvidenceJudge {
            detector,
            name,
            rules: RuleConfig::default(),
            clarity_from: CLARITY_FROM,
            head: None,
        }
    }

    /// P(yes) from `head` over the evidence instead of the product of the clauses' P(pass).
    pub fn with_head(mut self, head: Head, name: &str) -> Self {
        self.name = format!("{name}({})", self.detector.name());
        self.head = Some(head);
        self
    }

    /// The evidence features of each image for its prompt (what a head learns from).
    pub fn features(
        &self,
        images: &[image::RgbImage],
        metas: &[&Metadata],
    ) -> Result<Vec<Features>, ModelFault> {
        let objects = self.detect(&images.iter().collect::<Vec<_>>())?;
        Ok(objects
            .iter()
            .zip(metas)
            .map(|(o, m)| self.clauses(m, o).1)
            .collect())
    }

    /// The detector's objects in each image, in the image's own pixels.
    fn detect(&self, images: &[&image::RgbImage]) -> Result<Vec<Vec<DetectedObject>>, ModelFault> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let size = self.detector.input_size();
        let resized: Vec<_> = images
            .iter()
            .map(|i| crate::scoring::resize_for_detector(i, size))
            .collect();
        let inputs: Vec<_> = resized.iter().map(|(i, _, _)| i.clone()).collect();
        let outputs = self
            .detector
            .detect(&inputs)
            .map_err(|e| e.context(format!("judge {}", self.name)))?;
        Ok(outputs
            .into_iter()
            .zip(&resized)
            .map(|(objects, (_, sx, sy))| {
                objects.into_iter().map(|o| o.rescaled(*sx, *sy)).collect()
            })
            .collect())
    }

    /// Previews count as clear from `share` of the schedule on.
    pub fn with_clarity_from(mut self, share: f64) -> Self {
        self.clarity_from = share;
        self.name = format!("{}@{share}", self.name);
        self
    }

    /// Clarity: a preview after step `step` of `steps` is clear when `step ≥ share · steps`
    /// (the last step always is). Evidence on early previews is not weak but absent — nothing
    /// is drawn yet — so how decided P(yes) looks says nothing about whether the path will
    /// end right; the step does.
    fn clarity(&self, step: Option<(usize, usize)>) -> f64 {
        match step {
            Some((s, t)) if (s as f64) < self.clarity_from * t as f64 && s < t => 0.0,
            _ => 1.0,
        }
    }
}

/// One class's objects: calibrated score, box (image pixels), colour probabilities; by score.
struct Objects<'a> {
    of: Vec<&'a DetectedObject>,
}

impl Objects<'_> {
    /// P(at least k of them are real), each independently with its score.
    fn at_least(&self, k: usize) -> f64 {
        if k == 0 {
            return 1.0;
        }
        // dist[j] = P(exactly j real so far), j capped at k (k means "k or more").
        let mut dist = vec![0.0; k + 1];
        dist[0] = 1.0;
        for o in &self.of {
            let p = (o.score as f64).clamp(0.0, 1.0);
            for j in (0..=k).rev() {
                let stay = dist[j] * (1.0 - p);
                let from = if j > 0 { dist[j - 1] * p } else { 0.0 };
                dist[j] = if j == k { dist[j] + from } else { stay + from };
            }
        }
        dist[k]
    }
}

/// P(relation `rel` holds between boxes a and b): the official test on the offset normalised
/// as `relative_position` does, with a logistic margin instead of a step.
fn p_relation(a: &[f64; 4], b: &[f64; 4], rel: Relation, threshold: f64) -> f64 {
    let centre = |bx: &[f64; 4]| [(bx[0] + bx[2]) / 2.0, (bx[1] + bx[3]) / 2.0];
    let dims = |bx: &[f64; 4]| [(bx[2] - bx[0]).abs(), (bx[3] - bx[1]).abs()];
    let (ca, cb, da, db) = (centre(a), centre(b), dims(a), dims(b));
    let offset = [ca[0] - cb[0], ca[1] - cb[1]];
    let norm = (offset[0] * offset[0] + offset[1] * offset[1]).sqrt();
    if norm < 1e-9 {
        return 0.0;
    }
    let revised = |k: usize| {
        (offset[k].abs() - threshold * (da[k] + db[k])).max(0.0) * offset[k].signum() / norm
    };
    let signed = match rel {
        Relation::LeftOf => -revised(0),
        Relation::RightOf => revised(0),
        Relation::Above => -revised(1),
        Relation::Below => revised(1),
    };
    1.0 / (1.0 + (-(signed - 0.5) / RELATION_SCALE).exp())
}

fn bbox64(o: &DetectedObject) -> [f64; 4] {
    o.bbox.map(|v| v as f64)
}

impl EvidenceJudge {
    /// Per-clause P(pass), explanation and region, from the objects detected in one image, and
    /// the evidence summed by kind.
    fn clauses(
        &self,
        meta: &Metadata,
        objects: &[DetectedObject],
    ) -> (Vec<ClauseVerdict>, Features) {
        let ln = |p: f64| p.max(Head::FLOOR).ln();
        let mut features = [0.0; 4];
        let of = |c: ClassId| {
            let mut v: Vec<&DetectedObject> = objects
                .iter()
                .filter(|o| o.class == c && o.score as f64 >= FLOOR)
                .collect();
            v.sort_by(|a, b| b.score.total_cmp(&a.score));
            v.truncate(self.rules.max_objects);
            Objects { of: v }
        };
        let mut out = Vec::new();
        let mut groups: Vec<Vec<&DetectedObject>> = Vec::new();
        for (i, req) in meta.include.iter().enumerate() {
            let objs = of(req.class);
            let count = req.count as usize;
            let top: Vec<&DetectedObject> = objs.of.iter().take(count).copied().collect();
            let p_count = objs.at_least(count);
            let p_color = req.color.map_or(1.0, |want| {
                let k = crate::Color::ALL
                    .iter()
                    .position(|c| *c == want)
                    .unwrap_or(0);
                top.iter()
                    .map(|o| o.color_probs[k].clamp(0.0, 1.0) as f64)
                    .product::<f64>()
                    * if top.len() < count { 0.0 } else { 1.0 }
            });
            let p_position = req.position.map_or(1.0, |pos| {
                let targets = groups.get(pos.group).cloned().unwrap_or_default();
                if targets.is_empty() || top.is_empty() {
                    return 0.0;
                }
                top.iter()
                    .flat_map(|a| {
                        targets.iter().map(|b| {
                            p_relation(
                                &bbox64(a),
                                &bbox64(b),
                                pos.relation,
                                self.rules.position_threshold,
                            )
                        })
                    })
                    .product()
            });
            let p = p_count * p_color * p_position;
            features[0] += ln(p_count);
            features[1] += ln(p_color);
            features[2] += ln(p_position);
            let region = top.first().map(|o| o.bbox);
            out.push(ClauseVerdict {
                clause: format!("include[{i}]"),
                p_pass: p,
                explanation: format!(
                    "{} {}: P(≥{count}) {p_count:.3}, colour {p_color:.3}, position {p_position:.3}",
                    req.count, req.class
                ),
                region: if p < 0.5 { region } else { None },
            });
            groups.push(top);
        }
        for (i, req) in meta.exclude.iter().enumerate() {
            let objs = of(req.class);
            let k = req.count as usize;
            let p = 1.0 - objs.at_least(k);
            features[3] += ln(p);
            out.push(ClauseVerdict {
                clause: format!("exclude[{i}]"),
                p_pass: p,
                explanation: format!("fewer than {k} {}: {p:.3}", req.class),
                // The weakest object that makes one too many.
                region: (p < 0.5)
                    .then(|| objs.of.get(k.saturating_sub(1)).map(|o| o.bbox))
                    .flatten(),
            });
        }
        (out, features)
    }
}

impl Judge for EvidenceJudge {
    fn name(&self) -> &str {
        &self.name
    }

    fn judge(&self, requests: &[JudgeRequest<'_>]) -> Result<Vec<Verdict>, ModelFault> {
        // Clarity needs no detection (it follows the step); every other task looks.
        let looks: Vec<&image::RgbImage> = requests
            .iter()
            .filter(|r| r.task != JudgeTask::Clarity)
            .map(|r| r.image)
            .collect();
        let mut outputs = self.detect(&looks)?.into_iter();
        Ok(requests
            .iter()
            .map(|r| {
                if r.task == JudgeTask::Clarity {
                    return Verdict {
                        p_yes: self.clarity(r.step),
                        clauses: Vec::new(),
                    };
                }
                let objects = outputs.next().expect("one output per looked image");
                let (clauses, features) = self.clauses(r.metadata, &objects);
                let p_yes: f64 = match &self.head {
                    Some(head) => head.p_yes(&features, r.metadata.tag.as_str()),
                    None => clauses.iter().map(|c| c.p_pass).product(),
                };
                Verdict {
                    p_yes,
                    clauses: if r.task == JudgeTask::Reflect {
                        clauses
                    } else {
                        Vec::new()
                    },
                }
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::relative_position;

    /// Answers the i-th image of a batch with `outputs[i]`.
    struct FixedDetector(Vec<Vec<DetectedObject>>);

    impl Detector for FixedDetector {
        fn name(&self) -> &str {
            "fixed"
        }
        fn input_size(&self) -> u32 {
            64
        }
        fn detect(
            &self,
            images: &[image::RgbImage],
        ) -> Result<Vec<Vec<DetectedObject>>, ModelFault> {
            Ok(self.0[..images.len()].to_vec())
        }
    }

    fn obj(class: &str, score: f32, bbox: [f32; 4], color: usize) -> DetectedObject {
        let mut color_probs = [0.02; 10];
        color_probs[color] = 0.82;
        DetectedObject {
            class: ClassId::from_name(class).unwrap(),
            score,
            bbox,
            color_probs,
            mask: None,
        }
    }

    #[test]
    fn the_count_distribution_is_poisson_binomial() {
        let a = obj("dog", 0.5, [0.0; 4], 0);
        let b = obj("dog", 0.5, [0.0; 4], 0);
        let o = Objects { of: vec![&a, &b] };
        assert!((o.at_least(1) - 0.75).abs() < 1e-12);
        assert!((o.at_least(2) - 0.25).abs() < 1e-12);
        assert_eq!(o.at_least(3), 0.0);
        assert_eq!(o.at_least(0), 1.0);
    }

    #[test]
    fn relations_agree_with_the_official_rule_far_from_the_margin() {
        let left = [0.0, 20.0, 10.0, 30.0];
        let right = [40.0, 20.0, 50.0, 30.0];
        assert!(p_relation(&left, &right, Relation::LeftOf, 0.1) > 0.99);
        assert!(p_relation(&left, &right, Relation::RightOf, 0.1) < 0.01);
        assert!(p_relation(&left, &right, Relation::Above, 0.1) < 0.01);
        assert!(relative_position(&left, &right, 0.1).contains(Relation::LeftOf));
    }

    #[test]
    fn the_verdict_follows_the_image_not_the_prompt() {
        let suite = crate::Suite::official();
        // "a photo of a red ..." style prompts: find a colors prompt and a two-object prompt.
        let colors = suite
            .prompts
            .iter()
            .find(|p| p.metadata.tag == Tag::Colors)
            .unwrap();
        let inc = &colors.metadata.include[0];
        let want = crate::Color::ALL
            .iter()
            .position(|c| Some(*c) == inc.color)
            .unwrap();
        let other = (want + 1) % 10;
        let right = obj(inc.class.name(), 0.97, [10.0, 10.0, 40.0, 40.0], want);
        let wrong_colour = obj(inc.class.name(), 0.97, [10.0, 10.0, 40.0, 40.0], other);
        let judge = EvidenceJudge::new(Box::new(FixedDetector(vec![
            vec![right],
            vec![wrong_colour],
            vec![],
        ])));
        let img = image::RgbImage::new(64, 64);
        let req = |task| JudgeRequest {
            task,
            image: &img,
            metadata: &colors.metadata,
            step: None,
        };
        let v = judge
            .judge(&[
                req(JudgeTask::Final),
                req(JudgeTask::Final),
                req(JudgeTask::Reflect),
            ])
            .unwrap();
        assert!(v[0].p_yes > 0.7, "{:?}", v[0]);
        assert!(v[1].p_yes < 0.05, "{:?}", v[1]);
        assert!(v[2].p_yes < 0.02, "an empty image: {:?}", v[2]);
        assert_eq!(
            v[2].clauses.len(),
            colors.metadata.include.len() + colors.metadata.exclude.len()
        );
        assert!(v[2].clauses[0].p_pass < 0.02);
        // Clarity follows the step, not the evidence.
        let at = |step| JudgeRequest {
            task: JudgeTask::Clarity,
            image: &img,
            metadata: &colors.metadata,
            step,
        };
        let judge = judge.with_clarity_from(0.5);
        let c = judge
            .judge(&[at(Some((2, 18))), at(Some((9, 18))), at(None)])
            .unwrap();
        let clear: Vec<f64> = c.iter().map(|v| v.p_yes).collect();
        assert_eq!(clear, vec![0.0, 1.0, 1.0]);
    }
}
