//! `evalcot reproduce paper`: the paper's Tables 1, 2, 3 and 5 as a matrix of evalcot runs
//! (`configs/paper/matrix.yaml`), and `docs/paper.md` — our numbers beside the paper's, the
//! order of the rows in each table, and the paper's claims checked against our intervals.
//! Running the experiments is the binary's job; this module reads the matrix and renders.

use crate::tables::RunStats;
use harness::error::{Error, Location, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;

/// The paper's column order.
pub const TAGS: [&str; 6] = [
    "single_object",
    "two_object",
    "counting",
    "colors",
    "position",
    "color_attr",
];
const HEADS: [&str; 7] = ["Single", "Two", "Count", "Colors", "Pos", "Attr", "Overall"];

/// `configs/paper/matrix.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matrix {
    /// The report's heading (the paper tables' when absent).
    #[serde(default)]
    pub title: Option<String>,
    /// A paragraph after the standard one: what this matrix asks.
    #[serde(default)]
    pub intro: Option<String>,
    /// Overrides of the run configurations per scale (`small`, `full`).
    pub scales: BTreeMap<String, ScaleOverrides>,
    pub tables: Vec<TableSpec>,
    /// Claims of the paper checked on our numbers: "A > B" or "A ≈ B" over row ids.
    #[serde(default)]
    pub claims: Vec<Claim>,
}

#[derive(Debug, Clone, Default, Deserialize, serde::Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScaleOverrides {
    pub per_tag: Option<usize>,
    pub images_per_prompt: Option<usize>,
    pub n: Option<usize>,
    /// Generation steps (the generator's default when absent).
    pub steps: Option<usize>,
    /// Further overrides for the rows a bank cannot serve (PRM and PARM++ change
    /// trajectories), where their live cost needs a smaller scale; the header says which rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<Box<ScaleOverrides>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSpec {
    pub title: String,
    pub rows: Vec<RowSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowSpec {
    pub id: String,
    /// The paper's row label (or evalcot's, for rows the paper lacks).
    pub label: String,
    /// A run YAML beside the matrix; absent where evalcot has no equivalent (then `why`).
    #[serde(default)]
    pub config: Option<String>,
    /// Single, Two, Count, Colors, Position, Attr, Overall from the paper; absent for evalcot's
    /// own rows (the oracle).
    #[serde(default)]
    pub paper: Option<[f64; 7]>,
    /// How our row differs from the paper's, or why there is none.
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub text: String,
    /// Row ids: `better` is claimed above `than` (or level with it when `level: true`).
    pub better: String,
    pub than: String,
    #[serde(default)]
    pub level: bool,
}

impl Matrix {
    /// Reads and checks the matrix: unique ids, every claim naming known rows.
    pub fn load(path: &Path) -> Result<Matrix> {
        let m: Matrix = harness::config::load_yaml(path)?;
        let at = |msg: String| Error::invalid(Location::file(path.display().to_string()), msg);
        let mut ids = std::collections::BTreeSet::new();
        for t in &m.tables {
            for r in &t.rows {
                if !ids.insert(r.id.clone()) {
                    return Err(at(format!("row id {:?} appears twice", r.id)));
                }
                if r.config.is_none() && r.note.is_none() {
                    return Err(at(format!(
                        "row {:?}: without a config it needs a note saying why",
                        r.id
                    )));
                }
            }
        }
        for c in &m.claims {
            for id in [&c.better, &c.than] {
                if !ids.contains(id) {
                    return Err(at(format!("claim {:?} names unknown row {id:?}", c.text)));
                }
            }
        }
        Ok(m)
    }

    pub fn rows(&self) -> impl Iterator<Item = &RowSpec> {
        self.tables.iter().flat_map(|t| t.rows.iter())
    }
}

