//! Best-of-N scaling curves (the paper's Fig. 3) from one set of candidates: for N′ in
//! [`N_PRIMES`] (and the run's own N), the GenEval overall score had the strategy picked among
//! the first N′ candidates only. ORM picks the argmax of `trace.p_yes` over the first N′ (the
//! first index wins ties, as `harness::run::argmax`); the oracle is correct when any of the first N′
//! is correct (`trace.candidate_correct`). N′ = 1 is the first candidate, i.e. plain sampling.
//! Runs without the data (other strategies, older runs, failed images) are skipped with a note.

use crate::run::Run;
use crate::tables::f3;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The N′ of the paper's Fig. 3 (each drawn where it is at most the run's N).
pub const N_PRIMES: [usize; 6] = [1, 2, 4, 8, 16, 20];

/// One N′ of one curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    pub n: usize,
    /// `(tag, images, correct)` in order of first appearance in the run.
    pub tags: Vec<(String, usize, usize)>,
    /// Mean over tags of per-tag image accuracy, as the report's overall.
    pub overall: f64,
}

/// One run's curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Index of the run among the report's runs (its colour in every plot).
    pub run: usize,
    pub label: String,
    pub dir: String,
    pub strategy: String,
    /// Candidates per image the run recorded.
    pub n: usize,
    /// In increasing N′; the first is N′ = 1.
    pub points: Vec<Point>,
}

/// The curves of a report, and why runs have none.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scaling {
    pub curves: Vec<Curve>,
    pub notes: Vec<String>,
}

/// Why no curve at all is drawn.
pub const NO_SCALING_CURVES: &str = "Best-of-N scaling curves (overall accuracy against N′ from one set of candidates) are not drawn: no run records every candidate's GenEval verdict (generation.jsonl trace.candidate_correct, and for ORM trace.p_yes, as orm and oracle runs write them).";

enum Rule {
    /// Argmax of `p_yes` over the first N′.
    Orm,
    /// Any of the first N′ correct.
    Oracle,
}

impl Scaling {
    pub fn compute(runs: &[Run]) -> Scaling {
        let mut s = Scaling::default();
        for (j, r) in runs.iter().enumerate() {
            match curve(j, r) {
                Ok(Some(c)) => s.curves.push(c),
                Ok(None) => {}
                Err(why) => s.notes.push(format!(
                    "No best-of-N scaling curve for {} ({}): {why}.",
                    r.label,
                    r.dir.display()
                )),
            }
        }
        if s.curves.is_empty() {
            s.notes.insert(0, NO_SCALING_CURVES.to_string());
        }
        s
    }

    /// Every N′ some curve has, in increasing order.
    pub fn n_primes(&self) -> Vec<usize> {
        let mut ns: Vec<usize> = self
            .curves
            .iter()
            .flat_map(|c| c.points.iter().map(|p| p.n))
            .collect();
        ns.sort_unstable();
        ns.dedup();
        ns
    }

