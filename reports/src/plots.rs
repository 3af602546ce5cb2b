//! Plots of a report, drawn with `plotters` into PNG (bitmap backend, encoded with `image`) and
//! SVG: accuracy per tag and run (grouped bars with intervals), and overall accuracy against
//! generator forwards per image with the Pareto front marked, and best-of-N scaling curves.
//!
//! Text needs a font file: plotters' `ab_glyph` backend loads no system fonts by itself, so one is
//! looked up at run time (`EVALCOT_FONT`, then common DejaVu/Liberation paths). Without one the
//! plots are drawn without any text (the tables carry the numbers) and [`crate::font::Font::missing`] says so.

use crate::scaling::Scaling;
use crate::stats::{log_ticks, pareto_front};
use crate::tables::Tables;
use harness::error::{Error, Location, Result};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;

const PALETTE: &[RGBColor] = &[
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// Size of every plot, in pixels.
pub const SIZE: (u32, u32) = (1000, 560);

/// Grouped bars: one group per tag (and `overall`), one bar per run, interval whiskers.
pub fn accuracy_by_tag<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    t: &Tables,
    text: bool,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let mut groups: Vec<String> = t.tags.clone();
    groups.push("overall".into());
    let nruns = t.runs.len().max(1);
    let legend_rows = if text { nruns.div_ceil(3) } else { 0 };
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(12)
        .margin_bottom(16 + 18 * legend_rows as u32)
        .x_label_area_size(if text { 28 } else { 4 })
        .y_label_area_size(if text { 52 } else { 4 });
    if text {
        builder.caption("GenEval accuracy per tag", ("sans-serif", 20));
    }
    let mut chart = builder
        .build_cartesian_2d(0f64..groups.len() as f64, 0f64..1.0f64)
        .map_err(e)?;
    {
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh().x_labels(0);
        if text {
            mesh.y_desc("image accuracy")
                .y_labels(6)
                .y_label_formatter(&|v| format!("{v:.1}"))
                .label_style(("sans-serif", 13));
        } else {
            mesh.y_labels(0);
        }
        mesh.draw().map_err(e)?;
    }
    let width = 0.8 / nruns as f64;
    for (j, r) in t.runs.iter().enumerate() {
        let c = color(j);
        let mut bars = Vec::new();
        let mut whiskers = Vec::new();
        for (g, name) in groups.iter().enumerate() {
            let est = if name == "overall" && g == groups.len() - 1 {
                Some(r.overall)
            } else {
                r.tags.get(name).map(|s| s.estimate)
            };
            let Some(est) = est else { continue };
            let x0 = g as f64 + 0.1 + j as f64 * width;
            let x1 = x0 + width * 0.92;
            bars.push(Rectangle::new([(x0, 0.0), (x1, est.value)], c.filled()));
            let xm = (x0 + x1) / 2.0;
            let cap = width * 0.2;
            whiskers.push(PathElement::new(vec![(xm, est.low), (xm, est.high)], BLACK));
            whiskers.push(PathElement::new(
                vec![(xm - cap, est.low), (xm + cap, est.low)],
                BLACK,
            ));
            whiskers.push(PathElement::new(
                vec![(xm - cap, est.high), (xm + cap, est.high)],
                BLACK,
            ));
        }
        let series = chart.draw_series(bars).map_err(e)?;
        if text {
            series
                .label(r.label.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
        }
        chart.draw_series(whiskers).map_err(e)?;
    }
    if text {
        for (g, name) in groups.iter().enumerate() {
            axis_label(root, &chart, g as f64 + 0.5, name, 8)?;
        }
        legend(root, t)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

/// The run labels with their colours, in rows of three under the chart.
fn legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    t: &Tables,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let (w, h) = root.dim_in_pixel();
    let rows = t.runs.len().div_ceil(3);
    let col_w = (w as i32 - 80) / 3;
    for (j, r) in t.runs.iter().enumerate() {
        let x = 60 + (j % 3) as i32 * col_w;
        let y = h as i32 - 14 - 18 * (rows as i32 - 1 - (j / 3) as i32);
        root.draw(&Rectangle::new(
            [(x, y - 6), (x + 12, y + 6)],
            color(j).filled(),
        ))
        .map_err(e)?;
        root.draw_text(
            &r.label,
            &("sans-serif", 13)
                .into_text_style(root)
                .pos(Pos::new(HPos::Left, VPos::Center)),
            (x + 18, y),
        )
        .map_err(e)?;
    }
    Ok(())
}

fn num_label(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A vertical grid line at `x` (chart units) with `label` below the axis (with text only).
fn x_tick<'a, DB: DrawingBackend + 'a>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x: f64,
    label: &str,
    text: bool,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    chart
        .draw_series([PathElement::new(
            vec![(x, 0.0), (x, 1.0)],
            RGBColor(215, 215, 215),
        )])
        .map_err(e)?;
    if text {
        axis_label(root, chart, x, label, 6)?;
    }
    Ok(())
}

/// `label` centred under the x axis at `x` (chart units), `dy` pixels below it.
fn axis_label<'a, DB: DrawingBackend + 'a>(
    root: &DrawingArea<DB, Shift>,
    chart: &ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    x: f64,
    label: &str,
    dy: i32,
) -> std::result::Result<(), String> {
    let (px, py) = chart.backend_coord(&(x, 0.0));
    root.draw_text(
        label,
        &("sans-serif", 13)
            .into_text_style(root)
            .pos(Pos::new(HPos::Center, VPos::Top)),
        (px, py + dy),
    )
    .map_err(|e| e.to_string())
}

/// Draws the series legend (with text only) and presents the drawing.
fn legend_and_present<'a, DB: DrawingBackend + 'a>(
    root: &DrawingArea<DB, Shift>,
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    legend: bool,
    position: SeriesLabelPosition,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    if legend {
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .position(position)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)
}

/// A chart of overall accuracy (y in [0, 1]) over a log-scale `x` range, with its caption and
/// mesh drawn; the caller draws the x ticks (labels in data units, not log units).
#[allow(clippy::type_complexity)]
fn accuracy_chart<'a, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    x: std::ops::Range<f64>,
    caption: &str,
    x_desc: &str,
    text: bool,
) -> std::result::Result<
    ChartContext<
        'a,
        DB,
        Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
    >,
    String,
> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let mut builder = ChartBuilder::on(root);
    builder
        .margin(16)
        .x_label_area_size(if text { 44 } else { 4 })
        .y_label_area_size(if text { 52 } else { 4 });
    if text {
        builder.caption(caption, ("sans-serif", 20));
    }
    let mut chart = builder.build_cartesian_2d(x, 0f64..1.0f64).map_err(e)?;
    {
        let mut mesh = chart.configure_mesh();
        mesh.disable_x_mesh()
            .x_labels(0)
            .light_line_style(RGBColor(238, 238, 238));
        if text {
            mesh.x_desc(x_desc)
                .y_desc("overall accuracy")
                .y_labels(6)
                .y_label_formatter(&|v| format!("{v:.1}"))
                .label_style(("sans-serif", 13));
        } else {
            mesh.y_labels(0);
        }
        mesh.draw().map_err(e)?;
    }
    Ok(chart)
}

