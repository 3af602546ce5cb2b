//! The font plot text is drawn with: plotters' `ab_glyph` backend loads no system fonts by
//! itself, so one is looked up at run time (`EVALCOT_FONT`, then common DejaVu/Liberation
//! paths).

use plotters::style::FontStyle;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The font registered for plot text, if any.
#[derive(Debug, Clone, PartialEq)]
pub enum Font {
    Found(PathBuf),
    /// Where it was looked for.
    Missing(Vec<PathBuf>),
}

impl Font {
    pub fn available(&self) -> bool {
        matches!(self, Font::Found(_))
    }

    /// A sentence for the report when plots have no text.
    pub fn missing(&self) -> Option<String> {
        match self {
            Font::Found(_) => None,
            Font::Missing(paths) => Some(format!(
                "Plots are drawn without text: no font file was found (set EVALCOT_FONT to a .ttf file; looked in {}).",
                paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }
}

const FONT_CANDIDATES: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",
    "/Library/Fonts/Arial.ttf",
    "C:\\Windows\\Fonts\\arial.ttf",
];

/// Finds and registers a font once per process (as `sans-serif`).
pub fn font() -> &'static Font {
    static FONT: OnceLock<Font> = OnceLock::new();
    FONT.get_or_init(|| {
        let mut tried: Vec<PathBuf> = Vec::new();
        if let Some(p) = std::env::var_os("EVALCOT_FONT") {
            tried.push(PathBuf::from(p));
        }
        tried.extend(FONT_CANDIDATES.iter().map(PathBuf::from));
        for p in &tried {
            if let Ok(bytes) = std::fs::read(p) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Font::Found(p.clone());
                }
            }
        }
        Font::Missing(tried)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_font_names_the_paths_tried() {
        assert!(Font::Missing(vec!["/f.ttf".into()])
            .missing()
            .unwrap()
            .contains("/f.ttf"));
    }
}
