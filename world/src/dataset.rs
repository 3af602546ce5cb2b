//! Writing the world to disk: the ground-truth suite in the official GenEval layout, training
//! datasets (images + JSONL annotations) and the contact sheet. Rendering runs in parallel with
//! rayon; each item depends only on `(seed, index)`, and output is written in index order, so
//! files are identical for any number of threads.

use crate::palette;
use crate::prompts;
use crate::raster::Placement;
use crate::scene::{random_scene_styled, scene_for_metadata, Scene, SceneOptions, Style};
use crate::WorldError;
use harness::fsutil::write_atomic;
use harness::layout::LayoutWriter;
use harness::rng::{derive_seed, Rng};
use harness::{ClassId, Color, Metadata, Suite};
use image::{Rgb, RgbImage};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Items rendered per parallel batch before they are written (bounds memory).
const BATCH: usize = 512;

/// PNG bytes of an image.
pub fn png_bytes(image: &RgbImage, path: &Path) -> Result<Vec<u8>, WorldError> {
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| WorldError::Image {
            path: path.display().to_string(),
            message: format!("PNG encoding failed: {e}"),
        })?;
    Ok(bytes)
}

fn progress(len: usize, what: &str, show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(len as u64);
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_string());
    bar
}

/// What [`write_suite`] wrote.
#[derive(Debug, Clone)]
pub struct SuiteReport {
    pub images: usize,
    pub prompts: usize,
    pub detections: PathBuf,
}

/// The seed of image `image` of prompt `prompt` in the ground-truth suite.
pub fn suite_seed(seed: u64, prompt: usize, image: usize) -> u64 {
    derive_seed(seed, &[prompt as u64, image as u64])
}

/// Image `image` of official prompt `p` in the ground-truth suite of `seed`, drawn in `style`.
pub fn suite_scene(
    p: &harness::PromptEntry,
    seed: u64,
    image: usize,
    style: Style,
) -> Result<Scene, WorldError> {
    scene_for_metadata(
        &p.metadata,
        suite_seed(seed, p.index, image),
        &SceneOptions::in_style(style),
    )
}

/// Ground-truth renders of the official prompts in the official layout (`DIR/<05d>/…`), plus
/// `DIR/detections.jsonl` with the exact detections in the `score --detections` format.
pub fn write_suite(
    dir: &Path,
    selection: &harness::Selection,
    images_per_prompt: usize,
    seed: u64,
    style: Style,
    show_progress: bool,
) -> Result<SuiteReport, WorldError> {
    let suite = Suite::official();
    let chosen = suite.select(selection)?;
    let writer = LayoutWriter::create(dir)?;
    for p in &chosen {
        writer.write_metadata(p.index, &p.metadata)?;
    }
    // A render depends on (seed, prompt index, image index) only: a selection renders exactly
    // those images of the whole suite.
    let jobs: Vec<(usize, usize)> = chosen
        .iter()
        .flat_map(|p| (0..images_per_prompt).map(move |i| (p.index, i)))
        .collect();
    let bar = progress(jobs.len(), "suite", show_progress);
    let lines: Vec<String> = jobs
        .par_iter()
        .map(|&(pi, ii)| -> Result<String, WorldError> {
            let meta = &suite.prompts[pi].metadata;
            let scene = suite_scene(&suite.prompts[pi], seed, ii, style)?;
            writer.write_sample(pi, ii, &scene.image)?;
            let raw: Value = meta.raw().clone();
            let line = json!({
                "folder": LayoutWriter::folder_name(pi),
                "image": LayoutWriter::image_name(ii),
                "metadata": raw,
                "detections": scene.detections_json(),
            });
            bar.inc(1);
            Ok(line.to_string())
        })
        .collect::<Result<_, _>>()?;
    bar.finish_and_clear();
    let path = dir.join("detections.jsonl");
    write_atomic(&path, (lines.join("\n") + "\n").as_bytes())?;
    // The marker that lets `evalcot score` use the embedded detector, which knows this world only.
    let marker = json!({
        "written_by": "evalcot world suite",
        "seed": seed,
        "images_per_prompt": images_per_prompt,
        "style": style,
    });
    write_atomic(
        &dir.join(harness::layout::WORLD_MARKER),
        (marker.to_string() + "\n").as_bytes(),
    )?;
    Ok(SuiteReport {
        images: jobs.len(),
        prompts: chosen.len(),
        detections: path,
    })
}

