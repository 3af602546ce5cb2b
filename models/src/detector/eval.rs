//! Validation of a trained detector on held-out renders: precision and recall per class and per
//! colour, calibration (a reliability table), false positives on object-free images, and the
//! GenEval verdicts of the ground-truth suite scored through the detector.

use super::training::iou;
use super::BurnDetector;
use burn::prelude::Backend;
use harness::detector::{DetectedObject, Detector};
use harness::results::ResultRow;
use harness::rules::{self, RuleConfig};
use harness::summary::Summary;
use harness::{ClassId, Color, Suite};
use rayon::prelude::*;
use std::fmt::Write;
use world::scene::{random_scene, Scene, Style};

/// Counts for precision/recall of one class or colour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub true_pos: usize,
    pub false_pos: usize,
    pub false_neg: usize,
}

impl Counts {
    pub fn precision(&self) -> f64 {
        self.true_pos as f64 / (self.true_pos + self.false_pos).max(1) as f64
    }
    pub fn recall(&self) -> f64 {
        self.true_pos as f64 / (self.true_pos + self.false_neg).max(1) as f64
    }
}

/// One bin of the reliability table.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ReliabilityBin {
    pub lo: f64,
    pub hi: f64,
    pub count: usize,
    pub mean_score: f64,
    pub matched: usize,
}

/// Everything `docs/detector.md` shows.
#[derive(Debug, Clone)]
pub struct DetectorEval {
    pub images: usize,
    pub objects: usize,
    pub per_class: Vec<(ClassId, Counts)>,
    /// Per true colour: detected objects of that colour (class matched) and how many got the
    /// right colour.
    pub per_color: Vec<(Color, Counts)>,
    pub reliability: Vec<ReliabilityBin>,
    /// All classes at GenEval's counting threshold (score > 0.9): what counting prompts see.
    pub strict: Counts,
    pub empty_images: usize,
    pub empty_fp_03: usize,
    pub empty_fp_09: usize,
    /// GenEval rows of the ground-truth suite scored through the detector.
    pub suite_rows: Vec<ResultRow>,
}

/// GenEval's threshold for counting prompts.
const STRICT: f64 = 0.9;

/// Evaluates `det` on `n` held-out random scenes (seed `seed`), `n_empty` object-free images,
/// and the ground-truth suite (`images_per_prompt` per official prompt, suite seed `suite_seed`).
pub fn evaluate<B: Backend>(
    det: &BurnDetector<B>,
    seed: u64,
    n: usize,
    n_empty: usize,
    images_per_prompt: usize,
    suite_seed: u64,
) -> Result<DetectorEval, String>
where
    BurnDetector<B>: Detector,
{
    let threshold = 0.3;
    let mut per_class = vec![Counts::default(); 80];
    let mut per_color = vec![Counts::default(); 10];
    let mut bins: Vec<ReliabilityBin> = (0..10)
        .map(|i| ReliabilityBin {
            lo: i as f64 / 10.0,
            hi: (i + 1) as f64 / 10.0,
            ..Default::default()
        })
        .collect();
    let mut objects = 0;
    let mut strict = Counts::default();
    for chunk in (0..n).collect::<Vec<_>>().chunks(128) {
        let scenes: Vec<Scene> = chunk
            .par_iter()
            .map(|&i| random_scene(harness::rng::derive_seed(seed, &[i as u64]), 1 + i % 5))
            .collect();
        let images: Vec<_> = scenes.iter().map(|s| s.image.clone()).collect();
        let dets = det.detect(&images)?;
        for (scene, found) in scenes.iter().zip(&dets) {
            objects += scene.objects.len();
            let matched = match_objects(scene, found);
            for (k, d) in found.iter().enumerate() {
                let bin = ((d.score as f64 * 10.0) as usize).min(9);
                bins[bin].count += 1;
                bins[bin].mean_score += d.score as f64;
                let hit = matched.contains(&Some(k));
                if hit {
                    bins[bin].matched += 1;
                }
                if d.score > threshold as f32 && !hit {
                    per_class[d.class.index()].false_pos += 1;
                }
                if d.score > STRICT as f32 && !hit {
                    strict.false_pos += 1;
                }
            }
            for (o, m) in scene.objects.iter().zip(&matched) {
                match m {
                    Some(k) if found[*k].score > STRICT as f32 => strict.true_pos += 1,
                    _ => strict.false_neg += 1,
                }
                match m {
                    Some(k) if found[*k].score > threshold as f32 => {
                        per_class[o.class.index()].true_pos += 1;
                        let predicted = Color::argmax(&found[*k].color_probs);
                        if predicted == Some(o.color) {
                            per_color[o.color.index()].true_pos += 1;
                        } else {
                            per_color[o.color.index()].false_neg += 1;
                            if let Some(p) = predicted {
                                per_color[p.index()].false_pos += 1;
                            }
                        }
                    }
                    _ => per_class[o.class.index()].false_neg += 1,
                }
            }
        }
    }
    for b in &mut bins {
        if b.count > 0 {
            b.mean_score /= b.count as f64;
        }
    }
    // Object-free images.
    let empties: Vec<_> = (0..n_empty)
        .into_par_iter()
        .map(|i| random_scene(harness::rng::derive_seed(seed, &[1 << 40, i as u64]), 0).image)
        .collect();
    let mut fp03 = 0;
    let mut fp09 = 0;
    for chunk in empties.chunks(128) {
        for found in det.detect(chunk)? {
            fp03 += found.iter().filter(|d| d.score > 0.3).count();
            fp09 += found.iter().filter(|d| d.score > 0.9).count();
        }
    }
    let suite_rows = score_suite(det, images_per_prompt, suite_seed)?;
    Ok(DetectorEval {
        images: n,
        objects,
        per_class: ClassId::all().zip(per_class).collect(),
        per_color: Color::ALL.iter().copied().zip(per_color).collect(),
        reliability: bins,
        strict,
        empty_images: n_empty,
        empty_fp_03: fp03,
        empty_fp_09: fp09,
        suite_rows,
    })
}

