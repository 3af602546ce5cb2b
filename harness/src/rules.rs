//! GenEval's correctness rules, exactly as `evaluation/evaluate_images.py` applies them.
//!
//! Input: one image's detections (any detector's) and the prompt's metadata. Output: the verdict,
//! the official reason string, a per-clause breakdown (for reflection judges) and the kept
//! detections (the official `details`).

use crate::metadata::Metadata;
use crate::npsort;
use crate::pyjson;
use crate::vocab::{ClassId, Color, Relation, Tag, NUM_CLASSES};
use serde::{Deserialize, Serialize};

/// The five thresholds of the official evaluator (its `--options`), with the official defaults.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RuleConfig {
    /// Keep a detection when its score is strictly greater (`threshold`, 0.3).
    pub threshold: f64,
    /// The same for every class of a counting prompt (`counting_threshold`, 0.9).
    pub counting_threshold: f64,
    /// At most this many detections per class, applied before NMS (`max_objects`, 16).
    pub max_objects: usize,
    /// Greedy NMS IoU threshold; exactly 1.0 disables NMS (`max_overlap`, 1.0).
    pub max_overlap: f64,
    /// Margin per axis as a fraction of the summed box sizes (`position_threshold`, 0.1).
    pub position_threshold: f64,
}

impl Default for RuleConfig {
    fn default() -> Self {
        RuleConfig {
            threshold: 0.3,
            counting_threshold: 0.9,
            max_objects: 16,
            max_overlap: 1.0,
            position_threshold: 0.1,
        }
    }
}

impl RuleConfig {
    /// Rejects settings the official code would misbehave on (NaN, negative caps).
    pub fn validate(&self) -> Result<(), String> {
        for (name, v) in [
            ("threshold", self.threshold),
            ("counting_threshold", self.counting_threshold),
            ("max_overlap", self.max_overlap),
            ("position_threshold", self.position_threshold),
        ] {
            if !v.is_finite() {
                return Err(format!("{name} must be a finite number, got {v}"));
            }
        }
        if self.max_overlap <= 0.0 {
            return Err(format!("max_overlap must be > 0, got {}", self.max_overlap));
        }
        Ok(())
    }
}

/// One detected object as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub class: ClassId,
    pub score: f64,
    /// `[x1, y1, x2, y2]` in pixels, y pointing down.
    pub bbox: [f64; 4],
    /// The colour classifier's verdict; needed only for objects a colour clause looks at.
    pub color: Option<Color>,
}

/// Which clause of the metadata an outcome belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "index")]
pub enum ClauseRef {
    Include(usize),
    Exclude(usize),
}

/// Pass/fail of one clause, with what was found (what a reflection judge learns from).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClauseOutcome {
    pub clause: ClauseRef,
    pub passed: bool,
    /// Kept detections of the clause's class (all of them; include clauses look at the top `count`).
    pub found: usize,
    /// The official failure message, when the clause failed.
    pub reason: Option<String>,
    /// Indices (into the input detections) of the objects the clause judged.
    pub objects: Vec<usize>,
}

/// The verdict on one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Judgement {
    pub correct: bool,
    /// Failure messages joined by newlines, as the official `reason`.
    pub reason: String,
    pub clauses: Vec<ClauseOutcome>,
    /// Kept detections per class, in class-label order, each list by descending score; indices
    /// into the input detections.
    pub kept: Vec<(ClassId, Vec<usize>)>,
}

impl Judgement {
    /// The official `details`: `json.dumps({class: [[x1, y1, x2, y2, score], …]})`.
    pub fn details_json(&self, detections: &[Detection]) -> String {
        let mut map = serde_json::Map::new();
        for (class, idx) in &self.kept {
            let rows: Vec<serde_json::Value> = idx
                .iter()
                .map(|&i| {
                    let d = &detections[i];
                    let [x1, y1, x2, y2] = d.bbox;
                    serde_json::json!([x1, y1, x2, y2, d.score])
                })
                .collect();
            map.insert(class.name().to_string(), serde_json::Value::Array(rows));
        }
        pyjson::dumps(&serde_json::Value::Object(map))
    }
}

/// The rules needed a colour that the detections did not carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("detection {detection} ({class}) has no colour, but include clause {clause} tests colour")]
pub struct MissingColor {
    pub detection: usize,
    pub class: ClassId,
    pub clause: usize,
}

