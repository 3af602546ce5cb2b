//! The regression gate: a run against a committed baseline, per tag and overall, with a paired
//! test on the same (prompt, image) keys.
//!
//! A baseline file (`evalcot-baseline/1`, JSON) holds every image's correctness keyed by prompt
//! index and image index, each prompt's tag and text (to refuse comparing different prompt sets),
//! and the per-tag and overall scores. A row fails when its score dropped by more than
//! `max_drop` *and* the drop is significant at `alpha`:
//! - a tag: one-sided exact sign test (McNemar) on its discordant images;
//! - overall (the mean over tags): the same test with each discordant image weighted by its
//!   share of the overall score (exact when all tags weigh the same, else a seeded Monte-Carlo
//!   sign-flip test).

mod baseline;

use crate::run::{read_results, ImageKey, ImageResult};
use crate::stats::{sign_test_drop, weighted_sign_test_drop, Stratum};
use harness::error::{Error, Location, Result};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::path::Path;

pub use baseline::{BaselineFile, BaselineImage, BaselinePrompt, BaselineTag, BASELINE_FORMAT};

/// Draws of the Monte-Carlo test of the overall score (when tags weigh differently).
pub const OVERALL_DRAWS: usize = 20_000;

/// Gate thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GateOptions {
    /// Largest tolerated drop in accuracy (0.02 = two points).
    pub max_drop: f64,
    /// Significance level of the one-sided paired test.
    pub alpha: f64,
}

impl Default for GateOptions {
    fn default() -> Self {
        GateOptions {
            max_drop: 0.02,
            alpha: 0.05,
        }
    }
}

/// One row of the gate's table.
#[derive(Debug, Clone, PartialEq)]
pub struct GateRow {
    /// A tag, or `overall`.
    pub name: String,
    pub images: usize,
    pub baseline: f64,
    pub run: f64,
    /// Images correct in the baseline only.
    pub lost: u64,
    /// Images correct in the run only.
    pub gained: u64,
    /// One-sided p-value of "the run is worse".
    pub p: f64,
    pub fail: bool,
}

impl GateRow {
    pub fn change(&self) -> f64 {
        self.run - self.baseline
    }

    fn verdict(&self, o: &GateOptions) -> &'static str {
        let big = -self.change() > o.max_drop + 1e-12;
        let significant = self.p < o.alpha;
        match (self.fail, big, significant) {
            (true, _, _) => "FAIL",
            (false, true, false) => "drop, not significant",
            (false, false, true) if self.change() < 0.0 => "significant, within max-drop",
            _ => "ok",
        }
    }
}

/// The gate's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct GateReport {
    pub rows: Vec<GateRow>,
    pub options: GateOptions,
}

impl GateReport {
    pub fn failed(&self) -> bool {
        self.rows.iter().any(|r| r.fail)
    }

    /// A plain-text table and a verdict line.
    pub fn render(&self, baseline: &str, run: &str) -> String {
        let o = &self.options;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "gate: {run} against {baseline} (fails a row that dropped by more than {} with one-sided paired p < {})",
            o.max_drop, o.alpha
        );
        let w = self
            .rows
            .iter()
            .map(|r| r.name.len())
            .max()
            .unwrap_or(0)
            .max(8);
        let _ = writeln!(
            s,
            "{:<w$}  {:>6}  {:>8}  {:>8}  {:>7}  {:>5}  {:>6}  {:>8}  verdict",
            "tag", "images", "baseline", "run", "change", "lost", "gained", "p"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<w$}  {:>6}  {:>8.4}  {:>8.4}  {:>+7.4}  {:>5}  {:>6}  {:>8}  {}",
                r.name,
                r.images,
                r.baseline,
                r.run,
                r.change(),
                r.lost,
                r.gained,
                p_value(r.p),
                r.verdict(o)
            );
        }
        let failed: Vec<&str> = self
            .rows
            .iter()
            .filter(|r| r.fail)
            .map(|r| r.name.as_str())
            .collect();
        if failed.is_empty() {
            let _ = writeln!(s, "result: PASS");
        } else {
            let _ = writeln!(
                s,
                "result: FAIL ({} dropped by more than {} with p < {})",
                failed.join(", "),
                o.max_drop,
                o.alpha
            );
        }
        s
    }
}