/// What a dataset holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatasetKind {
    /// Scenes of training prompts (generator training: prompt → image).
    Prompts,
    /// Scenes of 0–5 random objects, about 5% empty (detector training).
    Detector,
}

impl DatasetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetKind::Prompts => "prompts",
            DatasetKind::Detector => "detector",
        }
    }
}

/// One dataset item, in memory.
#[derive(Debug, Clone)]
pub struct Sample {
    pub index: usize,
    /// The seed the scene was rendered from.
    pub seed: u64,
    /// The training prompt (prompts datasets only).
    pub metadata: Option<Metadata>,
    pub scene: Scene,
}

/// Renders dataset items by `(seed, index)` without touching the disk; this is what training
/// code calls. Prompt datasets draw from the *train* split of [`prompts::training_prompts`].
pub struct SampleSource {
    kind: DatasetKind,
    seed: u64,
    prompts: Vec<Metadata>,
    style: Style,
}

impl SampleSource {
    pub fn new(kind: DatasetKind, seed: u64) -> SampleSource {
        SampleSource::styled(kind, seed, Style::Natural)
    }

    /// Items drawn in `style` (the canonical style is the generator's world).
    pub fn styled(kind: DatasetKind, seed: u64, style: Style) -> SampleSource {
        let prompts = match kind {
            DatasetKind::Prompts => {
                prompts::split(
                    &prompts::training_prompts(prompts::DEFAULT_COUNT, seed),
                    seed,
                )
                .0
            }
            DatasetKind::Detector => Vec::new(),
        };
        SampleSource {
            kind,
            seed,
            prompts,
            style,
        }
    }

    /// The training prompts items are drawn from (empty for detector datasets).
    pub fn prompts(&self) -> &[Metadata] {
        &self.prompts
    }

    /// Item `index`.
    pub fn sample(&self, index: usize) -> Result<Sample, WorldError> {
        let seed = derive_seed(self.seed, &[index as u64]);
        let mut rng = Rng::derived(seed, &[u64::MAX]);
        match self.kind {
            DatasetKind::Prompts => {
                let meta = rng.choose(&self.prompts).ok_or_else(|| {
                    WorldError::Unsatisfiable("no training prompts to draw from".into())
                })?;
                let opts = SceneOptions::in_style(self.style);
                let scene = scene_for_metadata(meta, seed, &opts)?;
                Ok(Sample {
                    index,
                    seed,
                    metadata: Some(meta.clone()),
                    scene,
                })
            }
            DatasetKind::Detector => {
                let n = if rng.chance(0.05) {
                    0
                } else {
                    1 + rng.index(5)
                };
                Ok(Sample {
                    index,
                    seed,
                    metadata: None,
                    scene: random_scene_styled(seed, n, self.style),
                })
            }
        }
    }
}

/// The relative image path of dataset item `index`.
pub fn dataset_image_name(index: usize) -> String {
    format!("images/{index:07}.png")
}

/// Writes `n` items to `DIR/images/<07d>.png` and `DIR/annotations.jsonl` (one line per image:
/// `{"image", "seed", "prompt"?, "metadata"?, "objects": [{"class", "color", "box"}]}`).
pub fn write_dataset(
    dir: &Path,
    kind: DatasetKind,
    n: usize,
    seed: u64,
    style: Style,
    show_progress: bool,
) -> Result<usize, WorldError> {
    let source = SampleSource::styled(kind, seed, style);
    let bar = progress(n, kind.as_str(), show_progress);
    let mut lines = String::new();
    for start in (0..n).step_by(BATCH) {
        let end = (start + BATCH).min(n);
        let batch: Vec<String> = (start..end)
            .into_par_iter()
            .map(|i| -> Result<String, WorldError> {
                let s = source.sample(i)?;
                let name = dataset_image_name(i);
                let path = dir.join(&name);
                write_atomic(&path, &png_bytes(&s.scene.image, &path)?)?;
                let mut line = serde_json::Map::new();
                line.insert("image".into(), json!(name));
                line.insert("seed".into(), json!(s.seed));
                if let Some(m) = &s.metadata {
                    line.insert("prompt".into(), json!(m.prompt));
                    line.insert("metadata".into(), m.raw().clone());
                }
                line.insert("objects".into(), s.scene.objects_json());
                bar.inc(1);
                Ok(Value::Object(line).to_string())
            })
            .collect::<Result<_, _>>()?;
        for l in batch {
            lines.push_str(&l);
            lines.push('\n');
        }
    }
    bar.finish_and_clear();
    write_atomic(&dir.join("annotations.jsonl"), lines.as_bytes())?;
    Ok(n)
}

