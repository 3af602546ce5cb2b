//! Per-run statistics (per tag and overall, with bootstrap intervals, and compute per image) and
//! their tables in Markdown, CSV and LaTeX.

use crate::run::Run;
use crate::stats::{bootstrap, Estimate, PromptCount};
use std::collections::BTreeMap;
use std::fmt::Write;

/// How the intervals are computed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BootstrapOptions {
    pub resamples: usize,
    pub seed: u64,
    /// Confidence level, e.g. 0.95.
    pub level: f64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions {
            resamples: 1000,
            seed: 0,
            level: 0.95,
        }
    }
}

/// One tag of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct TagStat {
    pub prompts: usize,
    pub images: usize,
    pub correct: usize,
    pub estimate: Estimate,
}

/// Everything the tables and plots show of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunStats {
    pub label: String,
    pub dir: String,
    pub strategy: String,
    pub n: usize,
    /// Empty for strategies without a judge.
    pub judge: String,
    pub generator: String,
    /// Keyed by tag; a tag this run lacks is absent.
    pub tags: BTreeMap<String, TagStat>,
    pub overall: Estimate,
    pub prompts: usize,
    pub images: usize,
    pub correct: usize,
    pub failed: usize,
    /// Mean per output image: generator forwards, judge calls, candidates, truncated candidates.
    pub forwards: f64,
    pub judge_calls: f64,
    pub candidates: f64,
    pub truncated: f64,
    /// Mean wall seconds per output image, where the run recorded them.
    pub seconds: Option<f64>,
}

/// The statistics of several runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Tables {
    /// In order of first appearance (first run first, each run's results in key order).
    pub tags: Vec<String>,
    pub runs: Vec<RunStats>,
    /// Whether all runs cover the same prompts (comparisons are fair only then).
    pub same_prompts: bool,
    pub options: BootstrapOptions,
}

impl Tables {
    pub fn compute(runs: &[Run], options: BootstrapOptions) -> Tables {
        let mut tags: Vec<String> = Vec::new();
        for r in runs {
            for img in &r.images {
                if !tags.contains(&img.tag) {
                    tags.push(img.tag.clone());
                }
            }
        }
        let prompt_sets: Vec<Vec<usize>> = runs
            .iter()
            .map(|r| {
                let mut p: Vec<usize> = r.images.iter().map(|i| i.prompt_index).collect();
                p.dedup();
                p
            })
            .collect();
        let same_prompts = prompt_sets.windows(2).all(|w| w[0] == w[1]);
        let stats = runs.iter().map(|r| run_stats(r, &tags, options)).collect();
        Tables {
            tags,
            runs: stats,
            same_prompts,
            options,
        }
    }

    pub(crate) fn level_percent(&self) -> String {
        format!("{}%", (self.options.level * 100.0 * 1e6).round() / 1e6)
    }