impl GateReport {
    /// The report as JSON for dashboards: options, verdict, one object per row.
    pub fn to_json(&self, baseline: &str, run: &str) -> serde_json::Value {
        let o = &self.options;
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "name": r.name,
                    "images": r.images,
                    "baseline": r.baseline,
                    "run": r.run,
                    "change": r.change(),
                    "lost": r.lost,
                    "gained": r.gained,
                    "p": r.p,
                    "fail": r.fail,
                    "verdict": r.verdict(o),
                })
            })
            .collect();
        serde_json::json!({
            "baseline": baseline,
            "run": run,
            "max_drop": o.max_drop,
            "alpha": o.alpha,
            "result": if self.failed() { "FAIL" } else { "PASS" },
            "rows": rows,
        })
    }

    /// The report as a JUnit XML test suite: one test case per row (a tag or `overall`), a
    /// failure for each row that dropped significantly, so CI dashboards list regressions.
    pub fn to_junit(&self, baseline: &str, run: &str) -> String {
        let o = &self.options;
        let failures = self.rows.iter().filter(|r| r.fail).count();
        let mut s = String::new();
        let _ = writeln!(s, r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        let _ = writeln!(
            s,
            r#"<testsuites name="evalcot gate" tests="{}" failures="{failures}">"#,
            self.rows.len()
        );
        let _ = writeln!(
            s,
            r#"  <testsuite name="{}" tests="{}" failures="{failures}">"#,
            xml(&format!("{run} against {baseline}")),
            self.rows.len()
        );
        for r in &self.rows {
            let summary = format!(
                "{}: {:.4} against {:.4} ({:+.4}; {} lost, {} gained; one-sided paired p {}) on {} images; {}",
                r.name,
                r.run,
                r.baseline,
                r.change(),
                r.lost,
                r.gained,
                p_value(r.p),
                r.images,
                r.verdict(o)
            );
            let _ = write!(
                s,
                r#"    <testcase classname="evalcot.gate" name="{}""#,
                xml(&r.name)
            );
            if r.fail {
                let _ = writeln!(s, ">");
                let _ = writeln!(
                    s,
                    r#"      <failure message="{}" type="regression">dropped by more than {} with p &lt; {}</failure>"#,
                    xml(&summary),
                    o.max_drop,
                    o.alpha
                );
                let _ = writeln!(s, "    </testcase>");
            } else {
                let _ = writeln!(s, ">");
                let _ = writeln!(s, "      <system-out>{}</system-out>", xml(&summary));
                let _ = writeln!(s, "    </testcase>");
            }
        }
        let _ = writeln!(s, "  </testsuite>");
        let _ = writeln!(s, "</testsuites>");
        s
    }
}

/// Text escaped for an XML attribute or element.
fn xml(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn p_value(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
    }
}