/// Colours shown for each class on the contact sheet.
pub const SHEET_COLORS: [Color; 5] = [
    Color::Red,
    Color::Blue,
    Color::Yellow,
    Color::Black,
    Color::White,
];

/// A 3×5 pixel font for labels (lowercase letters and space), one row per 3-bit number.
fn glyph_bits(ch: char) -> [u8; 5] {
    match ch {
        'a' => [2, 5, 7, 5, 5],
        'b' => [6, 5, 6, 5, 6],
        'c' => [3, 4, 4, 4, 3],
        'd' => [6, 5, 5, 5, 6],
        'e' => [7, 4, 6, 4, 7],
        'f' => [7, 4, 6, 4, 4],
        'g' => [3, 4, 5, 5, 3],
        'h' => [5, 5, 7, 5, 5],
        'i' => [7, 2, 2, 2, 7],
        'j' => [1, 1, 1, 5, 2],
        'k' => [5, 5, 6, 5, 5],
        'l' => [4, 4, 4, 4, 7],
        'm' => [5, 7, 7, 5, 5],
        'n' => [6, 5, 5, 5, 5],
        'o' => [2, 5, 5, 5, 2],
        'p' => [6, 5, 6, 4, 4],
        'q' => [2, 5, 5, 6, 3],
        'r' => [6, 5, 6, 5, 5],
        's' => [3, 4, 2, 1, 6],
        't' => [7, 2, 2, 2, 2],
        'u' => [5, 5, 5, 5, 7],
        'v' => [5, 5, 5, 5, 2],
        'w' => [5, 5, 7, 7, 5],
        'x' => [5, 5, 2, 5, 5],
        'y' => [5, 5, 2, 2, 2],
        'z' => [7, 1, 2, 4, 7],
        _ => [0; 5],
    }
}

/// Draws `text` at 2× scale with its top-left corner at (x, y).
fn draw_text(img: &mut RgbImage, x: u32, y: u32, text: &str, rgb: [u8; 3]) {
    for (k, ch) in text.chars().enumerate() {
        let bits = glyph_bits(ch);
        for (row, b) in bits.iter().enumerate() {
            for col in 0..3u32 {
                if b & (4 >> col) != 0 {
                    for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                        let px = x + k as u32 * 8 + col * 2 + dx;
                        let py = y + row as u32 * 2 + dy;
                        if px < img.width() && py < img.height() {
                            img.put_pixel(px, py, Rgb(rgb));
                        }
                    }
                }
            }
        }
    }
}

/// A contact sheet of all 80 classes: per class a label and five 64×64 tiles (one per colour
/// of [`SHEET_COLORS`]) on textured backgrounds, four classes per row.
pub fn contact_sheet(seed: u64) -> RgbImage {
    const TILE: u32 = 64;
    const LABEL: u32 = 14;
    const PER_ROW: u32 = 4;
    let block_w = TILE * SHEET_COLORS.len() as u32 + 8;
    let rows = (ClassId::all().count() as u32).div_ceil(PER_ROW);
    let mut sheet =
        RgbImage::from_pixel(PER_ROW * block_w, rows * (TILE + LABEL), Rgb([40, 40, 40]));
    for class in ClassId::all() {
        let (bx, by) = (
            (class.index() as u32 % PER_ROW) * block_w,
            (class.index() as u32 / PER_ROW) * (TILE + LABEL),
        );
        draw_text(&mut sheet, bx + 2, by + 2, class.name(), [235, 235, 235]);
        for (ci, &color) in SHEET_COLORS.iter().enumerate() {
            let mut rng = Rng::derived(seed, &[class.index() as u64, ci as u64]);
            let mut tile = palette::background(&mut rng, TILE, TILE);
            let p = Placement {
                cx: 32.0,
                cy: 32.0,
                size: 44.0,
                aspect: 1.0,
                rotation: 0.0,
                flip: false,
            };
            let rgb = palette::instance_rgb(color, &mut rng);
            let obj = crate::scene::PlacedObject {
                class,
                color,
                rgb,
                placement: p,
            };
            tile = crate::scene::compose(tile, &[obj]).image;
            for y in 0..TILE {
                for x in 0..TILE {
                    sheet.put_pixel(
                        bx + ci as u32 * TILE + x,
                        by + LABEL + y,
                        *tile.get_pixel(x, y),
                    );
                }
            }
        }
    }
    sheet
}