/// Overall accuracy (with interval) against generator forwards per image (log scale), the
/// Pareto front drawn as a dashed line through its runs, which are ringed.
pub fn accuracy_vs_compute<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    t: &Tables,
    text: bool,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    // x = log10(forwards per image), labelled with the forwards.
    // Runs whose compute is unknown (a results file alone) have no place on this axis; the
    // colours stay those of the other plots (by run index).
    let shown: Vec<(usize, &crate::tables::RunStats)> = t
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.forwards.is_finite())
        .collect();
    let xs: Vec<f64> = shown
        .iter()
        .map(|(_, r)| r.forwards.max(1.0).log10())
        .collect();
    let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = if xs.is_empty() {
        (0.0, 1.0)
    } else {
        let pad = ((hi - lo) * 0.12).max(0.15);
        (lo - pad, hi + pad)
    };
    let mut chart = accuracy_chart(
        root,
        lo..hi,
        "GenEval overall accuracy against compute",
        "generator forward passes per image (log scale)",
        text,
    )?;
    let mut ticks = log_ticks(lo, hi);
    if ticks.len() < 2 {
        ticks.extend(shown.iter().map(|(_, r)| r.forwards.max(1.0).round()));
        ticks.sort_by(f64::total_cmp);
        ticks.dedup();
    }
    for v in ticks {
        x_tick(root, &mut chart, v.log10(), &num_label(v), text)?;
    }
    let points: Vec<(f64, f64)> = shown
        .iter()
        .zip(&xs)
        .map(|((_, r), x)| (*x, r.overall.value))
        .collect();
    let front = pareto_front(&points);
    let front_line: Vec<(f64, f64)> = front.iter().map(|&i| points[i]).collect();
    let grey = RGBColor(90, 90, 90);
    // Dashes, drawn as short segments (portable across backends).
    let mut dashes = Vec::new();
    for w in front_line.windows(2) {
        let (a, b) = (chart.backend_coord(&w[0]), chart.backend_coord(&w[1]));
        let len = (((b.0 - a.0).pow(2) + (b.1 - a.1).pow(2)) as f64).sqrt();
        let steps = (len / 8.0).ceil().max(1.0) as usize;
        for s in (0..steps).step_by(2) {
            let f0 = s as f64 / steps as f64;
            let f1 = ((s + 1) as f64 / steps as f64).min(1.0);
            let lerp = |f: f64| {
                (
                    w[0].0 + (w[1].0 - w[0].0) * f,
                    w[0].1 + (w[1].1 - w[0].1) * f,
                )
            };
            dashes.push(PathElement::new(
                vec![lerp(f0), lerp(f1)],
                grey.stroke_width(2),
            ));
        }
    }
    let dash_series = chart.draw_series(dashes).map_err(e)?;
    if text {
        dash_series.label("Pareto front").legend(move |(x, y)| {
            PathElement::new(vec![(x, y), (x + 14, y)], grey.stroke_width(2))
        });
    }
    for (k, ((j, r), p)) in shown.iter().zip(&points).enumerate() {
        let c = color(*j);
        let x = p.0;
        chart
            .draw_series([PathElement::new(
                vec![(x, r.overall.low), (x, r.overall.high)],
                c.stroke_width(2),
            )])
            .map_err(e)?;
        let s = chart
            .draw_series([Circle::new(*p, 6, c.filled())])
            .map_err(e)?;
        if text {
            s.label(r.label.clone())
                .legend(move |(x, y)| Circle::new((x + 6, y), 5, c.filled()));
        }
        if front.contains(&k) {
            chart
                .draw_series([Circle::new(*p, 10, BLACK.stroke_width(2))])
                .map_err(e)?;
        }
    }
    legend_and_present(root, &mut chart, text, SeriesLabelPosition::UpperLeft)
}