    /// A Markdown section: overall score per run and N′.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        if self.curves.is_empty() {
            return s;
        }
        let ns = self.n_primes();
        let _ = writeln!(s, "\n## Best-of-N scaling\n");
        let _ = writeln!(
            s,
            "Overall accuracy (mean over tags) when the strategy picks among the first N′ of the run's candidates (ORM: highest verifier score; oracle: any correct). N′ = 1 is the first candidate, i.e. plain sampling. Also in scaling.csv and scaling.png/.svg.\n"
        );
        let _ = writeln!(
            s,
            "| run | N | {} |",
            ns.iter()
                .map(|n| format!("N′={n}"))
                .collect::<Vec<_>>()
                .join(" | ")
        );
        let _ = writeln!(s, "|---|---:|{}", "---:|".repeat(ns.len()));
        for c in &self.curves {
            let cells: Vec<String> = ns
                .iter()
                .map(|n| {
                    c.points
                        .iter()
                        .find(|p| p.n == *n)
                        .map_or("—".into(), |p| f3(p.overall))
                })
                .collect();
            let _ = writeln!(
                s,
                "| {} | {} | {} |",
                c.label.replace('|', "\\|"),
                c.n,
                cells.join(" | ")
            );
        }
        s
    }

    /// Long CSV: per curve and N′, one row per tag, then the `overall` row.
    pub fn csv(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "run,dir,strategy,n,n_prime,tag,images,correct,accuracy");
        for c in &self.curves {
            for p in &c.points {
                let head = format!(
                    "{},{},{},{},{}",
                    csv_field(&c.label),
                    csv_field(&c.dir),
                    csv_field(&c.strategy),
                    c.n,
                    p.n
                );
                let (mut images, mut correct) = (0, 0);
                for (tag, i, k) in &p.tags {
                    images += i;
                    correct += k;
                    let _ = writeln!(
                        s,
                        "{head},{},{i},{k},{:.6}",
                        csv_field(tag),
                        *k as f64 / (*i).max(1) as f64
                    );
                }
                let _ = writeln!(s, "{head},overall,{images},{correct},{:.6}", p.overall);
            }
        }
        s
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `Ok(None)`: the strategy has no re-pick rule and records nothing to re-pick (e.g. baseline).
fn curve(index: usize, r: &Run) -> Result<Option<Curve>, String> {
    let rule = match r.meta.strategy.as_str() {
        "orm" => Rule::Orm,
        "oracle" => Rule::Oracle,
        other => {
            return if r.candidates.values().any(|c| c.correct.is_some()) {
                Err(format!(
                    "its strategy {other:?} has no best-of-N′ re-pick rule (only orm and oracle)"
                ))
            } else {
                Ok(None)
            };
        }
    };
    // Per image: whether each candidate is correct, and ORM's scores.
    let mut n = None;
    let mut per_image: Vec<(&str, &[bool], &[f64])> = Vec::with_capacity(r.images.len());
    for img in &r.images {
        let at = format!("prompt {} image {}", img.prompt_index, img.image_index);
        let Some(t) = r.candidates.get(&img.key()) else {
            return Err(format!("{at} has no generation record"));
        };
        if t.failed {
            return Err(format!("{at} failed (its record has an `error`)"));
        }
        let Some(correct) = t.correct.as_deref() else {
            return Err(format!(
                "{at} has no trace.candidate_correct (an array of booleans; runs written before it was recorded, or without the evaluation detector, lack it)"
            ));
        };
        if correct.is_empty() {
            return Err(format!("{at} has an empty trace.candidate_correct"));
        }
        let expected = *n.get_or_insert(correct.len());
        if correct.len() != expected {
            return Err(format!(
                "{at} has {} candidates in trace.candidate_correct, earlier images {expected}",
                correct.len()
            ));
        }
        let scores: &[f64] = match rule {
            Rule::Oracle => &[],
            Rule::Orm => match t.p_yes.as_deref() {
                Some(p) if p.len() == correct.len() => p,
                Some(p) => {
                    return Err(format!(
                        "{at} has {} scores in trace.p_yes but {} candidates in trace.candidate_correct",
                        p.len(),
                        correct.len()
                    ))
                }
                None => {
                    return Err(format!(
                        "{at} has no trace.p_yes (an array of numbers)"
                    ))
                }
            },
        };
        per_image.push((img.tag.as_str(), correct, scores));
    }
    let Some(n) = n else {
        return Err("it has no images".into());
    };
    let mut ns: Vec<usize> = N_PRIMES.iter().copied().filter(|&k| k <= n).collect();
    if !ns.contains(&n) {
        ns.push(n);
    }
    let points = ns
        .into_iter()
        .map(|k| {
            let mut tags: Vec<(String, usize, usize)> = Vec::new();
            let mut slot: BTreeMap<&str, usize> = BTreeMap::new();
            for (tag, correct, scores) in &per_image {
                let ok = match rule {
                    Rule::Oracle => correct[..k].iter().any(|&c| c),
                    Rule::Orm => correct[harness::run::argmax(&scores[..k])],
                };
                let i = *slot.entry(tag).or_insert_with(|| {
                    tags.push((tag.to_string(), 0, 0));
                    tags.len() - 1
                });
                tags[i].1 += 1;
                tags[i].2 += ok as usize;
            }
            let overall = tags
                .iter()
                .map(|(_, i, c)| *c as f64 / *i as f64)
                .sum::<f64>()
                / tags.len() as f64;
            Point {
                n: k,
                tags,
                overall,
            }
        })
        .collect();
    Ok(Some(Curve {
        run: index,
        label: r.label.clone(),
        dir: r.dir.display().to_string(),
        strategy: r.meta.strategy.clone(),
        n,
        points,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::{CandidateTrace, ImageResult, RunMeta};
    use std::path::PathBuf;

    fn run(strategy: &str, traces: &[(usize, &str, CandidateTrace)]) -> Run {
        let mut r = Run {
            dir: PathBuf::from(format!("runs/{strategy}")),
            label: strategy.into(),
            meta: RunMeta {
                strategy: strategy.into(),
                n: 4,
                ..RunMeta::default()
            },
            images: Vec::new(),
            compute: BTreeMap::new(),
            failed: 0,
            candidates: BTreeMap::new(),
            seconds: BTreeMap::new(),
            scored_by: None,
        };
        for (p, tag, t) in traces {
            r.images.push(ImageResult {
                prompt_index: *p,
                image_index: 0,
                tag: tag.to_string(),
                prompt: String::new(),
                correct: false,
                reason: String::new(),
            });
            r.compute.insert((*p, 0), Default::default());
            r.candidates.insert((*p, 0), t.clone());
        }
        r
    }

    fn trace(correct: [bool; 4], p_yes: Option<[f64; 4]>) -> CandidateTrace {
        CandidateTrace {
            p_yes: p_yes.map(|p| p.to_vec()),
            correct: Some(correct.to_vec()),
            failed: false,
        }
    }

    fn overall(c: &Curve) -> Vec<(usize, f64)> {
        c.points.iter().map(|p| (p.n, p.overall)).collect()
    }

    #[test]
    fn curves_repick_among_the_first_candidates() {
        let (t, f) = (true, false);
        // Tag a: prompts 0 and 1; tag b: prompt 2.
        let orm = run(
            "orm",
            &[
                // N′=1: wrong; N′=2: candidate 1 (0.9) right; N′=4: candidate 3 (0.95) wrong.
                (0, "a", trace([f, t, f, f], Some([0.2, 0.9, 0.1, 0.95]))),
                // Ties: the first index wins, so candidate 0 (right) throughout.
                (1, "a", trace([t, f, f, f], Some([0.5, 0.5, 0.5, 0.5]))),
                // N′=1, 2: wrong; N′=4: candidate 2 (0.8) right.
                (2, "b", trace([f, f, t, f], Some([0.3, 0.1, 0.8, 0.2]))),
            ],
        );
        let oracle = run(
            "oracle",
            &[
                (0, "a", trace([f, t, f, f], None)),
                (1, "a", trace([f, f, f, f], None)),
                (2, "b", trace([f, f, f, t], None)),
            ],
        );
        let base = run("baseline", &[(0, "a", CandidateTrace::default())]);
        let s = Scaling::compute(&[base, orm, oracle]);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
        assert_eq!(s.curves.len(), 2);
        let (orm, oracle) = (&s.curves[0], &s.curves[1]);
        assert_eq!((orm.run, orm.n, oracle.run), (1, 4, 2));
        // ORM: N′=1 a 1/2, b 0 → 0.25; N′=2 a 2/2, b 0 → 0.5; N′=4 a 1/2, b 1 → 0.75.
        assert_eq!(overall(orm), [(1, 0.25), (2, 0.5), (4, 0.75)]);
        assert_eq!(
            orm.points[1].tags,
            [("a".to_string(), 2, 2), ("b".to_string(), 1, 0)]
        );
        // Oracle: N′=1 0; N′=2 a 1/2 → 0.25; N′=4 a 1/2, b 1 → 0.75 (monotone).
        assert_eq!(overall(oracle), [(1, 0.0), (2, 0.25), (4, 0.75)]);
        assert_eq!(s.n_primes(), [1, 2, 4]);
        let md = s.markdown();
        assert!(md.contains("| run | N | N′=1 | N′=2 | N′=4 |"), "{md}");
        assert!(md.contains("| orm | 4 | 0.250 | 0.500 | 0.750 |"), "{md}");
        let csv = s.csv();
        assert_eq!(csv.lines().count(), 1 + 3 * 3 + 3 * 3);
        assert!(
            csv.contains("orm,runs/orm,orm,4,2,a,2,2,1.000000\n"),
            "{csv}"
        );
        assert!(csv.contains("oracle,runs/oracle,oracle,4,4,overall,3,2,0.750000\n"));
    }

    #[test]
    fn runs_without_the_data_are_skipped_with_a_note() {
        let (t, f) = (true, false);
        let mut failed = trace([t, f, f, f], None);
        failed.failed = true;
        let no_scores = run("orm", &[(0, "a", trace([t, f, f, f], None))]);
        let errored = run("oracle", &[(0, "a", failed)]);
        let ragged = run(
            "oracle",
            &[
                (0, "a", trace([t, f, f, f], None)),
                (
                    1,
                    "a",
                    CandidateTrace {
                        correct: Some(vec![t, f]),
                        ..CandidateTrace::default()
                    },
                ),
            ],
        );
        let old = run("orm", &[(0, "a", CandidateTrace::default())]);
        let s = Scaling::compute(&[no_scores, errored, ragged, old]);
        assert!(s.curves.is_empty());
        assert_eq!(s.notes.len(), 5, "{:?}", s.notes);
        assert_eq!(s.notes[0], NO_SCALING_CURVES);
        assert!(s.notes[1].contains("trace.p_yes"), "{}", s.notes[1]);
        assert!(s.notes[2].contains("`error`"), "{}", s.notes[2]);
        assert!(s.notes[3].contains("prompt 1 image 0 has 2 candidates"));
        assert!(s.notes[4].contains("no trace.candidate_correct"));
        assert!(s.markdown().is_empty());
        // An odd N ends the curve at N.
        let six = run(
            "oracle",
            &[(
                0,
                "a",
                CandidateTrace {
                    correct: Some(vec![f, f, f, f, f, t]),
                    ..CandidateTrace::default()
                },
            )],
        );
        let s = Scaling::compute(&[six]);
        assert_eq!(
            overall(&s.curves[0]),
            [(1, 0.0), (2, 0.0), (4, 0.0), (6, 1.0)]
        );
    }
}