/// Per-class filtering: score strictly above the threshold (the counting threshold for every
/// class of a counting prompt), by descending score, at most `max_objects`, then greedy NMS.
///
/// Ties keep the official order: `np.argsort(scores)[::-1]` as numpy 1.23 computes it (for up to
/// 16 detections of a class, the later of two equal scores comes first).
pub fn keep_detections(
    tag: Tag,
    detections: &[Detection],
    cfg: &RuleConfig,
) -> Vec<(ClassId, Vec<usize>)> {
    let thr = if tag == Tag::Counting {
        cfg.counting_threshold
    } else {
        cfg.threshold
    };
    let mut per_class: Vec<Vec<usize>> = vec![Vec::new(); NUM_CLASSES];
    for (i, d) in detections.iter().enumerate() {
        per_class[d.class.index()].push(i);
    }
    let mut kept = Vec::new();
    for (class, idx) in ClassId::all().zip(per_class) {
        if idx.is_empty() {
            continue;
        }
        // `np.argsort(scores)[::-1]`, with numpy's own (unstable) tie order.
        let scores: Vec<f64> = idx.iter().map(|&i| detections[i].score).collect();
        let idx: Vec<usize> = npsort::argsort(&scores)
            .into_iter()
            .rev()
            .map(|k| idx[k])
            .collect();
        let mut ordering: Vec<usize> = idx
            .into_iter()
            .filter(|&i| detections[i].score > thr)
            .take(cfg.max_objects)
            .collect();
        let mut chosen = Vec::new();
        while !ordering.is_empty() {
            let best = ordering.remove(0);
            chosen.push(best);
            if cfg.max_overlap != 1.0 {
                ordering.retain(|&o| {
                    official_iou(&detections[best].bbox, &detections[o].bbox) < cfg.max_overlap
                });
            }
        }
        if !chosen.is_empty() {
            kept.push((class, chosen));
        }
    }
    kept
}

/// The official (unused by default) IoU, with +1 on widths and heights.
pub fn official_iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let area =
        |x1: f64, y1: f64, x2: f64, y2: f64| (x2 - x1 + 1.0).max(0.0) * (y2 - y1 + 1.0).max(0.0);
    let inter = area(
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    );
    let union = area(a[0], a[1], a[2], a[3]) + area(b[0], b[1], b[2], b[3]) - inter;
    if union != 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// A set of relations (at most one horizontal and one vertical).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Relations(u8);

impl Relations {
    pub fn contains(self, r: Relation) -> bool {
        self.0 & (1 << r as u8) != 0
    }