/// What became of one row's run.
#[derive(Debug, Clone)]
pub enum Outcome {
    Ran {
        stats: Box<RunStats>,
        dir: String,
        config: String,
        /// Every scored image, for paired comparisons on the same (prompt, image) keys.
        images: Vec<crate::run::ImageResult>,
        /// Seed, detector and where the candidates came from, for the report's header.
        provenance: Provenance,
    },
    /// A model it needs is not available (named), or evalcot has no equivalent.
    NotRun(String),
}

/// What the header says of a run beside its statistics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Provenance {
    pub seed: u64,
    /// The detector that scored it (`summary.json`).
    pub detector: String,
    /// `live`, or the bank its candidates were replayed from.
    pub candidates: String,
}

/// The header: every run once, with its n, N, seed, models and where its candidates came from.
fn runs_header(matrix: &Matrix, outcomes: &BTreeMap<String, Outcome>) -> String {
    let mut s = String::new();
    let mut seen = Vec::new();
    for r in matrix.rows() {
        let Some(Outcome::Ran {
            stats,
            config,
            provenance: p,
            ..
        }) = outcomes.get(&r.id)
        else {
            continue;
        };
        if seen.contains(config) {
            continue;
        }
        if seen.is_empty() {
            let _ = writeln!(
                s,
                "## Runs
"
            );
            let _ = writeln!(
                s,
                "| configuration | prompts × images | N | seed | generator | judge | detector | candidates |"
            );
            let _ = writeln!(s, "|---|---|---|---|---|---|---|---|");
        }
        seen.push(config.clone());
        let per = stats.images / stats.prompts.max(1);
        let _ = writeln!(
            s,
            "| `{config}` | {} × {per} | {} | {} | {} | {} | {} | {} |",
            stats.prompts,
            stats.n,
            p.seed,
            stats.generator,
            if stats.judge.is_empty() {
                "–"
            } else {
                &stats.judge
            },
            p.detector,
            p.candidates
        );
    }
    if !s.is_empty() {
        s.push('\n');
    }
    s
}

/// Every run by its cost: generator forwards per output image against the overall score, the
/// runs on the Pareto front (no run is both cheaper and better) marked — the comparison at
/// matched compute that a row-by-row table hides.
fn compute_section(matrix: &Matrix, outcomes: &BTreeMap<String, Outcome>) -> String {
    let mut runs: Vec<(&str, &RunStats)> = Vec::new();
    let mut seen = Vec::new();
    for r in matrix.rows() {
        if let Some(Outcome::Ran { stats, config, .. }) = outcomes.get(&r.id) {
            if !seen.contains(config) {
                seen.push(config.clone());
                runs.push((r.label.as_str(), stats));
            }
        }
    }
    if runs.len() < 2 {
        return String::new();
    }
    let points: Vec<(f64, f64)> = runs
        .iter()
        .map(|(_, st)| (st.forwards, st.overall.value))
        .collect();
    let front = crate::stats::pareto_front(&points);
    let mut order: Vec<usize> = (0..runs.len()).collect();
    order.sort_by(|&a, &b| points[a].0.total_cmp(&points[b].0));
    let mut s = String::from(
        "## Accuracy against compute\n\nEach run once, cheapest first; ◆ marks the Pareto front \
         (no other run is both cheaper and better).\n\n| run | forwards/img | overall | front |\n|---|---|---|---|\n",
    );
    for i in order {
        let (label, st) = runs[i];
        let _ = writeln!(
            s,
            "| {label} | {:.0} | {:.3} [{:.3}, {:.3}] | {} |",
            st.forwards,
            st.overall.value,
            st.overall.low,
            st.overall.high,
            if front.contains(&i) { "◆" } else { "" }
        );
    }
    s.push('\n');
    s
}

fn cell(x: Option<f64>) -> String {
    x.map_or("–".into(), |v| format!("{v:.2}"))
}

fn ours(stats: &RunStats) -> [Option<f64>; 7] {
    let mut v = [None; 7];
    for (i, t) in TAGS.iter().enumerate() {
        v[i] = stats.tags.get(*t).map(|s| s.estimate.value);
    }
    v[6] = Some(stats.overall.value);
    v
}

