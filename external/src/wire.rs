//! Encoding of images, tokens and numbers on the wire (see PROTOCOL.md).

use base64::Engine;
use harness::generator::MASK;
use image::RgbImage;
use serde_json::Value;

/// `{"png": "<base64>"}` of an image.
pub fn image_to_json(image: &RgbImage) -> Result<Value, String> {
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(image.clone())
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| format!("PNG encoding failed: {e}"))?;
    Ok(serde_json::json!({
        "png": base64::engine::general_purpose::STANDARD.encode(bytes)
    }))
}

/// An image given as `{"png": base64}` or `{"path": file}`.
pub fn image_from_json(v: &Value) -> Result<RgbImage, String> {
    let bytes = if let Some(b64) = v.get("png").and_then(Value::as_str) {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("\"png\" is not base64: {e}"))?
    } else if let Some(path) = v.get("path").and_then(Value::as_str) {
        std::fs::read(path).map_err(|e| format!("cannot read image {path}: {e}"))?
    } else {
        return Err(format!(
            "expected an image as {{\"png\": base64}} or {{\"path\": file}}, found {}",
            excerpt(&v.to_string())
        ));
    };
    let image =
        image::load_from_memory(&bytes).map_err(|e| format!("image does not decode: {e}"))?;
    if image.width() == 0 || image.height() == 0 {
        return Err("image is empty".into());
    }
    Ok(image.to_rgb8())
}

/// A worker's opaque state as JSON: base64 of its bytes (evalcot-ext/2 `state`).
pub fn bytes_to_json(bytes: &[u8]) -> Value {
    Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// An opaque state from JSON: a base64 string.
pub fn bytes_from_json(v: &Value) -> Result<Vec<u8>, String> {
    let b64 = v.as_str().ok_or_else(|| {
        format!(
            "expected base64 of the state's bytes, found {}",
            excerpt(&v.to_string())
        )
    })?;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("not base64: {e}"))
}

/// Tokens as JSON integers, [`MASK`] as -1.
pub fn tokens_to_json(tokens: &[u32]) -> Value {
    Value::Array(
        tokens
            .iter()
            .map(|&t| if t == MASK { (-1).into() } else { t.into() })
            .collect(),
    )
}

/// Tokens of a grid of `len`; -1 (masked) only where `allow_mask`.
pub fn tokens_from_json(
    v: Option<&Value>,
    field: &str,
    len: usize,
    allow_mask: bool,
) -> Result<Vec<u32>, String> {
    let list = v
        .and_then(Value::as_array)
        .ok_or_else(|| format!("\"{field}\": expected a list of {len} token ids"))?;
    if list.len() != len {
        return Err(format!(
            "\"{field}\": {} tokens for a grid of {len}",
            list.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, t)| match t.as_i64() {
            Some(-1) if allow_mask => Ok(MASK),
            Some(x) if (0..MASK as i64).contains(&x) => Ok(x as u32),
            _ => Err(format!(
                "\"{field}\"[{i}]: {t} is not a token id{}",
                if allow_mask { " or -1" } else { "" }
            )),
        })
        .collect()
}

/// A number field; `null` (a model's NaN or infinity on the wire) reads as NaN so that the
/// caller's non-finite checks fail the one image it belongs to.
pub fn number(v: &Value, field: &str) -> Result<f64, String> {
    match v.get(field) {
        Some(Value::Null) => Ok(f64::NAN),
        Some(x) => x
            .as_f64()
            .ok_or_else(|| format!("\"{field}\": expected a number, found {x}")),
        None => Err(format!("\"{field}\" is missing")),
    }
}

/// Parses one reply line. Python's `json.dumps` writes a NaN as `NaN` (not JSON); such bare
/// `NaN`/`Infinity` tokens outside strings are read as `null`.
pub fn parse_line(line: &str) -> Result<Value, String> {
    serde_json::from_str(line).or_else(|e| {
        let cleaned = null_non_finite(line);
        if cleaned == line {
            return Err(format!("not JSON ({e})"));
        }
        serde_json::from_str(&cleaned).map_err(|_| format!("not JSON ({e})"))
    })
}

fn null_non_finite(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let (mut in_string, mut escaped) = (false, false);
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            rest = &rest[c.len_utf8()..];
            continue;
        }
        if let Some(word) = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|w| rest.starts_with(w))
        {
            out.push_str("null");
            rest = &rest[word.len()..];
            continue;
        }
        in_string = c == '"';
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// At most 200 characters of a reply, for error messages.
pub fn excerpt(s: &str) -> String {
    let n = s.chars().count();
    if n <= 200 {
        s.to_string()
    } else {
        format!(
            "{}… ({} more characters)",
            s.chars().take(200).collect::<String>(),
            n - 200
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_round_trip_losslessly() {
        let mut img = RgbImage::new(5, 3);
        img.put_pixel(4, 2, image::Rgb([250, 1, 7]));
        assert_eq!(image_from_json(&image_to_json(&img).unwrap()).unwrap(), img);
        assert!(image_from_json(&serde_json::json!({"png": "@@"}))
            .unwrap_err()
            .contains("base64"));
        assert!(image_from_json(&serde_json::json!({"jpg": 1}))
            .unwrap_err()
            .contains("expected an image"));
    }

    #[test]
    fn tokens_carry_masks_as_minus_one_and_are_checked() {
        let v = tokens_to_json(&[3, MASK, 0]);
        assert_eq!(v, serde_json::json!([3, -1, 0]));
        assert_eq!(
            tokens_from_json(Some(&v), "t", 3, true).unwrap(),
            vec![3, MASK, 0]
        );
        assert!(tokens_from_json(Some(&v), "t", 3, false)
            .unwrap_err()
            .contains("\"t\"[1]"));
        assert!(tokens_from_json(Some(&v), "t", 4, true)
            .unwrap_err()
            .contains("3 tokens for a grid of 4"));
        assert!(tokens_from_json(None, "t", 4, true).is_err());
    }

    #[test]
    fn python_non_finite_numbers_read_as_null_but_strings_are_kept() {
        let v =
            parse_line(r#"{"a": NaN, "b": -Infinity, "s": "NaN \" Infinity", "c": 1}"#).unwrap();
        assert_eq!(v["a"], Value::Null);
        assert_eq!(v["b"], Value::Null);
        assert_eq!(v["s"], "NaN \" Infinity");
        assert!(number(&v, "a").unwrap().is_nan());
        assert_eq!(number(&v, "c").unwrap(), 1.0);
        assert!(parse_line("{oops").unwrap_err().contains("not JSON"));
    }
}