/// Compares a run's results with a baseline. The run must have exactly the baseline's
/// (prompt, image) keys, and each prompt the same tag and text; anything else is an error naming
/// `run_file` and the first differences.
pub fn compare(
    baseline: &BaselineFile,
    baseline_file: &Path,
    images: &[ImageResult],
    run_file: &Path,
    options: GateOptions,
) -> Result<GateReport> {
    let run_loc = || Location::file(run_file.display().to_string());
    let prompts: HashMap<usize, &BaselinePrompt> =
        baseline.prompts.iter().map(|p| (p.index, p)).collect();
    for img in images {
        if let Some(p) = prompts.get(&img.prompt_index) {
            if p.tag != img.tag || (!img.prompt.is_empty() && p.prompt != img.prompt) {
                return Err(Error::invalid(
                    run_loc(),
                    format!(
                        "prompt {} is {:?} ({}) here but {:?} ({}) in the baseline {}: not the same prompt set",
                        img.prompt_index,
                        img.prompt,
                        img.tag,
                        p.prompt,
                        p.tag,
                        baseline_file.display()
                    ),
                ));
            }
        }
    }
    let run: BTreeMap<ImageKey, bool> = images.iter().map(|i| (i.key(), i.correct)).collect();
    let base: BTreeMap<ImageKey, bool> = baseline
        .images
        .iter()
        .map(|i| ((i.prompt, i.image), i.correct))
        .collect();
    let missing: Vec<&ImageKey> = base.keys().filter(|k| !run.contains_key(k)).collect();
    let extra: Vec<&ImageKey> = run.keys().filter(|k| !base.contains_key(k)).collect();
    if !missing.is_empty() || !extra.is_empty() {
        let show = |ks: &[&ImageKey]| {
            let mut s: Vec<String> = ks
                .iter()
                .take(5)
                .map(|(p, i)| format!("prompt {p} image {i}"))
                .collect();
            if ks.len() > 5 {
                s.push(format!("… {} more", ks.len() - 5));
            }
            s.join(", ")
        };
        let mut msg = String::from("does not have the baseline's images");
        if !missing.is_empty() {
            let _ = write!(
                msg,
                "; missing {} of {} in {}: {}",
                missing.len(),
                base.len(),
                baseline_file.display(),
                show(&missing)
            );
        }
        if !extra.is_empty() {
            let _ = write!(msg, "; not in the baseline: {}", show(&extra));
        }
        return Err(Error::invalid(run_loc(), msg));
    }
    let tag_of: HashMap<usize, &str> = baseline
        .prompts
        .iter()
        .map(|p| (p.index, p.tag.as_str()))
        .collect();
    let mut rows = Vec::new();
    let mut strata = Vec::new();
    let ntags = baseline.tags.len() as f64;
    let (mut run_overall, mut lost_all, mut gained_all) = (0.0, 0, 0);
    for t in &baseline.tags {
        let (mut lost, mut gained, mut run_correct, mut total) = (0u64, 0u64, 0usize, 0usize);
        for (k, b) in &base {
            if tag_of[&k.0] != t.tag {
                continue;
            }
            let r = run[k];
            total += 1;
            run_correct += r as usize;
            match (b, r) {
                (true, false) => lost += 1,
                (false, true) => gained += 1,
                _ => {}
            }
        }
        let run_acc = run_correct as f64 / total as f64;
        run_overall += run_acc / ntags;
        lost_all += lost;
        gained_all += gained;
        strata.push(Stratum {
            lost,
            gained,
            weight: 1.0 / (ntags * total as f64),
        });
        rows.push(row(
            &t.tag,
            total,
            t.accuracy,
            run_acc,
            lost,
            gained,
            sign_test_drop(lost, gained),
            &options,
        ));
    }
    let p = weighted_sign_test_drop(&strata, OVERALL_DRAWS, 0);
    rows.push(row(
        "overall",
        base.len(),
        baseline.overall,
        run_overall,
        lost_all,
        gained_all,
        p,
        &options,
    ));
    Ok(GateReport { rows, options })
}

#[allow(clippy::too_many_arguments)]
fn row(
    name: &str,
    images: usize,
    baseline: f64,
    run: f64,
    lost: u64,
    gained: u64,
    p: f64,
    o: &GateOptions,
) -> GateRow {
    let drop = baseline - run;
    GateRow {
        name: name.into(),
        images,
        baseline,
        run,
        lost,
        gained,
        p,
        fail: drop > o.max_drop + 1e-12 && p < o.alpha,
    }
}

/// Exit code of the gate: 0 pass, 1 a significant drop beyond `max_drop`. (Unusable input is an
/// error, which the binary turns into 2.)
pub fn exit_code(report: &GateReport) -> i32 {
    if report.failed() {
        1
    } else {
        0
    }
}