/// The rendered `docs/paper.md`.
pub fn render(
    matrix: &Matrix,
    outcomes: &BTreeMap<String, Outcome>,
    scale: &str,
    command: &str,
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# {}\n",
        matrix
            .title
            .as_deref()
            .unwrap_or("The paper's tables on evalcot's world")
    );
    let _ = writeln!(
        s,
        "Written by `{command}` (scale `{scale}`: {}). The paper's numbers are from \
         `../shared/reference/paper.md` §3 (Show-o, GenEval, best-of-20); ours are GenEval \
         accuracy on the prompts of the scale with 95% bootstrap intervals over prompts, and \
         generator forward passes per output image. A row that could not run says why. \
         Analysis: [paper-notes.md](paper-notes.md).\n",
        matrix
            .scales
            .get(scale)
            .map(|o| serde_json::to_string(o).unwrap_or_default())
            .unwrap_or_default()
    );
    if let Some(intro) = &matrix.intro {
        let _ = writeln!(s, "{}\n", intro.trim());
    }
    s.push_str(&runs_header(matrix, outcomes));
    for t in &matrix.tables {
        let _ = writeln!(s, "## {}\n", t.title);
        let _ = writeln!(
            s,
            "| row | source | {} | forwards/img (wall s/img) | run |",
            HEADS.join(" | ")
        );
        let _ = writeln!(s, "|---|---|{}---|---|", "---|".repeat(7));
        for r in &t.rows {
            if let Some(p) = r.paper {
                let _ = writeln!(
                    s,
                    "| {} | paper | {} | | |",
                    r.label,
                    p.iter()
                        .map(|v| format!("{v:.2}"))
                        .collect::<Vec<_>>()
                        .join(" | ")
                );
            }
            match outcomes.get(&r.id) {
                Some(Outcome::Ran {
                    stats, dir, config, ..
                }) => {
                    let v = ours(stats);
                    let mut cells: Vec<String> = v[..6].iter().map(|x| cell(*x)).collect();
                    cells.push(format!(
                        "**{:.2}** [{:.2}, {:.2}]",
                        stats.overall.value, stats.overall.low, stats.overall.high
                    ));
                    let _ = writeln!(
                        s,
                        "| {} | evalcot | {} | {:.0}{} | `{dir}` (`{config}`) |",
                        if r.paper.is_some() {
                            ""
                        } else {
                            r.label.as_str()
                        },
                        cells.join(" | "),
                        stats.forwards,
                        stats
                            .seconds
                            .map_or(String::new(), |t| format!(" ({t:.2} s)"))
                    );
                }
                Some(Outcome::NotRun(why)) => {
                    let _ = writeln!(
                        s,
                        "| {} | evalcot | not run: {} |{}",
                        if r.paper.is_some() {
                            ""
                        } else {
                            r.label.as_str()
                        },
                        why.replace('|', "/"),
                        " |".repeat(8)
                    );
                }
                None => {}
            }
        }
        let notes: Vec<&RowSpec> = t.rows.iter().filter(|r| r.note.is_some()).collect();
        if !notes.is_empty() {
            let _ = writeln!(s);
            for r in notes {
                let _ = writeln!(
                    s,
                    "- {}: {}",
                    r.label,
                    r.note.as_deref().unwrap_or_default()
                );
            }
        }
        let _ = writeln!(s, "\n{}", ordering(t, outcomes));
    }
    s.push_str(&compute_section(matrix, outcomes));
    let _ = writeln!(s, "## The paper's claims on our numbers\n");
    let ran = |id: &str| match outcomes.get(id) {
        Some(Outcome::Ran { stats, images, .. }) => Some((stats.overall, images)),
        _ => None,
    };
    let decided: Vec<Option<crate::paired::PairedDiff>> = matrix
        .claims
        .iter()
        .enumerate()
        .map(|(i, c)| match (ran(&c.better), ran(&c.than)) {
            (Some((_, a)), Some((_, b))) => {
                crate::paired::paired_difference(a, b, CLAIM_RESAMPLES, i as u64, 0.95)
            }
            _ => None,
        })
        .collect();
    let tested = decided.iter().filter(|d| d.is_some()).count();
    let alpha = CLAIM_ALPHA / tested.max(1) as f64;
    let _ = writeln!(
        s,
        "{tested} of {} claims tested, each on the images both rows have: Δ is the overall score of the first row minus the second's with a 95% paired bootstrap interval over prompts (stratified by tag); p is the one-sided paired sign-flip test on the same (prompt, image) keys (per tag, weighted as the overall score). A claim is decided at α = {CLAIM_ALPHA}/{} = {alpha:.4} (Bonferroni); a claim of two rows being level holds when Δ's interval lies within ±{LEVEL_MARGIN}.\n",
        matrix.claims.len(),
        tested.max(1)
    );
    let _ = writeln!(s, "| claim | paper | evalcot | Δ (paired) | p | verdict |");
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    let label = |id: &str| {
        matrix
            .rows()
            .find(|r| r.id == id)
            .map_or(id.to_string(), |r| r.label.clone())
    };
    for (c, d) in matrix.claims.iter().zip(&decided) {
        let paper = |id: &str| {
            matrix
                .rows()
                .find(|r| r.id == id)
                .and_then(|r| r.paper)
                .map(|p| p[6])
        };
        let paper_text = match (paper(&c.better), paper(&c.than)) {
            (Some(a), Some(b)) => format!("{a:.2} vs {b:.2}"),
            _ => "–".into(),
        };
        let ours_text = match (ran(&c.better), ran(&c.than)) {
            (Some((a, _)), Some((b, _))) => format!(
                "{:.2} [{:.2}, {:.2}] vs {:.2} [{:.2}, {:.2}]",
                a.value, a.low, a.high, b.value, b.low, b.high
            ),
            _ => "–".into(),
        };
        let (delta, p, verdict) = match d {
            None if ours_text == "–" => {
                ("–".into(), "–".into(), "untested: a row did not run".into())
            }
            None => (
                "–".into(),
                "–".into(),
                "untested: the rows share no image".into(),
            ),
            Some(d) => {
                let delta = format!(
                    "{:+.3} [{:+.3}, {:+.3}] ({} images, {} discordant)",
                    d.diff.value, d.diff.low, d.diff.high, d.images, d.discordant
                );
                if c.level {
                    let p2 = d.p_two_sided();
                    let v = if d.diff.low >= -LEVEL_MARGIN && d.diff.high <= LEVEL_MARGIN {
                        "holds (level within the margin)"
                    } else if p2 < alpha {
                        "does not hold (they differ)"
                    } else {
                        "not decided (interval wider than the margin)"
                    };
                    (delta, format!("{p2:.3} (two-sided)"), v.to_string())
                } else {
                    let v = if d.p_greater < alpha {
                        "holds"
                    } else if d.p_less < alpha {
                        "reversed"
                    } else if d.diff.value > 0.0 {
                        "not decided (same direction)"
                    } else {
                        "not decided"
                    };
                    (delta, format!("{:.3}", d.p_greater), v.to_string())
                }
            }
        };
        let _ = writeln!(
            s,
            "| {} ({} {} {}) | {paper_text} | {ours_text} | {delta} | {p} | {verdict} |",
            c.text,
            label(&c.better),
            if c.level { "≈" } else { ">" },
            label(&c.than)
        );
    }
    s
}

