//! Object colours (the 10 GenEval colours) and textured backgrounds.
//!
//! Object colours are saturated, or near-black / near-white, with a small per-instance jitter
//! that never makes a colour closer to another colour's base than to its own. Backgrounds are
//! mid-luminance and low-saturation, so both black and white objects stand out and no
//! background pixel is ever mistaken for an object colour.

use harness::rng::Rng;
use harness::Color;
use image::{Rgb, RgbImage};

/// Base sRGB of each colour, in `harness::Color` order.
pub const BASE_RGB: [[u8; 3]; 10] = [
    [205, 30, 35],   // red
    [245, 125, 20],  // orange
    [240, 222, 40],  // yellow
    [40, 165, 55],   // green
    [35, 80, 215],   // blue
    [130, 45, 180],  // purple
    [250, 135, 200], // pink
    [115, 68, 32],   // brown
    [22, 22, 22],    // black
    [242, 242, 242], // white
];

/// Largest per-channel jitter of an instance colour (plus a shared brightness shift).
const JITTER: f64 = 10.0;
const BRIGHTNESS: f64 = 8.0;

pub fn base_rgb(color: Color) -> [u8; 3] {
    BASE_RGB[color.index()]
}

/// The colour of one object instance: the base colour with a small random shift.
pub fn instance_rgb(color: Color, rng: &mut Rng) -> [u8; 3] {
    let base = base_rgb(color);
    let shift = rng.uniform(-BRIGHTNESS, BRIGHTNESS);
    let mut out = [0u8; 3];
    for k in 0..3 {
        let v = base[k] as f64 + shift + rng.uniform(-JITTER, JITTER);
        out[k] = v.round().clamp(0.0, 255.0) as u8;
    }
    out
}

/// Shade for internal structure: darker, except for black objects, whose detail is lighter.
pub fn detail_rgb(rgb: [u8; 3], color: Color) -> [u8; 3] {
    if color == Color::Black {
        rgb.map(|v| (v as f64 + (255.0 - v as f64) * 0.3).round() as u8)
    } else {
        rgb.map(|v| (v as f64 * 0.55).round() as u8)
    }
}

/// Relative luminance in 0..255 (Rec. 601 weights).
pub fn luminance(rgb: [u8; 3]) -> f64 {
    0.299 * rgb[0] as f64 + 0.587 * rgb[1] as f64 + 0.114 * rgb[2] as f64
}

/// The 1-px outline around an object: dark for light objects, light for dark ones.
pub fn outline_rgb(rgb: [u8; 3]) -> [u8; 3] {
    if luminance(rgb) > 100.0 {
        rgb.map(|v| (v as f64 * 0.3).round() as u8)
    } else {
        rgb.map(|v| (v as f64 + (255.0 - v as f64) * 0.55).round() as u8)
    }
}

/// The GenEval colour whose base is nearest (Euclidean sRGB) to `rgb`.
pub fn nearest_color(rgb: [u8; 3]) -> Color {
    let d = |b: [u8; 3]| -> i32 {
        (0..3)
            .map(|k| (rgb[k] as i32 - b[k] as i32).pow(2))
            .sum::<i32>()
    };
    let mut best = 0;
    for (i, b) in BASE_RGB.iter().enumerate() {
        if d(*b) < d(BASE_RGB[best]) {
            best = i;
        }
    }
    Color::ALL[best]
}