    fn insert(&mut self, r: Relation) {
        self.0 |= 1 << r as u8;
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Members in the order left of, right of, above, below.
    pub fn iter(self) -> impl Iterator<Item = Relation> {
        Relation::ALL
            .iter()
            .copied()
            .filter(move |r| self.contains(*r))
    }
}

/// The official `relative_position(A, B)`: where A is relative to B.
///
/// Offsets between box centres shrink by `threshold·(size A + size B)` per axis; if both revised
/// offsets are below 1e-3 there is no relation; otherwise each axis, normalised by the length of
/// the *original* offset, gives a relation beyond ±0.5.
pub fn relative_position(a: &[f64; 4], b: &[f64; 4], threshold: f64) -> Relations {
    let centre = |bx: &[f64; 4]| [(bx[0] + bx[2]) / 2.0, (bx[1] + bx[3]) / 2.0];
    let dims = |bx: &[f64; 4]| [(bx[2] - bx[0]).abs(), (bx[3] - bx[1]).abs()];
    let (ca, cb, da, db) = (centre(a), centre(b), dims(a), dims(b));
    let offset = [ca[0] - cb[0], ca[1] - cb[1]];
    let mut revised = [0.0; 2];
    for k in 0..2 {
        let shrunk = (offset[k].abs() - threshold * (da[k] + db[k])).max(0.0);
        revised[k] = shrunk * np_sign(offset[k]);
    }
    let mut rels = Relations::default();
    if revised[0].abs() < 1e-3 && revised[1].abs() < 1e-3 {
        return rels;
    }
    let norm = (offset[0] * offset[0] + offset[1] * offset[1]).sqrt();
    let (dx, dy) = (revised[0] / norm, revised[1] / norm);
    if dx < -0.5 {
        rels.insert(Relation::LeftOf);
    }
    if dx > 0.5 {
        rels.insert(Relation::RightOf);
    }
    if dy < -0.5 {
        rels.insert(Relation::Above);
    }
    if dy > 0.5 {
        rels.insert(Relation::Below);
    }
    rels
}

/// `np.sign`: 0 for 0 (Rust's `signum` gives ±1 for ±0).
fn np_sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Judges one image: filtering, then the include clauses in order (count, colour of the top
/// `count`, position against every object of the referenced group), then the exclude clauses.
pub fn judge(
    metadata: &Metadata,
    detections: &[Detection],
    cfg: &RuleConfig,
) -> Result<Judgement, MissingColor> {
    let kept = keep_detections(metadata.tag, detections, cfg);
    let kept_of = |c: ClassId| -> &[usize] {
        kept.iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    };

    let mut correct = true;
    let mut reasons: Vec<String> = Vec::new();
    let mut clauses = Vec::new();
    // The objects each include clause matched, or None when it failed.
    let mut groups: Vec<Option<Vec<usize>>> = Vec::new();

    for (ci, req) in metadata.include.iter().enumerate() {
        let all = kept_of(req.class);
        let count = req.count as usize;
        let found: Vec<usize> = all.iter().copied().take(count).collect();
        let mut reason = None;
        if found.len() < count {
            reason = Some(format!(
                "expected {}>={}, found {}",
                req.class,
                req.count,
                found.len()
            ));
        } else {
            if let Some(want) = req.color {
                let mut colors = Vec::with_capacity(found.len());
                for &i in &found {
                    colors.push(detections[i].color.ok_or(MissingColor {
                        detection: i,
                        class: req.class,
                        clause: ci,
                    })?);
                }
                let n_want = colors.iter().filter(|c| **c == want).count();
                if n_want < count {
                    let tally: Vec<String> = Color::ALL
                        .iter()
                        .filter(|c| colors.contains(c))
                        .map(|c| format!("{} {}", colors.iter().filter(|x| *x == c).count(), c))
                        .collect();
                    reason = Some(format!(
                        "expected {want} {}>={}, found {n_want} {want}; and {}",
                        req.class,
                        req.count,
                        tally.join(", ")
                    ));
                }
            }
            if let (Some(pos), None) = (req.position, &reason) {
                match groups.get(pos.group).and_then(Option::as_ref) {
                    None => {
                        reason = Some(format!(
                            "no target for {} to be {}",
                            req.class, pos.relation
                        ))
                    }
                    Some(targets) => {
                        'objects: for &a in &found {
                            for &b in targets {
                                let rels = relative_position(
                                    &detections[a].bbox,
                                    &detections[b].bbox,
                                    cfg.position_threshold,
                                );
                                if !rels.contains(pos.relation) {
                                    let names: Vec<&str> =
                                        rels.iter().map(Relation::as_str).collect();
                                    reason = Some(format!(
                                        "expected {} {} target, found {} target",
                                        req.class,
                                        pos.relation,
                                        names.join(" and ")
                                    ));
                                    break 'objects;
                                }
                            }
                        }
                    }
                }
            }
        }
        let passed = reason.is_none();
        correct &= passed;
        if let Some(r) = &reason {
            reasons.push(r.clone());
        }
        groups.push(passed.then(|| found.clone()));
        clauses.push(ClauseOutcome {
            clause: ClauseRef::Include(ci),
            passed,
            found: all.len(),
            reason,
            objects: found,
        });
    }

    for (ci, req) in metadata.exclude.iter().enumerate() {
        let all = kept_of(req.class);
        let passed = all.len() < req.count as usize;
        let reason =
            (!passed).then(|| format!("expected {}<{}, found {}", req.class, req.count, all.len()));
        if let Some(r) = &reason {
            reasons.push(r.clone());
        }
        correct &= passed;
        clauses.push(ClauseOutcome {
            clause: ClauseRef::Exclude(ci),
            passed,
            found: all.len(),
            reason,
            objects: all.to_vec(),
        });
    }

    Ok(Judgement {
        correct,
        reason: reasons.join("\n"),
        clauses,
        kept,
    })
}
