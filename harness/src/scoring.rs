//! Scoring a folder of images in the official layout with any [`Detector`]: read each PNG (any
//! size, bit depth or colour type that converts to RGB), resize it to the detector's input, detect
//! in batches, scale boxes back to the original pixels, judge with the GenEval rules.

use crate::detector::Detector;
use crate::error::ModelFault;
use crate::error::{Error, Location, Result};
use crate::layout::{read_image_dir, SampleEntry};
use crate::results::ResultRecord;
use crate::rules::{self, Detection, RuleConfig};
use image::RgbImage;
use rayon::prelude::*;
use std::path::Path;

/// Reads a PNG, JPEG or WebP (by its extension; PNG otherwise) as 8-bit RGB. Grey, grey+alpha,
/// 16-bit and palette images are converted (alpha is dropped, as PIL's `convert("RGB")` does);
/// anything unreadable is an error naming the file.
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let format = crate::layout::image_format(name).unwrap_or(image::ImageFormat::Png);
    let img = image::load_from_memory_with_format(&bytes, format).map_err(|e| {
        let kind = match format {
            image::ImageFormat::Jpeg => "JPEG",
            image::ImageFormat::WebP => "WebP",
            _ => "PNG",
        };
        Error::invalid(
            Location::file(path.display().to_string()),
            format!("not a readable {kind}: {e}"),
        )
    })?;
    if img.width() == 0 || img.height() == 0 {
        return Err(Error::invalid(
            Location::file(path.display().to_string()),
            "empty image (0 pixels)",
        ));
    }
    Ok(img.to_rgb8())
}

/// Resizes to `size`×`size` (bilinear), returning the image and the factors that map boxes back.
pub fn resize_for_detector(img: &RgbImage, size: u32) -> (RgbImage, f32, f32) {
    if img.width() == size && img.height() == size {
        return (img.clone(), 1.0, 1.0);
    }
    let resized = image::imageops::resize(img, size, size, image::imageops::FilterType::Triangle);
    (
        resized,
        img.width() as f32 / size as f32,
        img.height() as f32 / size as f32,
    )
}

/// What scoring a folder produced.
#[derive(Debug)]
pub struct ScoredDir {
    pub records: Vec<ResultRecord>,
    /// Entries outside the layout (from the folder reader).
    pub warnings: Vec<String>,
    /// Images that failed because a model produced non-finite output, one message each.
    pub failures: Vec<String>,
}