/// Smooth value noise on a `cells`×`cells` lattice, in [-1, 1].
fn value_noise(rng: &mut Rng, cells: usize) -> impl Fn(f64, f64) -> f64 {
    let n = cells + 1;
    let lattice: Vec<f64> = (0..n * n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    move |u: f64, v: f64| {
        let (x, y) = (u * cells as f64, v * cells as f64);
        let (i, j) = (
            (x.floor() as usize).min(cells - 1),
            (y.floor() as usize).min(cells - 1),
        );
        let (fx, fy) = (x - i as f64, y - j as f64);
        let s = |t: f64| t * t * (3.0 - 2.0 * t);
        let (sx, sy) = (s(fx), s(fy));
        let at = |a: usize, b: usize| lattice[b * n + a];
        let top = at(i, j) * (1.0 - sx) + at(i + 1, j) * sx;
        let bot = at(i, j + 1) * (1.0 - sx) + at(i + 1, j + 1) * sx;
        top * (1.0 - sy) + bot * sy
    }
}

/// Background luminance range: every pixel stays inside it so black and white both contrast.
pub const BG_MIN: f64 = 80.0;
pub const BG_MAX: f64 = 180.0;

/// A textured background: a grey-ish tint, value noise, and one of gradient / stripes /
/// blotches / checks, plus per-pixel speckle. Mid-luminance and low saturation throughout.
pub fn background(rng: &mut Rng, width: u32, height: u32) -> RgbImage {
    let base = rng.uniform(105.0, 155.0);
    let tint: [f64; 3] = [
        rng.uniform(-12.0, 12.0),
        rng.uniform(-12.0, 12.0),
        rng.uniform(-12.0, 12.0),
    ];
    let noise_amp = rng.uniform(6.0, 20.0);
    let cells = 2 + rng.index(5);
    let noise = value_noise(rng, cells);
    let chroma = value_noise(rng, 3);
    let chroma_amp = rng.uniform(0.0, 8.0);
    let pattern = rng.index(4);
    let angle = rng.uniform(0.0, std::f64::consts::PI);
    let (pa, pb) = (angle.cos(), angle.sin());
    let amp = rng.uniform(6.0, 16.0);
    let period = rng.uniform(5.0, 16.0);
    let phase = rng.uniform(0.0, std::f64::consts::TAU);
    let blotch = value_noise(rng, 6);
    let check = 4 + rng.index(9) as u32;
    let speckle = rng.uniform(2.0, 9.0);
    let mut img = RgbImage::new(width, height);
    for y in 0..height {
        for x in 0..width {
            let (u, v) = (x as f64 / width as f64, y as f64 / height as f64);
            let mut l = base + noise_amp * noise(u, v);
            let t = x as f64 * pa + y as f64 * pb;
            l += match pattern {
                0 => amp * (t / width.max(height) as f64 - 0.5) * 2.0,
                1 => amp * (std::f64::consts::TAU * t / period + phase).sin(),
                2 => amp * blotch(u, v).signum() * blotch(u, v).abs().sqrt(),
                _ => {
                    if ((x / check) + (y / check)) & 1 == 0 {
                        amp * 0.6
                    } else {
                        -amp * 0.6
                    }
                }
            };
            let c = chroma_amp * chroma(u, v);
            let px: [f64; 3] = [
                l + tint[0] + c,
                l + tint[1] - c * 0.5,
                l + tint[2] - c * 0.5,
            ];
            let jit = rng.uniform(-speckle, speckle);
            let out = px.map(|p| (p + jit).clamp(BG_MIN, BG_MAX).round() as u8);
            img.put_pixel(x, y, Rgb(out));
        }
    }
    img
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittered_colours_stay_nearest_to_their_own_base() {
        let mut rng = Rng::new(5);
        for &c in Color::ALL {
            for _ in 0..5000 {
                let rgb = instance_rgb(c, &mut rng);
                assert_eq!(nearest_color(rgb), c, "{rgb:?}");
            }
        }
    }

    #[test]
    fn base_colours_are_well_separated() {
        for (i, a) in BASE_RGB.iter().enumerate() {
            for (j, b) in BASE_RGB.iter().enumerate().skip(i + 1) {
                let d: f64 = (0..3)
                    .map(|k| (a[k] as f64 - b[k] as f64).powi(2))
                    .sum::<f64>()
                    .sqrt();
                assert!(d > 90.0, "{:?} vs {:?}: {d}", Color::ALL[i], Color::ALL[j]);
            }
        }
    }

    #[test]
    fn backgrounds_are_textured_mid_grey_and_unlike_object_colours() {
        for s in 0..50 {
            let img = background(&mut Rng::new(s), 64, 64);
            let lums: Vec<f64> = img.pixels().map(|p| luminance(p.0)).collect();
            let mean = lums.iter().sum::<f64>() / lums.len() as f64;
            let var = lums.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / lums.len() as f64;
            assert!((90.0..=170.0).contains(&mean), "seed {s}: mean {mean}");
            assert!(var.sqrt() > 2.0, "seed {s}: flat background");
            for p in img.pixels() {
                let [r, g, b] = p.0;
                let spread = r.max(g).max(b) - r.min(g).min(b);
                assert!(spread <= 60, "seed {s}: saturated pixel {:?}", p.0);
                // Far from black and white objects.
                assert!(luminance(p.0) >= BG_MIN - 1.0 && luminance(p.0) <= BG_MAX + 1.0);
            }
        }
    }
}