/// For each true object, the index of the detection matched to it (same class, IoU ≥ 0.5,
/// greedy by descending score).
fn match_objects(scene: &Scene, found: &[DetectedObject]) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..found.len()).collect();
    order.sort_by(|&a, &b| found[b].score.total_cmp(&found[a].score));
    let mut matched = vec![None; scene.objects.len()];
    for k in order {
        let d = &found[k];
        let best = scene
            .objects
            .iter()
            .enumerate()
            .filter(|(j, o)| matched[*j].is_none() && o.class == d.class)
            .map(|(j, o)| (j, iou(&d.bbox, &o.bbox)))
            .filter(|(_, v)| *v >= 0.5)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        if let Some((j, _)) = best {
            matched[j] = Some(k);
        }
    }
    matched
}

/// The official prompts rendered as in `world suite` and judged through the detector.
pub fn score_suite<B: Backend>(
    det: &BurnDetector<B>,
    images_per_prompt: usize,
    seed: u64,
) -> Result<Vec<ResultRow>, String>
where
    BurnDetector<B>: Detector,
{
    score_suite_with(
        det,
        images_per_prompt,
        seed,
        Style::Natural,
        &mut |images| Ok(images),
    )
}

/// [`score_suite`] with the ground-truth renders passed through `transform` first (e.g. a
/// tokenizer's encode → decode) — how much of the GenEval score survives the transform.
pub fn score_suite_with(
    det: &dyn Detector,
    images_per_prompt: usize,
    seed: u64,
    style: Style,
    transform: &mut dyn FnMut(Vec<image::RgbImage>) -> Result<Vec<image::RgbImage>, String>,
) -> Result<Vec<ResultRow>, String> {
    let suite = Suite::official();
    let cfg = RuleConfig::default();
    let jobs: Vec<(usize, usize)> = suite
        .prompts
        .iter()
        .flat_map(|p| (0..images_per_prompt).map(move |i| (p.index, i)))
        .collect();
    let mut rows = Vec::with_capacity(jobs.len());
    for chunk in jobs.chunks(128) {
        let scenes: Vec<Scene> = chunk
            .par_iter()
            .map(|&(p, i)| {
                world::dataset::suite_scene(&suite.prompts[p], seed, i, style)
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let images = transform(scenes.iter().map(|s| s.image.clone()).collect())?;
        for (&(p, _), found) in chunk.iter().zip(det.detect(&images)?) {
            let meta = &suite.prompts[p].metadata;
            let dets = found
                .iter()
                .map(DetectedObject::to_detection)
                .collect::<Result<Vec<_>, _>>()?;
            let j = rules::judge(meta, &dets, &cfg).map_err(|e| e.to_string())?;
            rows.push(ResultRow {
                tag: meta.tag.as_str().to_string(),
                correct: j.correct,
                metadata: meta.to_json_string(),
            });
        }
    }
    Ok(rows)
}

/// The Markdown report of a detector validation (`evalcot eval detector`, docs/detector.md):
/// `summary` is the ground-truth suite's GenEval summary through the detector, `made_by` the
/// line that says which command made it.
pub fn markdown(
    ev: &DetectorEval,
    summary: &Summary,
    name: &str,
    made_by: &str,
    suite_images: usize,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Detector validation: {name}\n");
    let _ = writeln!(s, "{made_by}\n");
    let _ = writeln!(
        s,
        "## GenEval score of the ground-truth suite through the detector\n"
    );
    let _ = writeln!(s, "553 official prompts × {} renders (suite seed 1234), scored with the exact GenEval rules:\n", suite_images);
    let _ = writeln!(s, "```\n{}```\n", summary.render_official());
    let _ = writeln!(
        s,
        "| tag | correct | images | accuracy |\n|---|---|---|---|"
    );
    for t in &summary.tags {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} |",
            t.tag,
            t.correct,
            t.total,
            t.accuracy()
        );
    }
    let _ = writeln!(
        s,
        "| **overall** (mean over tags) | | | **{:.4}** |\n",
        summary.overall()
    );
    let _ = writeln!(
        s,
        "## Held-out renders: {} images, {} objects (score > 0.3, same class, IoU ≥ 0.5)\n",
        ev.images, ev.objects
    );
    let total = ev.per_class.iter().fold((0, 0, 0), |a, (_, c)| {
        (a.0 + c.true_pos, a.1 + c.false_pos, a.2 + c.false_neg)
    });
    let _ = writeln!(
        s,
        "All classes: precision {:.4}, recall {:.4} ({} true positives, {} false positives, {} missed).\n",
        total.0 as f64 / (total.0 + total.1).max(1) as f64,
        total.0 as f64 / (total.0 + total.2).max(1) as f64,
        total.0, total.1, total.2
    );
    let _ = writeln!(
        s,
        "At GenEval's counting threshold (score > 0.9): precision {:.4}, recall {:.4} ({} true positives, {} false positives, {} missed).\n",
        ev.strict.precision(),
        ev.strict.recall(),
        ev.strict.true_pos, ev.strict.false_pos, ev.strict.false_neg
    );
    let _ = writeln!(
        s,
        "### Per colour (objects found with the right class; colour predicted right or wrong)\n"
    );
    let _ = writeln!(s, "| colour | right | wrong | predicted wrongly as this | precision | recall |\n|---|---|---|---|---|---|");
    for (c, n) in &ev.per_color {
        let _ = writeln!(
            s,
            "| {c} | {} | {} | {} | {:.3} | {:.3} |",
            n.true_pos,
            n.false_neg,
            n.false_pos,
            n.precision(),
            n.recall()
        );
    }
    let _ = writeln!(
        s,
        "\n### Calibration (reliability table, all decoded detections)\n"
    );
    let _ = writeln!(s, "| score bin | detections | mean score | fraction matched to a true object |\n|---|---|---|---|");
    for b in &ev.reliability {
        let frac = if b.count > 0 {
            format!("{:.3}", b.matched as f64 / b.count as f64)
        } else {
            "–".into()
        };
        let _ = writeln!(
            s,
            "| {:.1}–{:.1} | {} | {:.3} | {} |",
            b.lo, b.hi, b.count, b.mean_score, frac
        );
    }
    let _ = writeln!(
        s,
        "\n### False positives on {} object-free images\n",
        ev.empty_images
    );
    let _ = writeln!(
        s,
        "{} detections with score > 0.3 ({:.4} per image), {} with score > 0.9.\n",
        ev.empty_fp_03,
        ev.empty_fp_03 as f64 / ev.empty_images.max(1) as f64,
        ev.empty_fp_09
    );
    let _ = writeln!(s, "### Per class\n");
    let _ = writeln!(
        s,
        "| class | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|"
    );
    for (c, n) in &ev.per_class {
        let _ = writeln!(
            s,
            "| {c} | {} | {} | {} | {:.3} | {:.3} |",
            n.true_pos,
            n.false_pos,
            n.false_neg,
            n.precision(),
            n.recall()
        );
    }
    s
}
