//! The official GenEval folder layout, both ways:
//!
//! ```text
//! DIR/<digits>/metadata.jsonl      one JSON object: the prompt's metadata
//! DIR/<digits>/samples/<digits>.png
//! ```
//!
//! The official evaluator walks folders in `os.listdir` order and silently skips anything that
//! does not match; we walk in numeric order and report every skipped entry as a warning.

use crate::error::{Error, Location, Result};
use crate::fsutil;
use crate::metadata::Metadata;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One sample image of an image folder.
#[derive(Debug, Clone)]
pub struct SampleEntry {
    /// The prompt folder's name (digits), e.g. `00012`.
    pub folder: String,
    /// The image file name, e.g. `0003.png`.
    pub image: String,
    pub path: PathBuf,
    pub metadata: Arc<Metadata>,
}

impl SampleEntry {
    /// `<folder>/samples/<image>`, relative to the image folder.
    pub fn relative_name(&self) -> String {
        format!("{}/samples/{}", self.folder, self.image)
    }
}

/// What was found in an image folder.
#[derive(Debug, Clone)]
pub struct ImageDir {
    pub samples: Vec<SampleEntry>,
    /// Entries that do not belong to the layout, one message each.
    pub warnings: Vec<String>,
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `(prompt index, image index)` of `…/<digits>/samples/<digits>.png` (`/` or `\`): the key
/// of a sample by its path in the official layout, as results files name it.
pub fn sample_key(filename: &str) -> Option<(usize, usize)> {
    let parts: Vec<&str> = filename.split(['/', '\\']).collect();
    let [.., folder, samples, image] = parts.as_slice() else {
        return None;
    };
    let stem = image_stem(image)?;
    if *samples != "samples" || !all_digits(folder) || !all_digits(stem) {
        return None;
    }
    Some((folder.parse().ok()?, stem.parse().ok()?))
}

/// The image formats a sample may have, by file extension (any case): PNG as GenEval writes, and
/// JPEG and WebP as Janus and API models often do.
pub const IMAGE_FORMATS: [(&str, image::ImageFormat); 4] = [
    ("png", image::ImageFormat::Png),
    ("jpg", image::ImageFormat::Jpeg),
    ("jpeg", image::ImageFormat::Jpeg),
    ("webp", image::ImageFormat::WebP),
];

/// The format of an image file by its extension, if it is one the layout accepts.
pub fn image_format(name: &str) -> Option<image::ImageFormat> {
    let (_, ext) = name.rsplit_once('.')?;
    IMAGE_FORMATS
        .iter()
        .find(|(e, _)| ext.eq_ignore_ascii_case(e))
        .map(|(_, f)| *f)
}

/// `0003` of `0003.png`, `0003.jpg`, `0003.webp`: the name without an accepted image extension.
fn image_stem(name: &str) -> Option<&str> {
    image_format(name)?;
    name.rsplit_once('.').map(|(stem, _)| stem)
}

/// `<digits>.png` (or `.jpg`, `.jpeg`, `.webp`), the sample names the layout accepts.
pub fn is_sample_name(name: &str) -> bool {
    image_stem(name).is_some_and(all_digits)
}

/// Sort key: numeric value first (so `10` follows `9`), then the name (so `007` and `7` are
/// ordered deterministically).
fn numeric_key(name: &str) -> (String, String) {
    let trimmed = name.trim_start_matches('0');
    (format!("{:0>40}", trimmed), name.to_string())
}

fn list_dir(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        out.push((name, entry.path()));
    }
    // `read_dir` order is the file system's; sort so that warnings repeat exactly.
    out.sort();
    Ok(out)
}

/// The file `evalcot world suite` writes beside its images: the folder holds evalcot's world.
pub const WORLD_MARKER: &str = "world.json";

/// What wrote the images of `dir` when it was evalcot's own world — `evalcot world suite` (its
/// [`WORLD_MARKER`]) or a run of one of evalcot's generators (a `config.yaml` naming a generator
/// that is not `ext:`) — or `None`: images made elsewhere, or by an external generator. The
/// embedded detector was trained on that world only, so it may score only those images.
pub fn world_source(dir: &Path) -> Result<Option<String>> {
    if dir.join(WORLD_MARKER).is_file() {
        return Ok(Some("evalcot world suite".into()));
    }
    let config = dir.join("config.yaml");
    if !config.is_file() {
        return Ok(None);
    }
    #[derive(serde::Deserialize)]
    struct Generator {
        generator: Option<String>,
    }
    let g: Generator = crate::config::load_yaml(&config)?;
    Ok(g.generator
        .filter(|g| !g.starts_with("ext:"))
        .map(|g| format!("a run of evalcot's generator {g}")))
}

/// Reads an image folder in the official layout, in deterministic order (folders and samples
/// by numeric name). A digit folder without a readable `metadata.jsonl` is an error; anything
/// else outside the layout is listed in `warnings`.
pub fn read_image_dir(dir: &Path) -> Result<ImageDir> {
    let mut warnings = Vec::new();
    let mut folders = Vec::new();
    for (name, path) in list_dir(dir)? {
        if path.is_dir() && all_digits(&name) {
            folders.push((name, path));
        } else if !name.starts_with('.') && name != WORLD_MARKER {
            warnings.push(format!(
                "{}: skipped, not a prompt folder (expected a folder named with digits only)",
                path.display()
            ));
        }
    }
    folders.sort_by_key(|(n, _)| numeric_key(n));
    let mut samples = Vec::new();
    for (folder, path) in folders {
        let meta_path = path.join("metadata.jsonl");
        let metadata = Arc::new(read_folder_metadata(&meta_path)?);
        let samples_dir = path.join("samples");
        if !samples_dir.is_dir() {
            warnings.push(format!(
                "{}: no samples/ folder; prompt skipped",
                path.display()
            ));
            continue;
        }
        let mut images = Vec::new();
        for (name, p) in list_dir(&samples_dir)? {
            if p.is_file() && is_sample_name(&name) {
                images.push((name, p));
            } else if !name.starts_with('.') {
                warnings.push(format!(
                    "{}: skipped, not a sample (expected a file named <digits>.png, .jpg or .webp)",
                    p.display()
                ));
            }
        }
        if images.is_empty() {
            warnings.push(format!("{}: no samples", samples_dir.display()));
        }
        images.sort_by_key(|(n, _)| numeric_key(n));
        // 0000.png beside 0000.jpg: two images for one sample, and no way to tell which counts.
        let mut stems: std::collections::HashMap<&str, &str> = std::collections::HashMap::new();
        for (name, p) in &images {
            let stem = image_stem(name).unwrap_or_default();
            if let Some(first) = stems.insert(stem, name) {
                return Err(Error::invalid(
                    Location::file(p.display().to_string()),
                    format!("a second image for sample {stem} (beside {first})"),
                ));
            }
        }
        for (image, p) in images {
            samples.push(SampleEntry {
                folder: folder.clone(),
                image,
                path: p,
                metadata: Arc::clone(&metadata),
            });
        }
    }
    if samples.is_empty() {
        return Err(Error::invalid(
            Location::file(dir.display().to_string()),
            "no samples found: expected <digits>/metadata.jsonl and <digits>/samples/<digits>.png",
        ));
    }
    Ok(ImageDir { samples, warnings })
}

/// Reads a prompt folder's `metadata.jsonl`: one JSON object (the official code uses `json.load`).
pub fn read_folder_metadata(path: &Path) -> Result<Metadata> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let file = path.display().to_string();
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            Location::line(&file, e.line()),
            format!("malformed JSON: {e}"),
        )
    })?;
    Metadata::from_value(&value).map_err(|e| e.at(&file, 1))
}

/// Writes runs in the official layout. Prompt folders are named by the prompt's index in the
/// suite with five digits, samples by the image index with four digits.
#[derive(Debug, Clone)]
pub struct LayoutWriter {
    root: PathBuf,
}

impl LayoutWriter {
    /// Creates `root` (and parents) if needed.
    pub fn create(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::io(root, e))?;
        Ok(LayoutWriter {
            root: root.to_path_buf(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn folder_name(prompt_index: usize) -> String {
        format!("{prompt_index:05}")
    }

    pub fn image_name(image_index: usize) -> String {
        format!("{image_index:04}.png")
    }

    /// `<root>/<prompt>/samples/<image>.png`.
    pub fn sample_path(&self, prompt_index: usize, image_index: usize) -> PathBuf {
        self.root
            .join(Self::folder_name(prompt_index))
            .join("samples")
            .join(Self::image_name(image_index))
    }

    /// Writes `<root>/<prompt>/metadata.jsonl` as Python's `json.dumps`. An existing file with
    /// other content is an error (it belongs to another run), identical content is left alone.
    pub fn write_metadata(&self, prompt_index: usize, metadata: &Metadata) -> Result<()> {
        let path = self
            .root
            .join(Self::folder_name(prompt_index))
            .join("metadata.jsonl");
        let text = format!("{}\n", metadata.to_json_string());
        if let Ok(existing) = std::fs::read_to_string(&path) {
            if existing == text {
                return Ok(());
            }
            return Err(Error::invalid(
                Location::file(path.display().to_string()),
                "exists with different metadata; refusing to mix two runs in one folder",
            ));
        }
        fsutil::write_atomic(&path, text.as_bytes())?;
        std::fs::create_dir_all(path.with_file_name("samples"))
            .map_err(|e| Error::io(&path.with_file_name("samples"), e))
    }

    /// Writes a sample PNG atomically and returns its path.
    pub fn write_sample(
        &self,
        prompt_index: usize,
        image_index: usize,
        image: &image::RgbImage,
    ) -> Result<PathBuf> {
        let path = self.sample_path(prompt_index, image_index);
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(image.clone())
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .map_err(|e| {
                Error::invalid(
                    Location::file(path.display().to_string()),
                    format!("PNG encoding failed: {e}"),
                )
            })?;
        fsutil::write_atomic(&path, &bytes)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::Suite;

    #[test]
    fn writer_and_reader_round_trip_in_numeric_order() {
        let dir = tempfile::tempdir().unwrap();
        let w = LayoutWriter::create(dir.path()).unwrap();
        let suite = Suite::official();
        let img = image::RgbImage::new(4, 4);
        for &pi in &[10usize, 9, 100] {
            w.write_metadata(pi, &suite.prompts[pi].metadata).unwrap();
            for ii in [10usize, 2] {
                w.write_sample(pi, ii, &img).unwrap();
            }
        }
        // Entries outside the layout are reported, not silently skipped.
        std::fs::create_dir_all(dir.path().join("notes")).unwrap();
        std::fs::write(dir.path().join("00009/samples/grid.png"), b"x").unwrap();
        std::fs::write(dir.path().join("00009/grid.png"), b"x").unwrap();
        let d = read_image_dir(dir.path()).unwrap();
        let names: Vec<String> = d.samples.iter().map(SampleEntry::relative_name).collect();
        assert_eq!(
            names,
            vec![
                "00009/samples/0002.png",
                "00009/samples/0010.png",
                "00010/samples/0002.png",
                "00010/samples/0010.png",
                "00100/samples/0002.png",
                "00100/samples/0010.png",
            ]
        );
        assert_eq!(*d.samples[0].metadata, suite.prompts[9].metadata);
        assert_eq!(d.warnings.len(), 2, "{:?}", d.warnings);
        assert!(d.warnings.iter().any(|w| w.contains("notes")));
        assert!(d.warnings.iter().any(|w| w.contains("grid.png")));
        // Writing other metadata into an existing folder is refused.
        let err = w.write_metadata(9, &suite.prompts[0].metadata).unwrap_err();
        assert!(err.to_string().contains("different metadata"));
    }

    #[test]
    fn bad_folders_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("00001/samples")).unwrap();
        let err = read_image_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("00001/metadata.jsonl"), "{err}");
        std::fs::write(
            dir.path().join("00001/metadata.jsonl"),
            "{\"tag\": \"colors\",\n \"include\": [",
        )
        .unwrap();
        let err = read_image_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("metadata.jsonl:2: malformed JSON"), "{err}");
        let empty = tempfile::tempdir().unwrap();
        assert!(read_image_dir(empty.path())
            .unwrap_err()
            .to_string()
            .contains("no samples"));
    }

    #[test]
    fn sample_names() {
        assert!(is_sample_name("0000.png"));
        assert!(is_sample_name("12.png"));
        assert!(!is_sample_name("grid.png"));
        assert!(!is_sample_name(".png"));
        assert!(!is_sample_name("0001.png.tmp"));
        for name in ["0001.jpg", "0001.JPEG", "0001.webp"] {
            assert!(is_sample_name(name), "{name}");
        }
        assert!(!is_sample_name("0001.gif"));
        assert_eq!(sample_key("00012/samples/0003.jpg"), Some((12, 3)));
        assert_eq!(sample_key("00012/samples/0003.bmp"), None);
    }

    #[test]
    fn two_formats_of_one_sample_are_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let w = LayoutWriter::create(dir.path()).unwrap();
        let suite = crate::suite::Suite::official();
        w.write_metadata(0, &suite.prompts[0].metadata).unwrap();
        w.write_sample(0, 0, &image::RgbImage::new(4, 4)).unwrap();
        // Not adjacent in name order (0000.png, 0001.png, 0000.webp): still found.
        w.write_sample(0, 1, &image::RgbImage::new(4, 4)).unwrap();
        std::fs::write(dir.path().join("00000/samples/0000.webp"), b"x").unwrap();
        let err = read_image_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("a second image for sample 0000"), "{err}");
    }

    #[test]
    fn world_source_names_the_suite_and_runs_of_evalcots_generators_only() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(world_source(dir.path()).unwrap(), None);
        std::fs::write(
            dir.path().join("config.yaml"),
            "generator: ext:python3 w.py\n",
        )
        .unwrap();
        assert_eq!(world_source(dir.path()).unwrap(), None);
        std::fs::write(dir.path().join("config.yaml"), "generator: base\nn: 4\n").unwrap();
        assert!(world_source(dir.path()).unwrap().unwrap().contains("base"));
        std::fs::write(dir.path().join("config.yaml"), "generator: [\n").unwrap();
        let err = world_source(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.yaml"), "{err}");
        std::fs::write(dir.path().join(WORLD_MARKER), "{}").unwrap();
        assert!(world_source(dir.path()).unwrap().is_some());
    }
}