    /// A Markdown document: accuracy per tag and overall with intervals, then compute per image.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "# GenEval results\n");
        let _ = writeln!(
            s,
            "Image accuracy per tag and overall (mean over tags, as GenEval), with {} bootstrap intervals from {} resamples of prompts within each tag (seed {}).\n",
            self.level_percent(),
            self.options.resamples,
            self.options.seed
        );
        if !self.same_prompts {
            let _ = writeln!(
                s,
                "**Note:** the runs cover different prompts; their scores are not directly comparable.\n"
            );
        }
        let mut header = vec!["run".to_string()];
        header.extend(self.tags.iter().cloned());
        header.push("overall".into());
        let _ = writeln!(s, "| {} |", header.join(" | "));
        let _ = writeln!(
            s,
            "|{}",
            header
                .iter()
                .enumerate()
                .map(|(i, _)| if i == 0 { "---|" } else { "---:|" })
                .collect::<String>()
        );
        for r in &self.runs {
            let mut row = vec![md_escape(&r.label)];
            for t in &self.tags {
                row.push(match r.tags.get(t) {
                    Some(ts) => format!("{} {}", f3(ts.estimate.value), interval(&ts.estimate)),
                    None => "—".into(),
                });
            }
            row.push(format!(
                "**{}** {}",
                f3(r.overall.value),
                interval(&r.overall)
            ));
            let _ = writeln!(s, "| {} |", row.join(" | "));
        }
        let _ = writeln!(s, "\n## Compute per image\n");
        let _ = writeln!(
            s,
            "| run | strategy | N | judge | generator | prompts | images | failed | generator forwards | judge calls | candidates | truncated | wall s |"
        );
        let _ = writeln!(
            s,
            "|---|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        );
        for r in &self.runs {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                md_escape(&r.label),
                md_escape(&r.strategy),
                if r.strategy == "baseline" || r.strategy == crate::run::RESULTS_ONLY {
                    "—".to_string()
                } else {
                    r.n.to_string()
                },
                md_escape(if r.judge.is_empty() { "—" } else { &r.judge }),
                md_escape(&r.generator),
                r.prompts,
                r.images,
                r.failed,
                num(r.forwards),
                num(r.judge_calls),
                num(r.candidates),
                num(r.truncated),
                r.seconds.map_or("—".to_string(), |t| format!("{t:.2}"))
            );
        }
        s
    }

    /// Long CSV: one row per run and tag, then the run's `overall` row.
    pub fn csv(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "run,dir,strategy,n,judge,generator,tag,prompts,images,correct,accuracy,ci_low,ci_high,forwards_per_image,judge_calls_per_image,candidates_per_image,truncated_per_image,failed_images,wall_seconds_per_image"
        );
        for r in &self.runs {
            let mut rows: Vec<(String, usize, usize, usize, Estimate)> = self
                .tags
                .iter()
                .filter_map(|t| {
                    r.tags
                        .get(t)
                        .map(|ts| (t.clone(), ts.prompts, ts.images, ts.correct, ts.estimate))
                })
                .collect();
            rows.push(("overall".into(), r.prompts, r.images, r.correct, r.overall));
            for (tag, prompts, images, correct, e) in rows {
                let fields = [
                    csv_field(&r.label),
                    csv_field(&r.dir),
                    csv_field(&r.strategy),
                    r.n.to_string(),
                    csv_field(&r.judge),
                    csv_field(&r.generator),
                    csv_field(&tag),
                    prompts.to_string(),
                    images.to_string(),
                    correct.to_string(),
                    format!("{:.6}", e.value),
                    format!("{:.6}", e.low),
                    format!("{:.6}", e.high),
                    csv_num(r.forwards),
                    csv_num(r.judge_calls),
                    csv_num(r.candidates),
                    csv_num(r.truncated),
                    r.failed.to_string(),
                    r.seconds.map_or(String::new(), |t| format!("{t:.4}")),
                ];
                let _ = writeln!(s, "{}", fields.join(","));
            }
        }
        s
    }

    /// A LaTeX table (booktabs): accuracy per tag and overall with intervals, and compute.
    pub fn latex(&self) -> String {
        let mut s = String::new();
        let cols = self.tags.len() + 1;
        let _ = writeln!(
            s,
            "% Generated by `evalcot report`; needs \\usepackage{{booktabs}}."
        );
        let _ = writeln!(s, "\\begin{{table}}[t]");
        let _ = writeln!(s, "\\centering");
        let _ = writeln!(s, "\\small");
        let _ = writeln!(s, "\\begin{{tabular}}{{l{}rr}}", "c".repeat(cols));
        let _ = writeln!(s, "\\toprule");
        let mut header = vec!["Run".to_string()];
        header.extend(self.tags.iter().map(|t| tex_escape(&t.replace('_', " "))));
        header.push("Overall".into());
        header.push("Fwd/img".into());
        header.push("Judge/img".into());
        let _ = writeln!(s, "{} \\\\", header.join(" & "));
        let _ = writeln!(s, "\\midrule");
        for r in &self.runs {
            let mut row = vec![tex_escape(&r.label)];
            for t in &self.tags {
                row.push(match r.tags.get(t) {
                    Some(ts) => tex_cell(&ts.estimate, false),
                    None => "--".into(),
                });
            }
            row.push(tex_cell(&r.overall, true));
            row.push(num(r.forwards));
            row.push(num(r.judge_calls));
            let _ = writeln!(s, "{} \\\\", row.join(" & "));
        }
        let _ = writeln!(s, "\\bottomrule");
        let _ = writeln!(s, "\\end{{tabular}}");
        let _ = writeln!(
            s,
            "\\caption{{GenEval image accuracy per tag and overall (mean over tags) with {} bootstrap intervals ({} resamples of prompts); generator forward passes and judge calls per image.}}",
            tex_escape(&self.level_percent()),
            self.options.resamples
        );
        let _ = writeln!(s, "\\end{{table}}");
        s
    }
}

