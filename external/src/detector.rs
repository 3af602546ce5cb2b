//! An external detector (the official Mask2Former + CLIP behind an adapter) behind the
//! [`Detector`] trait.

use crate::generator::hello_name;
use crate::wire::{excerpt, image_to_json, number};
use crate::worker::{field, list, Pool};
use harness::detector::{DetectedObject, Detector};
use harness::error::ModelFault;
use harness::{ClassId, Color};
use image::RgbImage;
use serde_json::{json, Value};
use std::time::Duration;

pub struct ExtDetector {
    worker: Pool,
    name: String,
    input_size: u32,
}

impl ExtDetector {
    pub fn start(command: &str, timeout: Duration) -> Result<ExtDetector, String> {
        let (worker, hello) = Pool::start(command, "detector", timeout)?;
        let bad = |e: String| format!("{}: hello reply: {e}", worker.label());
        let name = hello_name(&hello).map_err(bad)?;
        let input_size = field(&hello, "input_size")
            .map_err(bad)?
            .as_u64()
            .filter(|&s| (1..=8192).contains(&s))
            .ok_or_else(
                || bad("\"input_size\": expected a whole number of pixels, 1–8192".into()),
            )? as u32;
        Ok(ExtDetector {
            worker,
            name,
            input_size,
        })
    }
}

/// One detection in the `score --detections` shape.
fn object(v: &Value) -> Result<DetectedObject, String> {
    let class_name = v
        .get("class")
        .and_then(Value::as_str)
        .ok_or("\"class\": expected a GenEval class name")?;
    let class = ClassId::from_name(class_name)
        .ok_or_else(|| format!("\"class\": {class_name:?} is not one of the 80 GenEval classes"))?;
    let score = number(v, "score")?;
    if score.is_finite() && !(0.0..=1.0).contains(&score) {
        return Err(format!("\"score\": {score} is not a probability"));
    }
    let bbox =
        serde_json::from_value::<[Option<f32>; 4]>(v.get("box").cloned().unwrap_or(Value::Null))
            .map_err(|_| "\"box\": expected [x1, y1, x2, y2]".to_string())?
            .map(|x| x.unwrap_or(f32::NAN));
    let wide = bbox.map(f64::from);
    if let Some(why) = harness::detections_file::inverted(&wide) {
        return Err(format!("\"box\": {why}"));
    }
    let color_probs = match (v.get("color_probs"), v.get("color").and_then(Value::as_str)) {
        (Some(p), _) => serde_json::from_value::<[Option<f32>; 10]>(p.clone())
            .map_err(|_| {
                format!(
                    "\"color_probs\": expected 10 numbers in the order {}",
                    Color::expected()
                )
            })?
            .map(|x| x.unwrap_or(f32::NAN)),
        (None, Some(c)) => {
            let color = Color::parse(c)
                .ok_or_else(|| format!("\"color\": {c:?} is not one of {}", Color::expected()))?;
            let mut p = [0.0; 10];
            p[Color::ALL.iter().position(|&x| x == color).unwrap_or(0)] = 1.0;
            p
        }
        (None, None) => return Err("each detection needs \"color\" or \"color_probs\"".into()),
    };
    Ok(DetectedObject {
        class,
        score: score as f32,
        bbox,
        color_probs,
        mask: None,
    })
}

impl Detector for ExtDetector {
    fn name(&self) -> &str {
        &self.name
    }

    fn input_size(&self) -> u32 {
        self.input_size
    }

    fn detect(&self, images: &[RgbImage]) -> Result<Vec<Vec<DetectedObject>>, ModelFault> {
        if images.is_empty() {
            return Ok(Vec::new());
        }
        let items = images
            .iter()
            .map(image_to_json)
            .collect::<Result<Vec<_>, _>>()?;
        let reply = self.worker.request("detect", json!({ "images": items }))?;
        let bad = |e: String| format!("{}: detect reply: {e}", self.worker.label());
        list(&reply, "detections", images.len())
            .map_err(bad)?
            .iter()
            .enumerate()
            .map(|(i, per_image)| {
                per_image
                    .as_array()
                    .ok_or_else(|| bad(format!("detections[{i}] is not a list")))?
                    .iter()
                    .enumerate()
                    .map(|(j, d)| {
                        object(d).map_err(|e| {
                            bad(format!(
                                "detections[{i}][{j}]: {e}: {}",
                                excerpt(&d.to_string())
                            ))
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(ModelFault::from)
    }
}
