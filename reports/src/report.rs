//! `evalcot report`: tables (Markdown, CSV, LaTeX), plots (PNG, SVG) and an offline HTML page
//! from one or more run folders. Every file is written atomically.

use crate::html::{self, Page};
use crate::plots::{self, Plot};
use crate::run::{disambiguate_labels, Run};
use crate::scaling::Scaling;
use crate::tables::{BootstrapOptions, Tables};
use harness::error::{Error, Location, Result};
use harness::fsutil::write_atomic;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use crate::scaling::NO_SCALING_CURVES;

impl BootstrapOptions {
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.resamples == 0 {
            return Err("resamples: must be at least 1".into());
        }
        if !(self.level > 0.0 && self.level < 1.0) {
            return Err(format!("level: {} is not in (0, 1)", self.level));
        }
        Ok(())
    }
}

/// What a report wrote.
#[derive(Debug)]
pub struct Written {
    pub files: Vec<PathBuf>,
    pub notes: Vec<String>,
    pub tables: Tables,
}

/// Reads the runs and writes the report into `out`.
pub fn write_report(
    run_dirs: &[PathBuf],
    out: &Path,
    options: BootstrapOptions,
) -> Result<Written> {
    options
        .validate()
        .map_err(|m| Error::invalid(Location::file("report options"), m))?;
    if run_dirs.is_empty() {
        return Err(Error::invalid(
            Location::file(out.display().to_string()),
            "no run folders to report on",
        ));
    }
    let mut runs = run_dirs
        .iter()
        .map(|d| Run::load(d))
        .collect::<Result<Vec<_>>>()?;
    disambiguate_labels(&mut runs);
    let tables = Tables::compute(&runs, options);
    let scaling = Scaling::compute(&runs);
    std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;

    let font = crate::font::font();
    let mut notes = Vec::new();
    if let Some(n) = font.missing() {
        notes.push(n);
    }
    notes.extend(scaling.notes.iter().cloned());
    notes.extend(detector_note(&runs));
    let unknown: Vec<&str> = runs
        .iter()
        .filter(|r| r.compute.is_empty())
        .map(|r| r.label.as_str())
        .collect();
    if !unknown.is_empty() {
        notes.push(format!(
            "{}: a results.jsonl alone (no generation.jsonl), so compute is unknown (—) and the run is left out of the accuracy-against-compute plot",
            unknown.join(", ")
        ));
    }

    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = out.join(name);
        write_atomic(&p, bytes)?;
        files.push(p);
        Ok(())
    };
    let mut md = tables.markdown();
    md.push_str(&scaling.markdown());
    md.push_str("\n## Notes\n\n");
    for n in &notes {
        md.push_str(&format!("- {n}\n"));
    }
    put("results.md", md.as_bytes())?;
    put("results.csv", tables.csv().as_bytes())?;
    put("results.tex", tables.latex().as_bytes())?;
    let mut plot_list = Vec::new();
    for plot in Plot::ALL {
        let png_name = format!("{}.png", plot.stem());
        let svg_name = format!("{}.svg", plot.stem());
        let png = plots::render_png(plot, &tables, font.available(), &out.join(&png_name))?;
        put(&png_name, &png)?;
        let svg = plots::render_svg(plot, &tables, font.available(), &out.join(&svg_name))?;
        put(&svg_name, svg.as_bytes())?;
        plot_list.push((plot.stem(), plot.title()));
    }
    if !scaling.curves.is_empty() {
        put("scaling.csv", scaling.csv().as_bytes())?;
        let stem = plots::SCALING_STEM;
        let (png_name, svg_name) = (format!("{stem}.png"), format!("{stem}.svg"));
        let png = plots::render_scaling_png(&scaling, font.available(), &out.join(&png_name))?;
        put(&png_name, &png)?;
        let svg = plots::render_scaling_svg(&scaling, font.available(), &out.join(&svg_name))?;
        put(&svg_name, svg.as_bytes())?;
        plot_list.push((stem, plots::SCALING_TITLE));
    }
    let page = html::render(&Page {
        tables: &tables,
        runs: &runs,
        out,
        plots: &plot_list,
        scaling: &scaling,
        notes: &notes,
    });
    put("index.html", page.as_bytes())?;
    Ok(Written {
        files,
        notes,
        tables,
    })
}

