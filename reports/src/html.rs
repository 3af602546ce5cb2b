//! The offline report page: tables, plots and image grids (prompt × run) that point at the
//! runs' PNGs by relative paths, so the page works from disk and the folders can be moved
//! together.

use crate::run::Run;
use crate::scaling::Scaling;
use crate::tables::{interval, num, Tables};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::{Component, Path, PathBuf};

/// What the page shows besides the tables.
pub struct Page<'a> {
    pub tables: &'a Tables,
    pub runs: &'a [Run],
    /// The report folder (links are relative to it).
    pub out: &'a Path,
    /// `(file stem, title)` of each plot; `.svg` is shown, `.png` linked.
    pub plots: &'a [(&'a str, &'a str)],
    /// Best-of-N scaling curves (a table under the plots when there are any).
    pub scaling: &'a Scaling,
    /// Sentences shown under the plots (missing font, scaling curves).
    pub notes: &'a [String],
}

pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

/// Percent-encodes one path segment for a URL.
fn url_segment(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

fn absolute(p: &Path) -> PathBuf {
    if let Ok(c) = p.canonicalize() {
        return c;
    }
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    }
}

/// `target` relative to the folder `base`, as URL path segments (`../runs/orm`); the absolute
/// path when they share no root (other drive).
pub fn relative_url(target: &Path, base: &Path) -> String {
    let t = absolute(target);
    let b = absolute(base);
    let tc: Vec<Component> = t.components().collect();
    let bc: Vec<Component> = b.components().collect();
    let common = tc.iter().zip(&bc).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return format!("file://{}", t.display());
    }
    let mut parts: Vec<String> = vec!["..".into(); bc.len() - common];
    parts.extend(
        tc[common..]
            .iter()
            .map(|c| url_segment(&c.as_os_str().to_string_lossy())),
    );
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:4px 8px;text-align:right;vertical-align:top}th:first-child,td:first-child{text-align:left}.ci{color:#777;font-size:85%}.grid td{text-align:left}.grid img{width:72px;height:72px;image-rendering:pixelated;border:3px solid;margin:1px}.ok{border-color:#2a2!important}.bad{border-color:#d22!important}.failed{display:inline-block;width:72px;height:72px;border:3px solid #d22;font-size:11px;text-align:center;line-height:72px}figure{margin:1em 0}figure img{max-width:100%;border:1px solid #ddd}";

pub fn render(p: &Page<'_>) -> String {
    let t = p.tables;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>evalcot report</title><style>{STYLE}</style></head><body>"
    );
    let _ = writeln!(s, "<h1>GenEval report</h1>");
    let _ = writeln!(
        s,
        "<p>Image accuracy per tag and overall (mean over tags, as GenEval), with {} bootstrap intervals from {} resamples of prompts within each tag (seed {}). Tables also in <a href=\"results.md\">Markdown</a>, <a href=\"results.csv\">CSV</a> and <a href=\"results.tex\">LaTeX</a>.</p>",
        t.level_percent(),
        t.options.resamples,
        t.options.seed
    );
    if !t.same_prompts {
        let _ = writeln!(
            s,
            "<p><strong>Note:</strong> the runs cover different prompts; their scores are not directly comparable.</p>"
        );
    }
    // Accuracy.
    let _ = writeln!(s, "<h2>Accuracy</h2>\n<table><tr><th>run</th>");
    for tag in &t.tags {
        let _ = write!(s, "<th>{}</th>", escape(tag));
    }
    let _ = writeln!(s, "<th>overall</th></tr>");
    for r in &t.runs {
        let _ = write!(s, "<tr><td>{}</td>", escape(&r.label));
        for tag in &t.tags {
            match r.tags.get(tag) {
                Some(ts) => {
                    let _ = write!(
                        s,
                        "<td>{:.3} <span class=\"ci\">{}</span></td>",
                        ts.estimate.value,
                        interval(&ts.estimate)
                    );
                }
                None => s.push_str("<td>—</td>"),
            }
        }
        let _ = writeln!(
            s,
            "<td><b>{:.3}</b> <span class=\"ci\">{}</span></td></tr>",
            r.overall.value,
            interval(&r.overall)
        );
    }
    let _ = writeln!(s, "</table>");
    // Compute.
    let _ = writeln!(
        s,
        "<h2>Compute per image</h2>\n<table><tr><th>run</th><th>folder</th><th>generator</th><th>prompts</th><th>images</th><th>failed</th><th>generator forwards</th><th>judge calls</th><th>candidates</th><th>truncated</th><th>wall s</th></tr>"
    );
    for (r, run) in t.runs.iter().zip(p.runs) {
        let _ = writeln!(
            s,
            "<tr><td>{}</td><td><a href=\"{}/\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.label),
            escape(&relative_url(&run.dir, p.out)),
            escape(&r.dir),
            escape(&r.generator),
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
    let _ = writeln!(s, "</table>");
    // Plots.
    let _ = writeln!(s, "<h2>Plots</h2>");
    for (stem, title) in p.plots {
        let _ = writeln!(
            s,
            "<figure><img src=\"{stem}.svg\" alt=\"{}\"><figcaption>{} (<a href=\"{stem}.png\">PNG</a>, <a href=\"{stem}.svg\">SVG</a>)</figcaption></figure>",
            escape(title),
            escape(title)
        );
    }
    if !p.scaling.curves.is_empty() {
        let ns = p.scaling.n_primes();
        let _ = writeln!(
            s,
            "<h3>Best-of-N scaling</h3>\n<p>Overall accuracy when the strategy picks among the first N′ of the run's candidates (ORM: highest verifier score; oracle: any correct); N′ = 1 is plain sampling. Also in <a href=\"scaling.csv\">CSV</a>.</p>\n<table><tr><th>run</th><th>N</th>"
        );
        for n in &ns {
            let _ = write!(s, "<th>N′={n}</th>");
        }
        let _ = writeln!(s, "</tr>");
        for c in &p.scaling.curves {
            let _ = write!(s, "<tr><td>{}</td><td>{}</td>", escape(&c.label), c.n);
            for n in &ns {
                match c.points.iter().find(|q| q.n == *n) {
                    Some(q) => {
                        let _ = write!(s, "<td>{:.3}</td>", q.overall);
                    }
                    None => s.push_str("<td>—</td>"),
                }
            }
            let _ = writeln!(s, "</tr>");
        }
        let _ = writeln!(s, "</table>");
    }
    for n in p.notes {
        let _ = writeln!(s, "<p>{}</p>", escape(n));
    }
    // Image grids: one table per tag, a row per prompt, a column per run.
    let _ = writeln!(
        s,
        "<h2>Images</h2>\n<p>Green border: correct; red: incorrect (hover for the reason).</p>"
    );
    let run_urls: Vec<String> = p.runs.iter().map(|r| relative_url(&r.dir, p.out)).collect();
    for tag in &t.tags {
        // prompt index -> prompt text, across runs.
        let mut prompts: BTreeMap<usize, &str> = BTreeMap::new();
        for r in p.runs {
            for img in r.images.iter().filter(|i| &i.tag == tag) {
                prompts.entry(img.prompt_index).or_insert(&img.prompt);
            }
        }
        let _ = writeln!(
            s,
            "<h3>{}</h3>\n<table class=\"grid\"><tr><th>prompt</th>",
            escape(tag)
        );
        for r in &t.runs {
            let _ = write!(s, "<th>{}</th>", escape(&r.label));
        }
        let _ = writeln!(s, "</tr>");
        for (index, prompt) in &prompts {
            let _ = write!(s, "<tr><td>{index}: {}</td>", escape(prompt));
            for (run, url) in p.runs.iter().zip(&run_urls) {
                s.push_str("<td>");
                let start = run.images.partition_point(|i| i.prompt_index < *index);
                for img in run.images[start..]
                    .iter()
                    .take_while(|i| i.prompt_index == *index)
                {
                    let class = if img.correct { "ok" } else { "bad" };
                    let title = if img.correct {
                        format!("image {}: correct", img.image_index)
                    } else {
                        format!("image {}: {}", img.image_index, img.reason)
                    };
                    if run.sample_path(img.key()).exists() {
                        let _ = write!(
                            s,
                            "<img class=\"{class}\" loading=\"lazy\" src=\"{url}/{:05}/samples/{:04}.png\" title=\"{}\" alt=\"{}\">",
                            img.prompt_index,
                            img.image_index,
                            escape(&title),
                            escape(&title)
                        );
                    } else {
                        let _ = write!(
                            s,
                            "<span class=\"failed\" title=\"{}\">no image</span>",
                            escape(&title)
                        );
                    }
                }
                s.push_str("</td>");
            }
            let _ = writeln!(s, "</tr>");
        }
        let _ = writeln!(s, "</table>");
    }
    let _ = writeln!(s, "</body></html>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_urls() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("report");
        let run = d.path().join("runs").join("orm n=4");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::create_dir_all(&run).unwrap();
        assert_eq!(relative_url(&run, &out), "../runs/orm%20n%3D4");
        assert_eq!(relative_url(&out, &out), ".");
        assert_eq!(relative_url(&out.join("x"), &out), "x");
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
    }
}