/// The plots a report writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plot {
    AccuracyByTag,
    AccuracyVsCompute,
}

impl Plot {
    pub const ALL: [Plot; 2] = [Plot::AccuracyByTag, Plot::AccuracyVsCompute];

    /// File stem (`.png` and `.svg` are written).
    pub fn stem(self) -> &'static str {
        match self {
            Plot::AccuracyByTag => "accuracy_by_tag",
            Plot::AccuracyVsCompute => "accuracy_vs_compute",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Plot::AccuracyByTag => "Accuracy per tag and run, with bootstrap intervals",
            Plot::AccuracyVsCompute => {
                "Overall accuracy against generator forwards per image (Pareto front ringed and dashed)"
            }
        }
    }

    pub fn draw<DB: DrawingBackend>(
        self,
        root: &DrawingArea<DB, Shift>,
        t: &Tables,
        text: bool,
    ) -> std::result::Result<(), String> {
        match self {
            Plot::AccuracyByTag => accuracy_by_tag(root, t, text),
            Plot::AccuracyVsCompute => accuracy_vs_compute(root, t, text),
        }
    }
}

fn plot_error(path: &Path, message: String) -> Error {
    Error::invalid(
        Location::file(path.display().to_string()),
        format!("could not draw the plot: {message}"),
    )
}

/// PNG bytes of a plot.
pub fn render_png(plot: Plot, t: &Tables, text: bool, path: &Path) -> Result<Vec<u8>> {
    png_of(path, |root| plot.draw(root, t, text))
}

/// SVG text of a plot.
pub fn render_svg(plot: Plot, t: &Tables, text: bool, path: &Path) -> Result<String> {
    svg_of(path, |root| plot.draw(root, t, text))
}

/// PNG bytes of the best-of-N scaling plot.
pub fn render_scaling_png(s: &Scaling, text: bool, path: &Path) -> Result<Vec<u8>> {
    png_of(path, |root| scaling_curves(root, s, text))
}

/// SVG text of the best-of-N scaling plot.
pub fn render_scaling_svg(s: &Scaling, text: bool, path: &Path) -> Result<String> {
    svg_of(path, |root| scaling_curves(root, s, text))
}