/// Bootstrap resamples of the paired difference of each claim.
const CLAIM_RESAMPLES: usize = 2000;
/// Family-wise level over the claims tested.
const CLAIM_ALPHA: f64 = 0.05;
/// How close two rows must be shown to be for a claim that they are level.
const LEVEL_MARGIN: f64 = 0.03;

/// The rows of a table ordered by overall score, in the paper and in evalcot (rows both have).
fn ordering(t: &TableSpec, outcomes: &BTreeMap<String, Outcome>) -> String {
    let mut both: Vec<(&RowSpec, f64, f64)> = t
        .rows
        .iter()
        .filter_map(|r| match (r.paper, outcomes.get(&r.id)) {
            (Some(p), Some(Outcome::Ran { stats, .. })) => Some((r, p[6], stats.overall.value)),
            _ => None,
        })
        .collect();
    if both.len() < 2 {
        return "Ordering: fewer than two rows of this table ran, so there is no order to compare.\n".into();
    }
    // Rows in descending order, level rows joined by "=" (a stable sort alone would pass the
    // paper's order off as ours when scores tie).
    let order = |v: &mut Vec<(&RowSpec, f64, f64)>, key: fn(&(&RowSpec, f64, f64)) -> f64| {
        v.sort_by(|a, b| key(b).total_cmp(&key(a)));
        let mut text = String::new();
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                text.push_str(if key(&v[i - 1]) == key(x) {
                    " = "
                } else {
                    " > "
                });
            }
            text.push_str(&x.0.label);
        }
        text
    };
    let paper = order(&mut both, |x| x.1);
    let ours = order(&mut both, |x| x.2);
    let sign = |d: f64| {
        if d > 0.0 {
            1
        } else if d < 0.0 {
            -1
        } else {
            0
        }
    };
    let (mut agree, mut pairs) = (0, 0);
    for i in 0..both.len() {
        for j in i + 1..both.len() {
            pairs += 1;
            let (a, b) = (&both[i], &both[j]);
            if sign(a.1 - b.1) == sign(a.2 - b.2) {
                agree += 1;
            }
        }
    }
    format!("Ordering by overall score — paper: {paper}; evalcot: {ours}; {agree} of {pairs} pairs ordered alike.\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Estimate;

    fn stats(overall: f64, half: f64) -> RunStats {
        RunStats {
            label: "x".into(),
            dir: "d".into(),
            strategy: "orm".into(),
            n: 4,
            judge: String::new(),
            generator: "base".into(),
            tags: BTreeMap::new(),
            overall: Estimate {
                value: overall,
                low: overall - half,
                high: overall + half,
            },
            prompts: 10,
            images: 10,
            correct: 5,
            failed: 0,
            forwards: 36.0,
            judge_calls: 0.0,
            candidates: 1.0,
            truncated: 0.0,
            seconds: None,
        }
    }

    /// 60 prompts, 10 of each tag, one image each, correct where `right(prompt)`.
    fn images(right: impl Fn(usize) -> bool) -> Vec<crate::run::ImageResult> {
        (0..60)
            .map(|p| crate::run::ImageResult {
                prompt_index: p,
                image_index: 0,
                tag: TAGS[p % 6].to_string(),
                prompt: String::new(),
                correct: right(p),
                reason: String::new(),
            })
            .collect()
    }

    #[test]
    fn the_shipped_alignment_grid_loads_with_its_title_and_every_config_present() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/paper");
        let m = Matrix::load(&dir.join("alignment.yaml")).unwrap();
        assert_eq!(m.tables.len(), 3);
        for r in m.rows() {
            let c = r.config.as_deref().unwrap();
            assert!(dir.join(c).is_file(), "{c} missing");
        }
        let text = render(&m, &BTreeMap::new(), "medium", "evalcot reproduce paper");
        assert!(
            text.starts_with("# Alignment and verification combined\n"),
            "{text}"
        );
        assert!(text.contains("Each table is one verifier"), "{text}");
    }

    #[test]
    fn the_shipped_matrix_loads_and_renders_claims_and_orderings() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/paper/matrix.yaml");
        let m = Matrix::load(&path).unwrap();
        assert!(m.scales.contains_key("small") && m.scales.contains_key("full"));
        let mut outcomes = BTreeMap::new();
        outcomes.insert(
            "t1-baseline".to_string(),
            Outcome::Ran {
                stats: Box::new(stats(0.50, 0.05)),
                dir: "runs/b".into(),
                config: "baseline.yaml".into(),
                images: images(|p| p % 2 == 0),
                provenance: Provenance::default(),
            },
        );
        outcomes.insert(
            "t1-orm-zs".to_string(),
            Outcome::Ran {
                stats: Box::new(stats(0.70, 0.05)),
                dir: "runs/o".into(),
                config: "orm-zero-shot.yaml".into(),
                images: images(|p| p % 2 == 0 || p % 3 == 0 || p % 5 == 0),
                provenance: Provenance::default(),
            },
        );
        outcomes.insert(
            "t1-prm-zs".to_string(),
            Outcome::Ran {
                stats: Box::new(stats(0.52, 0.05)),
                dir: "runs/p".into(),
                config: "prm-zero-shot.yaml".into(),
                images: images(|p| p % 2 == 0 || p == 7),
                provenance: Provenance {
                    seed: 1234,
                    detector: "det".into(),
                    candidates: "live".into(),
                },
            },
        );
        outcomes.insert(
            "t1-orm-ft".to_string(),
            Outcome::NotRun("judge \"fine-tuned\" is not shipped".into()),
        );
        let md = render(
            &m,
            &outcomes,
            "small",
            "evalcot reproduce paper --scale small",
        );
        assert!(
            md.contains("| Baseline | paper | 0.95 | 0.52 | 0.49 | 0.82 | 0.11 | 0.28 | 0.53 |"),
            "{md}"
        );
        assert!(md.contains("**0.70** [0.65, 0.75]"), "{md}");
        assert!(md.contains("## Accuracy against compute"), "{md}");
        // The header states each run's settings once.
        assert!(md.contains("## Runs"), "{md}");
        assert!(
            md.contains("| `prm-zero-shot.yaml` |")
                && md.contains("| 1234 |")
                && md.contains("| live |"),
            "{md}"
        );
        assert!(
            md.contains("not run: judge \"fine-tuned\" is not shipped"),
            "{md}"
        );
        assert!(
            md.contains("ORM zero-shot > PRM zero-shot > Baseline"),
            "{md}"
        );
        assert!(md.contains("2 of 3 pairs ordered alike"), "{md}");
        let not_run = md.lines().find(|l| l.contains("not run: judge")).unwrap();
        assert_eq!(not_run.matches('|').count(), 12, "11 cells: {not_run}");
        // ORM > baseline: 14 gains and no loss over 60 prompts.
        let orm_line = md
            .lines()
            .find(|l| l.contains("(ORM zero-shot > Baseline)"))
            .unwrap_or_else(|| panic!("{md}"));
        assert!(orm_line.ends_with("| holds |"), "{orm_line}");
        assert!(
            orm_line.contains("(60 images, 14 discordant)"),
            "{orm_line}"
        );
        assert!(
            md.contains("claims tested, each on the images both rows have"),
            "{md}"
        );
        assert!(md.contains("untested: a row did not run"), "{md}");
    }

    #[test]
    fn bad_matrices_are_named_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.yaml");
        std::fs::write(&p, "scales: {}\ntables:\n- title: T\n  rows:\n  - {id: a, label: A, config: x.yaml}\n  - {id: a, label: B, config: y.yaml}\n").unwrap();
        assert!(Matrix::load(&p)
            .unwrap_err()
            .to_string()
            .contains("appears twice"));
        std::fs::write(
            &p,
            "scales: {}\ntables:\n- title: T\n  rows:\n  - {id: a, label: A}\n",
        )
        .unwrap();
        assert!(Matrix::load(&p)
            .unwrap_err()
            .to_string()
            .contains("needs a note"));
        std::fs::write(
            &p,
            "scales: {}\ntables: []\nclaims:\n- {text: t, better: a, than: b}\n",
        )
        .unwrap();
        assert!(Matrix::load(&p)
            .unwrap_err()
            .to_string()
            .contains("unknown row"));
    }
}