#[cfg(test)]
mod tests {
    use super::*;
    use harness::detections_file::{read_detections, score_line};
    use harness::RuleConfig;

    #[test]
    fn suite_writes_the_official_layout_and_exact_detections_score_perfectly() {
        let dir = tempfile_dir("suite");
        let r = write_suite(&dir, &Default::default(), 1, 1234, Style::Natural, false).unwrap();
        assert_eq!(r.images, 553);
        let layout = harness::layout::read_image_dir(&dir).unwrap();
        assert_eq!(layout.samples.len(), 553);
        let lines = read_detections(&r.detections).unwrap();
        assert_eq!(lines.len(), 553);
        for l in &lines {
            let rec = score_line(l, &RuleConfig::default(), "t").unwrap();
            assert!(rec.correct, "{} {}", l.metadata.prompt, rec.reason);
        }
        let img = image::open(dir.join("00000/samples/0000.png"))
            .unwrap()
            .to_rgb8();
        assert_eq!(img.dimensions(), (64, 64));
        // A selection renders exactly those prompts' images of the whole suite.
        let part = tempfile_dir("suite_part");
        let selection = harness::Selection {
            indices: harness::Selection::parse_indices("3,100-101").unwrap(),
            ..Default::default()
        };
        let r = write_suite(&part, &selection, 1, 1234, Style::Natural, false).unwrap();
        assert_eq!((r.images, r.prompts), (3, 3));
        for folder in ["00003", "00100", "00101"] {
            let sample = format!("{folder}/samples/0000.png");
            assert_eq!(
                std::fs::read(part.join(&sample)).unwrap(),
                std::fs::read(dir.join(&sample)).unwrap(),
                "{sample}"
            );
        }
        assert!(!part.join("00000").exists());
        std::fs::remove_dir_all(&dir).ok();
        std::fs::remove_dir_all(&part).ok();
    }

    #[test]
    fn datasets_are_deterministic_for_any_thread_count() {
        let a = tempfile_dir("ds_a");
        let b = tempfile_dir("ds_b");
        for kind in [DatasetKind::Prompts, DatasetKind::Detector] {
            write_dataset(&a, kind, 40, 5, Style::Natural, false).unwrap();
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(1)
                .build()
                .unwrap();
            pool.install(|| write_dataset(&b, kind, 40, 5, Style::Natural, false))
                .unwrap();
            let ann_a = std::fs::read_to_string(a.join("annotations.jsonl")).unwrap();
            let ann_b = std::fs::read_to_string(b.join("annotations.jsonl")).unwrap();
            assert_eq!(ann_a, ann_b);
            assert_eq!(ann_a.lines().count(), 40);
            assert_eq!(
                std::fs::read(a.join("images/0000017.png")).unwrap(),
                std::fs::read(b.join("images/0000017.png")).unwrap()
            );
            let first: Value = serde_json::from_str(ann_a.lines().next().unwrap()).unwrap();
            assert_eq!(first["image"], "images/0000000.png");
            assert_eq!(first.get("prompt").is_some(), kind == DatasetKind::Prompts);
        }
        std::fs::remove_dir_all(&a).ok();
        std::fs::remove_dir_all(&b).ok();
    }

    #[test]
    fn prompt_samples_satisfy_their_prompts_and_detector_samples_vary_in_count() {
        let src = SampleSource::new(DatasetKind::Prompts, 3);
        let official = prompts::official_prompts();
        for i in 0..30 {
            let s = src.sample(i).unwrap();
            let m = s.metadata.unwrap();
            assert!(!official.contains(&m.prompt));
            assert!(s.scene.satisfies(&m), "{}", m.prompt);
        }
        let det = SampleSource::new(DatasetKind::Detector, 3);
        let counts: Vec<usize> = (0..200)
            .map(|i| det.sample(i).unwrap().scene.objects.len())
            .collect();
        assert!(counts.contains(&0) && counts.contains(&5));
        assert!(counts.iter().all(|&c| c <= 5));
    }

    #[test]
    fn contact_sheet_has_every_class() {
        let sheet = contact_sheet(0);
        assert_eq!(sheet.width(), 4 * (5 * 64 + 8));
        assert_eq!(sheet.height(), 20 * (64 + 14));
    }

    fn tempfile_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("world_test_{name}_{}", std::process::id()));
        std::fs::remove_dir_all(&d).ok();
        d
    }
}