fn png_of(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<Vec<u8>> {
    let (w, h) = SIZE;
    let mut buf = vec![0u8; (w * h * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        draw(&root).map_err(|m| plot_error(path, m))?;
    }
    let img = image::RgbImage::from_raw(w, h, buf)
        .ok_or_else(|| plot_error(path, "bitmap of the wrong size".into()))?;
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| plot_error(path, e.to_string()))?;
    Ok(png)
}

fn svg_of(
    path: &Path,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, Shift>) -> std::result::Result<(), String>,
) -> Result<String> {
    let mut s = String::new();
    {
        let root = SVGBackend::with_string(&mut s, SIZE).into_drawing_area();
        draw(&root).map_err(|m| plot_error(path, m))?;
    }
    Ok(s)
}

/// Title of the scaling plot (its figure caption on the page).
pub const SCALING_TITLE: &str = "Best-of-N scaling: overall accuracy when picking among the first N′ candidates of each run (N′ = 1: plain sampling)";

/// File stem of the scaling plot.
pub const SCALING_STEM: &str = "scaling";

/// Overall accuracy against N′ (log2 scale), one line per curve, coloured as its run in the
/// other plots.
pub fn scaling_curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &Scaling,
    text: bool,
) -> std::result::Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let ns = s.n_primes();
    let hi = ns.last().map_or(1.0, |&n| (n.max(2) as f64).log2());
    let (lo, hi) = (-0.3, hi + 0.3);
    let mut chart = accuracy_chart(
        root,
        lo..hi,
        "Best-of-N scaling (GenEval overall accuracy)",
        "N′: candidates the pick is made among (log2 scale)",
        text,
    )?;
    for &n in &ns {
        x_tick(root, &mut chart, (n as f64).log2(), &n.to_string(), text)?;
    }
    for c in &s.curves {
        let col = color(c.run);
        let pts: Vec<(f64, f64)> = c
            .points
            .iter()
            .map(|p| ((p.n as f64).log2(), p.overall))
            .collect();
        let line = chart
            .draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
            .map_err(e)?;
        if text {
            line.label(c.label.clone()).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 14, y)], col.stroke_width(2))
            });
        }
        chart
            .draw_series(pts.iter().map(|p| Circle::new(*p, 4, col.filled())))
            .map_err(e)?;
    }
    legend_and_present(
        root,
        &mut chart,
        text && !s.curves.is_empty(),
        SeriesLabelPosition::LowerRight,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pareto_front_keeps_the_non_dominated_runs() {
        // (compute, accuracy)
        let pts = [
            (10.0, 0.3),
            (20.0, 0.5),
            (15.0, 0.2),
            (40.0, 0.5),
            (80.0, 0.7),
            (10.0, 0.35),
        ];
        assert_eq!(pareto_front(&pts), vec![5, 1, 4]);
        assert!(pareto_front(&[]).is_empty());
        assert_eq!(log_ticks(1.3, 2.4), vec![20.0, 50.0, 100.0, 200.0]);
    }

    #[test]
    fn plots_draw_without_text_when_no_font_is_available() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        crate::report::tests::fake_run(
            &a,
            "orm",
            2,
            72,
            crate::report::tests::PROMPTS,
            2,
            |p, i| (p + i) % 3 == 0,
        );
        let runs = vec![crate::run::Run::load(&a).unwrap()];
        let t = Tables::compute(&runs, crate::tables::BootstrapOptions::default());
        for plot in Plot::ALL {
            let png = render_png(plot, &t, false, Path::new("x.png")).unwrap();
            let img = image::load_from_memory(&png).unwrap().to_rgb8();
            assert!(img.pixels().any(|p| p.0 != [255, 255, 255]));
            let svg = render_svg(plot, &t, false, Path::new("x.svg")).unwrap();
            assert!(!svg.contains("<text"), "{svg}");
        }
        let s = crate::scaling::Scaling {
            curves: vec![crate::scaling::Curve {
                run: 0,
                label: "oracle N=4".into(),
                dir: "a".into(),
                strategy: "oracle".into(),
                n: 4,
                points: [(1, 0.2), (2, 0.5), (4, 0.7)]
                    .map(|(n, overall)| crate::scaling::Point {
                        n,
                        tags: Vec::new(),
                        overall,
                    })
                    .to_vec(),
            }],
            notes: Vec::new(),
        };
        let png = render_scaling_png(&s, false, Path::new("x.png")).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert!(
            img.pixels().any(|p| p.0 == [31, 119, 180]),
            "no curve drawn"
        );
        let svg = render_scaling_svg(&s, false, Path::new("x.svg")).unwrap();
        assert!(!svg.contains("<text") && svg.contains("<polyline"), "{svg}");
    }
}