fn run_stats(r: &Run, tags: &[String], options: BootstrapOptions) -> RunStats {
    // Per tag, per prompt (in key order): correct and total images.
    let mut per_tag: BTreeMap<&str, BTreeMap<usize, PromptCount>> = BTreeMap::new();
    for img in &r.images {
        let p = per_tag
            .entry(img.tag.as_str())
            .or_default()
            .entry(img.prompt_index)
            .or_insert(PromptCount {
                correct: 0,
                total: 0,
            });
        p.total += 1;
        p.correct += img.correct as u32;
    }
    let present: Vec<&String> = tags
        .iter()
        .filter(|t| per_tag.contains_key(t.as_str()))
        .collect();
    let groups: Vec<Vec<PromptCount>> = present
        .iter()
        .map(|t| per_tag[t.as_str()].values().copied().collect())
        .collect();
    let b = bootstrap(&groups, options.resamples, options.seed, options.level);
    let mut tag_stats = BTreeMap::new();
    for ((t, g), e) in present.iter().zip(&groups).zip(&b.tags) {
        tag_stats.insert(
            (*t).clone(),
            TagStat {
                prompts: g.len(),
                images: g.iter().map(|p| p.total as usize).sum(),
                correct: g.iter().map(|p| p.correct as usize).sum(),
                estimate: *e,
            },
        );
    }
    let [forwards, judge_calls, candidates, truncated] = r.compute_per_image();
    RunStats {
        label: r.label.clone(),
        dir: r.dir.display().to_string(),
        strategy: r.meta.strategy.clone(),
        n: r.meta.n,
        judge: if r.meta.uses_judge() {
            r.meta.judge.clone()
        } else {
            String::new()
        },
        generator: r.meta.generator.clone(),
        tags: tag_stats,
        overall: b.overall,
        prompts: groups.iter().map(|g| g.len()).sum(),
        images: r.images.len(),
        correct: r.images.iter().filter(|i| i.correct).count(),
        failed: r.failed,
        forwards,
        judge_calls,
        candidates,
        truncated,
        seconds: r.seconds_per_image(),
    }
}

/// A mean for the CSV: empty when unknown.
fn csv_num(x: f64) -> String {
    if x.is_nan() {
        String::new()
    } else {
        format!("{x:.4}")
    }
}

pub(crate) fn f3(x: f64) -> String {
    format!("{x:.3}")
}

pub(crate) fn interval(e: &Estimate) -> String {
    format!("[{:.3}, {:.3}]", e.low, e.high)
}

/// Compute numbers: integers as integers, otherwise one decimal.
/// A count or mean for a table; `—` when unknown (NaN: a run without generation records).
pub(crate) fn num(x: f64) -> String {
    if x.is_nan() {
        "—".into()
    } else if (x - x.round()).abs() < 1e-9 {
        format!("{}", x.round() as i64)
    } else {
        format!("{x:.1}")
    }
}

fn md_escape(s: &str) -> String {
    s.replace('|', "\\|")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn tex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\textbackslash{}"),
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            '~' => out.push_str("\\textasciitilde{}"),
            '^' => out.push_str("\\textasciicircum{}"),
            _ => out.push(c),
        }
    }
    out
}

fn tex_cell(e: &Estimate, bold: bool) -> String {
    let v = if bold {
        format!("\\textbf{{{}}}", f3(e.value))
    } else {
        f3(e.value)
    };
    format!("{v} {{\\scriptsize [{:.3}, {:.3}]}}", e.low, e.high)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("\"x\",y"), "\"\"\"x\"\",y\"");
        assert_eq!(tex_escape("two_object & 50%"), "two\\_object \\& 50\\%");
        assert_eq!(num(36.0), "36");
        assert_eq!(num(36.25), "36.2");
    }
}