/// How the gate prints its report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GateFormat {
    /// A plain-text table and a verdict line.
    #[default]
    Text,
    /// One JSON object.
    Json,
    /// A JUnit XML test suite (one test case per row).
    Junit,
}

/// The whole gate on files: `baseline_path` against the `results.jsonl` of `run` (a run folder or
/// a results file). Returns the report and its rendering in `format`.
pub fn gate(
    baseline_path: &Path,
    run: &Path,
    options: GateOptions,
    format: GateFormat,
) -> Result<(GateReport, String)> {
    let baseline = BaselineFile::load(baseline_path)?;
    let results = results_path(run)?;
    let images = read_results(&results)?;
    let report = compare(&baseline, baseline_path, &images, &results, options)?;
    let (b, r) = (
        baseline_path.display().to_string(),
        run.display().to_string(),
    );
    let text = match format {
        GateFormat::Text => report.render(&b, &r),
        GateFormat::Json => format!("{:#}\n", report.to_json(&b, &r)),
        GateFormat::Junit => report.to_junit(&b, &r),
    };
    Ok((report, text))
}

/// `run/results.jsonl` for a folder, `run` itself for a file.
pub fn results_path(run: &Path) -> Result<std::path::PathBuf> {
    if run.is_dir() {
        crate::run::refuse_shard(run)?;
        Ok(run.join("results.jsonl"))
    } else {
        Ok(run.to_path_buf())
    }
}