/// A note when the runs were not all scored by one detector: their scores are not comparable.
/// A run without a recorded detector was written before `summary.json` named its detector
/// (such runs were scored by evaluator-v2).
fn detector_note(runs: &[Run]) -> Option<String> {
    let name = |r: &Run| {
        r.scored_by.clone().unwrap_or_else(|| {
            "not recorded (evaluator-v2 for runs made before the detector was recorded)".into()
        })
    };
    let mut by: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for r in runs {
        by.entry(name(r)).or_default().push(&r.label);
    }
    (by.len() > 1).then(|| {
        let groups: Vec<String> = by
            .iter()
            .map(|(d, labels)| format!("{} by {d}", labels.join(", ")))
            .collect();
        format!(
            "the runs were scored by different detectors ({}); their scores are not comparable until rescored with one (`evalcot score RUN --detector …`)",
            groups.join("; ")
        )
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::fmt::Write;

    /// Writes a run folder in the runner's formats: `prompts` × `images` images, image `(p, i)`
    /// correct when `correct(p, i)`.
    pub(crate) fn fake_run(
        dir: &Path,
        strategy: &str,
        n: usize,
        forwards: u64,
        prompts: &[(usize, &str, &str)],
        images: usize,
        correct: impl Fn(usize, usize) -> bool,
    ) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(
            dir.join("config.yaml"),
            format!("suite: geneval\nstrategy: {strategy}\ngenerator: base\nn: {n}\nimages_per_prompt: {images}\nsteps: 18\ncfg_scale: 1.75\nseed: 1234\ntags: null\nindices: null\nper_tag: null\nlimit: null\nbatch_prompts: 8\njudge: zero-shot\ndecision: sample\n"),
        )
        .unwrap();
        let (mut gen, mut res) = (String::new(), String::new());
        for &(p, tag, prompt) in prompts {
            let folder = dir.join(format!("{p:05}"));
            std::fs::create_dir_all(folder.join("samples")).unwrap();
            let meta = format!("{{\"tag\": \"{tag}\", \"include\": [{{\"class\": \"bench\", \"count\": 1}}], \"prompt\": \"{prompt}\"}}");
            std::fs::write(folder.join("metadata.jsonl"), format!("{meta}\n")).unwrap();
            for i in 0..images {
                let png = folder.join("samples").join(format!("{i:04}.png"));
                image::RgbImage::from_pixel(4, 4, image::Rgb([200, (p * 40) as u8, 10]))
                    .save(&png)
                    .unwrap();
                let judge_calls = if strategy == "baseline" { 0 } else { n };
                let g = format!("\"strategy\":\"{strategy}\",\"generator\":\"base\",\"forwards\":{forwards},\"judge_calls\":{judge_calls},\"candidates\":{n},\"truncated\":0,\"trace\":{{}}");
                let _ = writeln!(gen, "{{\"prompt_index\":{p},\"image_index\":{i},{g}}}");
                let ok = correct(p, i);
                let r = serde_json::json!({
                    "filename": png.display().to_string(),
                    "tag": tag,
                    "prompt": prompt,
                    "correct": ok,
                    "reason": if ok { "" } else { "expected bench>=1, found 0" },
                    "metadata": meta,
                    "details": "{}",
                });
                let r = r.to_string();
                let _ = writeln!(res, "{},{g}}}", &r[..r.len() - 1]);
            }
        }
        std::fs::write(dir.join("generation.jsonl"), gen).unwrap();
        std::fs::write(dir.join("results.jsonl"), res).unwrap();
    }

    pub(crate) const PROMPTS: &[(usize, &str, &str)] = &[
        (0, "single_object", "a photo of a bench"),
        (1, "single_object", "a photo of a cow"),
        (2, "single_object", "a photo of a bed"),
        (5, "counting", "a photo of two benches"),
        (6, "counting", "a photo of three cows"),
    ];

    #[test]
    fn runs_scored_by_different_detectors_are_flagged() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("runs/base");
        let b = d.path().join("runs/orm");
        fake_run(&a, "baseline", 1, 36, PROMPTS, 1, |_, _| true);
        fake_run(&b, "orm", 4, 144, PROMPTS, 1, |_, _| true);
        let differ = |w: &Written| {
            w.notes
                .iter()
                .find(|n| n.contains("different detectors"))
                .cloned()
        };
        let report = || {
            write_report(
                &[a.clone(), b.clone()],
                &d.path().join("report"),
                BootstrapOptions::default(),
            )
            .unwrap()
        };
        // Neither records one (runs made before the detector was recorded): one group, no note.
        assert_eq!(differ(&report()), None);
        let put = |dir: &Path, name: &str| {
            let json = serde_json::json!({ crate::SCORED_BY_KEY: name });
            std::fs::write(dir.join("summary.json"), json.to_string()).unwrap();
        };
        put(&a, "det-1");
        put(&b, "det-1");
        assert_eq!(differ(&report()), None);
        put(&b, "det-2");
        let note = differ(&report()).expect("a note");
        assert!(
            note.contains("baseline by det-1") && note.contains("orm N=4 (zero-shot) by det-2"),
            "{note}"
        );
        std::fs::remove_file(a.join("summary.json")).unwrap();
        let note = differ(&report()).expect("a note");
        assert!(note.contains("not recorded"), "{note}");
    }

    /// The official evaluator's output (a results.jsonl, absolute image paths, nothing else)
    /// reports beside an evalcot run: intervals and per-tag tables, compute unknown.
    #[test]
    fn a_results_file_alone_reports_with_compute_unknown() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("runs/base");
        fake_run(&a, "baseline", 1, 36, PROMPTS, 2, |p, i| (p + i) % 2 == 0);
        let official = d.path().join("sdxl-official");
        std::fs::create_dir_all(&official).unwrap();
        // The official results lines: filename, tag, prompt, correct, reason, metadata, details.
        let lines: String = std::fs::read_to_string(a.join("results.jsonl"))
            .unwrap()
            .lines()
            .map(|l| {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                let keep = [
                    "filename", "tag", "prompt", "correct", "reason", "metadata", "details",
                ];
                v.as_object_mut()
                    .unwrap()
                    .retain(|k, _| keep.contains(&k.as_str()));
                v["correct"] = (!v["correct"].as_bool().unwrap()).into();
                format!("{v}\n")
            })
            .collect();
        std::fs::write(official.join("results.jsonl"), &lines).unwrap();
        let out = d.path().join("report");
        let w = write_report(&[a, official.clone()], &out, BootstrapOptions::default()).unwrap();
        let run = &w.tables.runs[1];
        assert_eq!(run.label, "sdxl-official");
        assert!(run.forwards.is_nan());
        assert!(run.overall.low <= run.overall.value && run.overall.value <= run.overall.high);
        assert_eq!(run.tags.len(), 2);
        assert!(
            w.notes.iter().any(|n| n.contains("compute is unknown")),
            "{:?}",
            w.notes
        );
        let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
        assert!(
            csv.lines()
                .any(|l| l.starts_with("sdxl-official,") && l.contains(",,,,")),
            "{csv}"
        );
        assert!(out.join("accuracy_vs_compute.svg").exists());
        // The file itself is accepted as well, labelled by its stem when renamed.
        let renamed = d.path().join("janus.jsonl");
        std::fs::write(&renamed, &lines).unwrap();
        let w = write_report(
            &[renamed],
            &d.path().join("r2"),
            BootstrapOptions::default(),
        )
        .unwrap();
        assert_eq!(w.tables.runs[0].label, "janus");
    }

    #[test]
    fn report_writes_every_output() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("runs/base");
        let b = d.path().join("runs/orm");
        fake_run(&a, "baseline", 1, 36, PROMPTS, 2, |p, i| (p + i) % 2 == 0);
        fake_run(&b, "orm", 4, 144, PROMPTS, 2, |p, _| p != 6);
        let out = d.path().join("report");
        let w = write_report(&[a.clone(), b], &out, BootstrapOptions::default()).unwrap();
        assert_eq!(w.files.len(), 8);
        // No candidate verdicts in these traces: no curves, and notes say why.
        assert!(
            w.notes.iter().any(|n| n == NO_SCALING_CURVES),
            "{:?}",
            w.notes
        );
        assert!(
            w.notes
                .iter()
                .any(|n| n.starts_with("No best-of-N scaling curve for orm N=4")),
            "{:?}",
            w.notes
        );
        assert!(!out.join("scaling.png").exists());
        assert_eq!(w.tables.tags, ["single_object", "counting"]);
        let orm = &w.tables.runs[1];
        assert_eq!(orm.label, "orm N=4 (zero-shot)");
        assert_eq!((orm.forwards, orm.judge_calls), (144.0, 4.0));
        // single_object 6/6, counting 2/4: overall 0.75.
        assert!((orm.overall.value - 0.75).abs() < 1e-12);
        let md = std::fs::read_to_string(out.join("results.md")).unwrap();
        assert!(
            md.contains(
                "| orm N=4 (zero-shot) | 1.000 [1.000, 1.000] | 0.500 [0.000, 1.000] | **0.750**"
            ),
            "{md}"
        );
        let csv = std::fs::read_to_string(out.join("results.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 2 * 3);
        assert!(csv.contains("orm N=4 (zero-shot),"));
        let html = std::fs::read_to_string(out.join("index.html")).unwrap();
        assert!(
            html.contains("src=\"../runs/base/00005/samples/0001.png\""),
            "{html}"
        );
        for stem in ["accuracy_by_tag", "accuracy_vs_compute"] {
            let png = image::open(out.join(format!("{stem}.png")))
                .unwrap()
                .to_rgb8();
            assert_eq!(png.dimensions(), plots::SIZE);
            assert!(
                png.pixels().any(|p| p.0 != [255, 255, 255]),
                "{stem} is blank"
            );
            let svg = std::fs::read_to_string(out.join(format!("{stem}.svg"))).unwrap();
            assert!(svg.starts_with("<svg") && svg.contains("<rect"), "{stem}");
        }
        // The same input gives the same files.
        let out2 = d.path().join("report2");
        write_report(
            &w.tables
                .runs
                .iter()
                .map(|r| PathBuf::from(&r.dir))
                .collect::<Vec<_>>(),
            &out2,
            BootstrapOptions::default(),
        )
        .unwrap();
        for f in [
            "results.md",
            "results.csv",
            "results.tex",
            "accuracy_by_tag.svg",
        ] {
            assert_eq!(
                std::fs::read(out.join(f)).unwrap(),
                std::fs::read(out2.join(f)).unwrap(),
                "{f}"
            );
        }
    }

    /// Rewrites a fake run's `generation.jsonl` traces: `trace(prompt, image)`.
    pub(crate) fn set_traces(dir: &Path, trace: impl Fn(usize, usize) -> serde_json::Value) {
        let path = dir.join("generation.jsonl");
        let text = std::fs::read_to_string(&path).unwrap();
        let mut out = String::new();
        for line in text.lines() {
            let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
            let key = |k: &str| v[k].as_u64().unwrap() as usize;
            let t = trace(key("prompt_index"), key("image_index"));
            v["trace"] = t;
            let _ = writeln!(out, "{v}");
        }
        std::fs::write(path, out).unwrap();
    }

    #[test]
    fn report_draws_scaling_curves_from_candidate_verdicts() {
        let d = tempfile::tempdir().unwrap();
        let base = d.path().join("base");
        let orm = d.path().join("orm");
        let oracle = d.path().join("oracle");
        let old = d.path().join("old");
        fake_run(&base, "baseline", 1, 36, PROMPTS, 1, |_, _| true);
        fake_run(&orm, "orm", 2, 72, PROMPTS, 1, |_, _| true);
        fake_run(&oracle, "oracle", 2, 72, PROMPTS, 1, |_, _| true);
        fake_run(&old, "orm", 2, 72, PROMPTS, 1, |_, _| true);
        // ORM: candidate 0 right only for single_object, candidate 1 (higher score) always
        // right; oracle: candidate 0 right only for prompt 0, candidate 1 only for counting.
        set_traces(
            &orm,
            |p, _| serde_json::json!({"chosen": 1, "p_yes": [0.4, 0.6], "candidate_correct": [p < 5, true]}),
        );
        set_traces(
            &oracle,
            |p, _| serde_json::json!({"chosen": 0, "candidate_correct": [p == 0, p >= 5]}),
        );
        let out = d.path().join("report");
        let w = write_report(&[base, orm, oracle, old], &out, BootstrapOptions::default()).unwrap();
        assert_eq!(w.files.len(), 8 + 3);
        assert!(
            !w.notes.iter().any(|n| n == NO_SCALING_CURVES),
            "{:?}",
            w.notes
        );
        assert!(
            w.notes
                .iter()
                .any(|n| n.contains("orm N=2 (zero-shot) [old]")
                    && n.contains("trace.candidate_correct")),
            "{:?}",
            w.notes
        );
        let md = std::fs::read_to_string(out.join("results.md")).unwrap();
        // ORM: N′=1 single_object 1, counting 0 → 0.5; N′=2 1.0.
        // Oracle: N′=1 single_object 1/3, counting 0 → 0.167; N′=2 (1/3 + 1) / 2 = 0.667.
        assert!(
            md.contains("| orm N=2 (zero-shot) [orm] | 2 | 0.500 | 1.000 |"),
            "{md}"
        );
        assert!(md.contains("| oracle N=2 | 2 | 0.167 | 0.667 |"), "{md}");
        let csv = std::fs::read_to_string(out.join("scaling.csv")).unwrap();
        assert_eq!(csv.lines().count(), 1 + 2 * 2 * 3, "{csv}");
        let png = image::open(out.join("scaling.png")).unwrap().to_rgb8();
        assert_eq!(png.dimensions(), plots::SIZE);
        let svg = std::fs::read_to_string(out.join("scaling.svg")).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.contains("<polyline"),
            "{svg}"
        );
        let html = std::fs::read_to_string(out.join("index.html")).unwrap();
        assert!(html.contains("<img src=\"scaling.svg\""), "{html}");
        assert!(html.contains("<td>oracle N=2</td><td>2</td><td>0.167</td><td>0.667</td>"));
    }

    #[test]
    fn broken_runs_are_named_errors() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        fake_run(&a, "baseline", 1, 36, PROMPTS, 1, |_, _| true);
        let out = d.path().join("out");
        let gen = std::fs::read_to_string(a.join("generation.jsonl")).unwrap();
        std::fs::write(
            a.join("generation.jsonl"),
            gen.lines()
                .skip(1)
                .map(|l| format!("{l}\n"))
                .collect::<String>(),
        )
        .unwrap();
        let e = write_report(std::slice::from_ref(&a), &out, BootstrapOptions::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("generation.jsonl") && e.contains("prompt 0 image 0"),
            "{e}"
        );
        std::fs::write(
            a.join("generation.jsonl"),
            gen.replacen("\"forwards\":36", "\"forwards\":\"x\"", 1),
        )
        .unwrap();
        let e = write_report(std::slice::from_ref(&a), &out, BootstrapOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("generation.jsonl:1"), "{e}");
        std::fs::write(a.join("generation.jsonl"), &gen).unwrap();
        std::fs::write(a.join("config.yaml"), "strategy: [\n").unwrap();
        let e = write_report(std::slice::from_ref(&a), &out, BootstrapOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.yaml"), "{e}");
        let e = write_report(&[d.path().join("nope")], &out, BootstrapOptions::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("nope") && e.contains("not a run folder"), "{e}");
        assert!(!out.join("index.html").exists());
    }
}