/// Scores every sample of `dir`. `progress` is called with the number of images finished.
pub fn score_image_dir(
    dir: &Path,
    detector: &dyn Detector,
    cfg: &RuleConfig,
    batch_size: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<ScoredDir> {
    let listing = read_image_dir(dir)?;
    let size = detector.input_size();
    let mut records = Vec::with_capacity(listing.samples.len());
    let mut failures = Vec::new();
    for batch in listing.samples.chunks(batch_size.max(1)) {
        let loaded: Vec<(RgbImage, f32, f32)> = batch
            .par_iter()
            .map(|s| load_rgb(&s.path).map(|img| resize_for_detector(&img, size)))
            .collect::<Result<_>>()?;
        let inputs: Vec<RgbImage> = loaded.iter().map(|(i, _, _)| i.clone()).collect();
        let outputs = detector.detect(&inputs).map_err(|e| {
            Error::invalid(
                Location::file(batch[0].path.display().to_string()),
                format!("detector {} failed on this batch: {e}", detector.name()),
            )
        })?;
        for ((sample, (_, sx, sy)), objects) in batch.iter().zip(&loaded).zip(outputs) {
            let detections: std::result::Result<Vec<Detection>, String> = objects
                .into_iter()
                .map(|o| o.rescaled(*sx, *sy).to_detection())
                .collect();
            let filename = dir.join(sample.relative_name()).display().to_string();
            let record = match detections {
                Ok(dets) => judge_sample(sample, &dets, cfg, filename)?,
                Err(e) => {
                    let msg = format!("detector {}: {e}", detector.name());
                    failures.push(format!("{}: {msg}", sample.path.display()));
                    failed_record(sample, filename, msg)
                }
            };
            records.push(record);
        }
        progress(records.len());
    }
    Ok(ScoredDir {
        records,
        warnings: listing.warnings,
        failures,
    })
}

/// Judges in-memory images with `detector` and the GenEval rules: each is resized to the
/// detector's input, its boxes scaled back, and judged against its metadata. A per-image error
/// (a non-finite detector output) is returned for that image, naming the detector; a failing
/// detector call fails the batch.
pub fn judge_images(
    detector: &dyn Detector,
    images: &[RgbImage],
    metadata: &[&crate::Metadata],
    cfg: &RuleConfig,
) -> std::result::Result<Vec<std::result::Result<rules::Judgement, String>>, ModelFault> {
    if images.len() != metadata.len() {
        return Err(ModelFault::Failed(format!(
            "{} images but {} metadata records",
            images.len(),
            metadata.len()
        )));
    }
    let size = detector.input_size();
    let resized: Vec<(RgbImage, f32, f32)> = images
        .par_iter()
        .map(|img| resize_for_detector(img, size))
        .collect();
    let inputs: Vec<RgbImage> = resized.iter().map(|(i, _, _)| i.clone()).collect();
    let outputs = detector
        .detect(&inputs)
        .map_err(|e| e.context(format!("detector {}", detector.name())))?;
    Ok(outputs
        .into_iter()
        .zip(&resized)
        .zip(metadata)
        .map(|((objects, (_, sx, sy)), meta)| {
            let dets = objects
                .into_iter()
                .map(|o| o.rescaled(*sx, *sy).to_detection())
                .collect::<std::result::Result<Vec<Detection>, String>>()
                .map_err(|e| format!("detector {}: {e}", detector.name()))?;
            rules::judge(meta, &dets, cfg).map_err(|e| e.to_string())
        })
        .collect())
}

fn judge_sample(
    sample: &SampleEntry,
    dets: &[Detection],
    cfg: &RuleConfig,
    filename: String,
) -> Result<ResultRecord> {
    let meta = &sample.metadata;
    // Detector outputs always carry a colour, so a missing colour cannot happen here.
    let j = rules::judge(meta, dets, cfg).map_err(|e| {
        Error::invalid(
            Location::file(sample.path.display().to_string()),
            e.to_string(),
        )
    })?;
    Ok(ResultRecord {
        filename,
        tag: meta.tag.as_str().to_string(),
        prompt: meta.prompt.clone(),
        correct: j.correct,
        reason: j.reason.clone(),
        metadata: meta.to_json_string(),
        details: j.details_json(dets),
        extra: serde_json::Map::new(),
    })
}

/// An image that could not be judged: counted as incorrect, with the reason recorded.
fn failed_record(sample: &SampleEntry, filename: String, msg: String) -> ResultRecord {
    let meta = &sample.metadata;
    let mut extra = serde_json::Map::new();
    extra.insert("error".into(), serde_json::Value::from(msg.clone()));
    ResultRecord {
        filename,
        tag: meta.tag.as_str().to_string(),
        prompt: meta.prompt.clone(),
        correct: false,
        reason: msg,
        metadata: meta.to_json_string(),
        details: "{}".into(),
        extra,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detector::DetectedObject;
    use crate::layout::LayoutWriter;
    use crate::suite::Suite;
    use crate::vocab::ClassId;

    /// Finds one object of the prompt's first class wherever a bright pixel block is; NaN when
    /// the image is all black, to exercise the failure path.
    struct BrightBlock;

    impl Detector for BrightBlock {
        fn name(&self) -> &str {
            "bright-block"
        }
        fn input_size(&self) -> u32 {
            16
        }
        fn detect(
            &self,
            images: &[RgbImage],
        ) -> std::result::Result<Vec<Vec<DetectedObject>>, crate::error::ModelFault> {
            Ok(images
                .iter()
                .map(|img| {
                    assert_eq!(img.dimensions(), (16, 16));
                    let bright: Vec<(u32, u32)> = img
                        .enumerate_pixels()
                        .filter(|(_, _, p)| p.0[0] > 128)
                        .map(|(x, y, _)| (x, y))
                        .collect();
                    let score = if img.pixels().all(|p| p.0 == [0, 0, 0]) {
                        f32::NAN
                    } else {
                        0.95
                    };
                    if bright.is_empty() && !score.is_nan() {
                        return vec![];
                    }
                    let x1 = bright.iter().map(|p| p.0).min().unwrap_or(0) as f32;
                    let x2 = bright.iter().map(|p| p.0).max().unwrap_or(0) as f32 + 1.0;
                    vec![DetectedObject {
                        class: ClassId::from_name("bench").unwrap(),
                        score,
                        bbox: [x1, 0.0, x2, 16.0],
                        color_probs: [0.1; 10],
                        mask: None,
                    }]
                })
                .collect())
        }
    }

    #[test]
    fn scores_a_folder_with_resizing_box_rescaling_and_nan_failures() {
        let dir = tempfile::tempdir().unwrap();
        let w = LayoutWriter::create(dir.path()).unwrap();
        let suite = Suite::official();
        w.write_metadata(0, &suite.prompts[0].metadata).unwrap(); // "a photo of a bench"
        let mut img = RgbImage::new(64, 32);
        for y in 0..32 {
            for x in 16..32 {
                img.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
        w.write_sample(0, 0, &img).unwrap();
        w.write_sample(0, 1, &RgbImage::new(64, 32)).unwrap();
        // A grey 16-bit PNG converts.
        let grey = image::ImageBuffer::<image::Luma<u16>, Vec<u16>>::from_pixel(
            8,
            8,
            image::Luma([60000]),
        );
        grey.save(w.sample_path(0, 2)).unwrap();
        let out =
            score_image_dir(dir.path(), &BrightBlock, &RuleConfig::default(), 2, &|_| {}).unwrap();
        assert_eq!(out.records.len(), 3);
        assert!(out.records[0].correct);
        // Box found at x 4..8 of 16 maps back to 16..32 of 64.
        assert_eq!(
            out.records[0].details,
            r#"{"bench": [[16.0, 0.0, 32.0, 32.0, 0.949999988079071]]}"#
        );
        assert!(!out.records[1].correct);
        assert!(
            out.records[1].reason.contains("non-finite"),
            "{}",
            out.records[1].reason
        );
        assert_eq!(out.failures.len(), 1);
        assert!(out.records[2].correct);
        assert!(out.records[0].filename.ends_with("00000/samples/0000.png"));
    }

    #[test]
    fn corrupt_and_truncated_pngs_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.png");
        std::fs::write(&p, b"not a png").unwrap();
        assert!(load_rgb(&p)
            .unwrap_err()
            .to_string()
            .contains("x.png: not a readable PNG"));
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(RgbImage::new(32, 32))
            .write_to(
                &mut std::io::Cursor::new(&mut bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        std::fs::write(&p, &bytes[..bytes.len() / 2]).unwrap();
        assert!(load_rgb(&p)
            .unwrap_err()
            .to_string()
            .contains("not a readable PNG"));
    }
}