/// Writes the baseline of a run (folder or results file) to `out`, atomically.
pub fn write_baseline(run: &Path, out: &Path) -> Result<BaselineFile> {
    let results = results_path(run)?;
    let images = read_results(&results)?;
    let label = if run.is_dir() && run.join("config.yaml").exists() {
        harness::config::load_yaml::<crate::run::RunMeta>(&run.join("config.yaml"))?.label()
    } else {
        String::new()
    };
    let b = BaselineFile::from_results(&run.display().to_string(), &label, &images);
    harness::fsutil::write_atomic(out, b.to_json().as_bytes())?;
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(p: usize, i: usize, tag: &str, correct: bool) -> ImageResult {
        ImageResult {
            prompt_index: p,
            image_index: i,
            tag: tag.into(),
            prompt: format!("prompt {p}"),
            correct,
            reason: String::new(),
        }
    }

    /// Two tags, 40 prompts × 4 images each; about 70% correct.
    fn run() -> Vec<ImageResult> {
        let mut v = Vec::new();
        for p in 0..80 {
            let tag = if p < 40 { "a" } else { "b" };
            for i in 0..4 {
                v.push(img(p, i, tag, (p * 4 + i) % 10 < 7));
            }
        }
        v
    }

    fn check(images: &[ImageResult], base: &BaselineFile) -> GateReport {
        compare(
            base,
            Path::new("base.json"),
            images,
            Path::new("run/results.jsonl"),
            GateOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn equal_runs_pass() {
        let r = run();
        let b = BaselineFile::from_results("x", "", &r);
        let g = check(&r, &b);
        assert!(!g.failed());
        assert_eq!(exit_code(&g), 0);
        assert!(g.rows.iter().all(|r| r.p == 1.0 && r.change() == 0.0));
        assert!(g.render("b", "r").contains("result: PASS"));
    }

    #[test]
    fn large_drop_in_one_tag_fails_small_or_noisy_ones_do_not() {
        let r = run();
        let b = BaselineFile::from_results("x", "", &r);
        // Tag b: 40 correct images turned incorrect (a drop of 0.25).
        let mut worse = r.clone();
        let mut n = 0;
        for i in worse.iter_mut().filter(|i| i.tag == "b" && i.correct) {
            if n < 40 {
                i.correct = false;
                n += 1;
            }
        }
        let g = check(&worse, &b);
        assert_eq!(exit_code(&g), 1);
        let rb = &g.rows[1];
        assert_eq!((rb.name.as_str(), rb.lost, rb.gained), ("b", 40, 0));
        assert!((rb.change() + 0.25).abs() < 1e-12);
        assert_eq!(rb.p, 0.5f64.powi(40));
        assert!(rb.fail && !g.rows[0].fail);
        let overall = g.rows.last().unwrap();
        assert!(overall.fail && (overall.change() + 0.125).abs() < 1e-12);
        assert!(g.render("b", "r").contains("result: FAIL (b, overall"));

        // Three lost, one gained in tag a: a drop of 0.0125, below max-drop.
        let mut slight = r.clone();
        let mut flips = 0;
        for i in slight.iter_mut().filter(|i| i.tag == "a") {
            if i.correct && flips < 3 {
                i.correct = false;
                flips += 1;
            }
        }
        slight
            .iter_mut()
            .find(|i| i.tag == "a" && !i.correct && i.prompt_index > 30)
            .unwrap()
            .correct = true;
        let g = check(&slight, &b);
        assert_eq!((g.rows[0].lost, g.rows[0].gained), (3, 1));
        assert_eq!(g.rows[0].p, 5.0 / 16.0);
        assert_eq!(exit_code(&g), 0);

        // A big but noisy drop: 12 lost, 8 gained (0.025 > 0.02, p = 0.25) passes.
        let mut noisy = r.clone();
        let (mut l, mut w) = (0, 0);
        for i in noisy.iter_mut().filter(|i| i.tag == "a") {
            if i.correct && l < 12 {
                i.correct = false;
                l += 1;
            } else if !i.correct && w < 8 && l >= 12 {
                i.correct = true;
                w += 1;
            }
        }
        let g = check(&noisy, &b);
        assert_eq!((g.rows[0].lost, g.rows[0].gained), (12, 8));
        assert!(!g.rows[0].fail && g.rows[0].p > 0.05);
        assert!(g.render("b", "r").contains("drop, not significant"));
    }

    #[test]
    fn mismatched_keys_and_prompts_are_errors() {
        let r = run();
        let b = BaselineFile::from_results("x", "", &r);
        let fewer = &r[..r.len() - 1];
        let e = compare(
            &b,
            Path::new("base.json"),
            fewer,
            Path::new("res.jsonl"),
            GateOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("res.jsonl")
                && e.contains("missing 1 of 320")
                && e.contains("prompt 79 image 3"),
            "{e}"
        );
        let mut other = r.clone();
        other[0].prompt = "a photo of something else".into();
        let e = compare(
            &b,
            Path::new("base.json"),
            &other,
            Path::new("res.jsonl"),
            GateOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not the same prompt set"), "{e}");
    }

    #[test]
    fn baseline_round_trips_and_bad_files_are_named() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("base.json");
        let b = BaselineFile::from_results("runs/x", "orm N=4", &run());
        std::fs::write(&p, b.to_json()).unwrap();
        assert_eq!(BaselineFile::load(&p).unwrap(), b);
        assert_eq!(b.prompts.len(), 80);
        assert!((b.overall - 0.7).abs() < 1e-12);

        let edit = |from: &str, to: &str| {
            std::fs::write(&p, b.to_json().replacen(from, to, 1)).unwrap();
            BaselineFile::load(&p).unwrap_err().to_string()
        };
        let e = edit("\"correct\":true", "\"correct\":\"yes\"");
        assert!(
            e.contains("base.json:") && e.contains("invalid type"),
            "{e}"
        );
        let e = edit(BASELINE_FORMAT, "evalcot-baseline/0");
        assert!(e.contains("field `format`"), "{e}");
        let e = edit("\"correct\":112", "\"correct\":111");
        assert!(e.contains("field `tags[0]`"), "{e}");
        let e = edit("{\"prompt\":0,\"image\":1,", "{\"prompt\":0,\"image\":0,");
        assert!(
            e.contains("field `images[1]`") && e.contains("twice"),
            "{e}"
        );
        std::fs::write(&p, "{\"format\": 1").unwrap();
        let e = BaselineFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("base.json:1"), "{e}");
    }
}
