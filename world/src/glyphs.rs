//! One procedural glyph per GenEval class.
//!
//! Each glyph is a few vector primitives in the unit square. They loosely evoke the class, but
//! what matters is that every silhouette (outer shape, holes, notches, protrusions) differs from
//! every other class's at about 20 px, which a test checks; internal structure is drawn in a
//! shade of the object's colour (`Detail`) so the fill colour stays dominant.

use crate::raster::{Paint, Prim, Shape};
use harness::vocab::NUM_CLASSES;
use harness::ClassId;
use std::f32::consts::PI;
use std::sync::OnceLock;

/// The glyph of a class.
pub fn glyph(class: ClassId) -> &'static Shape {
    static GLYPHS: OnceLock<Vec<Shape>> = OnceLock::new();
    &GLYPHS.get_or_init(|| (0..NUM_CLASSES).map(|i| Shape::new(build(i).0)).collect())
        [class.index()]
}

/// A small builder so that glyph definitions read as drawing instructions.
struct G(Vec<(Prim, Paint)>);

impl G {
    fn new() -> G {
        G(Vec::new())
    }
    fn f(mut self, p: Prim) -> G {
        self.0.push((p, Paint::Fill));
        self
    }
    fn d(mut self, p: Prim) -> G {
        self.0.push((p, Paint::Detail));
        self
    }
    fn c(mut self, p: Prim) -> G {
        self.0.push((p, Paint::Cut));
        self
    }
}

fn el(cx: f32, cy: f32, rx: f32, ry: f32) -> Prim {
    Prim::Ellipse { cx, cy, rx, ry }
}
fn circ(cx: f32, cy: f32, r: f32) -> Prim {
    el(cx, cy, r, r)
}
/// An ellipse rotated by `deg` degrees.
fn rel(cx: f32, cy: f32, rx: f32, ry: f32, deg: f32) -> Prim {
    Prim::RotEllipse {
        cx,
        cy,
        rx,
        ry,
        angle: deg * PI / 180.0,
    }
}
fn rect(x0: f32, y0: f32, x1: f32, y1: f32) -> Prim {
    Prim::Rect { x0, y0, x1, y1 }
}
fn rr(x0: f32, y0: f32, x1: f32, y1: f32, r: f32) -> Prim {
    Prim::RoundRect { x0, y0, x1, y1, r }
}
fn poly(pts: &[[f32; 2]]) -> Prim {
    Prim::Poly(pts.to_vec())
}
fn line(x0: f32, y0: f32, x1: f32, y1: f32, w: f32) -> Prim {
    Prim::Line { x0, y0, x1, y1, w }
}
fn ring(cx: f32, cy: f32, ro: f32, ri: f32) -> Prim {
    Prim::Ring { cx, cy, ro, ri }
}
/// An arc from `d0` to `d1` degrees (clockwise on screen from +x, so 90 is straight down).
fn arc(cx: f32, cy: f32, r: f32, w: f32, d0: f32, d1: f32) -> Prim {
    Prim::Arc {
        cx,
        cy,
        r,
        w,
        a0: d0 * PI / 180.0,
        a1: d1 * PI / 180.0,
    }
}
/// A regular polygon with `n` corners of radius `r`, rotated by `deg`.
fn ngon(cx: f32, cy: f32, r: f32, n: usize, deg: f32) -> Prim {
    let pts: Vec<[f32; 2]> = (0..n)
        .map(|k| {
            let a = (deg + 360.0 * k as f32 / n as f32) * PI / 180.0;
            [cx + r * a.cos(), cy + r * a.sin()]
        })
        .collect();
    Prim::Poly(pts)
}

/// The drawing of class `index` (label order of `object_names.txt`).
fn build(index: usize) -> G {
    match index {
        // person: stick figure with a round head, wide stance and raised arms.
        0 => G::new()
            .f(circ(0.5, 0.14, 0.11))
            .f(rr(0.38, 0.27, 0.62, 0.6, 0.06))
            .f(line(0.45, 0.58, 0.33, 0.96, 0.1))
            .f(line(0.55, 0.58, 0.67, 0.96, 0.1))
            .f(line(0.4, 0.32, 0.18, 0.12, 0.08))
            .f(line(0.6, 0.32, 0.82, 0.12, 0.08))
            .d(rect(0.38, 0.45, 0.62, 0.5)),
        // bicycle: two open wheels joined by a triangular frame.
        1 => G::new()
            .f(ring(0.2, 0.66, 0.19, 0.12))
            .f(ring(0.8, 0.66, 0.19, 0.12))
            .f(line(0.2, 0.66, 0.42, 0.36, 0.07))
            .f(line(0.42, 0.36, 0.8, 0.66, 0.07))
            .f(line(0.42, 0.36, 0.55, 0.66, 0.07))
            .f(line(0.2, 0.66, 0.55, 0.66, 0.07))
            .f(line(0.7, 0.3, 0.8, 0.66, 0.07))
            .f(line(0.62, 0.3, 0.78, 0.3, 0.07))
            .f(line(0.36, 0.3, 0.5, 0.3, 0.08)),
        // car: low body, raised cabin with windows, dark wheels below.
        2 => G::new()
            .f(rr(0.03, 0.45, 0.97, 0.72, 0.07))
            .f(poly(&[
                [0.22, 0.46],
                [0.34, 0.24],
                [0.66, 0.24],
                [0.8, 0.46],
            ]))
            .d(poly(&[[0.3, 0.44], [0.38, 0.3], [0.48, 0.3], [0.48, 0.44]]))
            .d(poly(&[
                [0.53, 0.44],
                [0.53, 0.3],
                [0.63, 0.3],
                [0.72, 0.44],
            ]))
            .f(circ(0.26, 0.74, 0.12))
            .f(circ(0.74, 0.74, 0.12))
            .d(circ(0.26, 0.74, 0.06))
            .d(circ(0.74, 0.74, 0.06)),
        // motorcycle: two solid wheels with hubs punched out, a chunky body and handlebar.
        3 => G::new()
            .f(circ(0.18, 0.72, 0.17))
            .f(circ(0.82, 0.72, 0.17))
            .c(circ(0.18, 0.72, 0.06))
            .c(circ(0.82, 0.72, 0.06))
            .f(poly(&[
                [0.25, 0.6],
                [0.35, 0.42],
                [0.68, 0.42],
                [0.78, 0.6],
                [0.55, 0.7],
            ]))
            .f(line(0.68, 0.45, 0.78, 0.2, 0.08))
            .f(line(0.7, 0.2, 0.9, 0.2, 0.08))
            .d(rr(0.36, 0.45, 0.6, 0.55, 0.04)),
        // airplane: long fuselage with swept wings above and below and a tail fin.
        4 => G::new()
            .f(el(0.5, 0.5, 0.48, 0.08))
            .f(poly(&[[0.4, 0.5], [0.58, 0.5], [0.44, 0.04], [0.36, 0.04]]))
            .f(poly(&[[0.4, 0.5], [0.58, 0.5], [0.44, 0.96], [0.36, 0.96]]))
            .f(poly(&[[0.04, 0.5], [0.16, 0.5], [0.08, 0.3], [0.02, 0.3]]))
            .d(el(0.86, 0.48, 0.06, 0.03)),
        // bus: long box with a row of window cut-outs and wheels.
        5 => G::new()
            .f(rr(0.02, 0.28, 0.98, 0.76, 0.05))
            .c(rect(0.08, 0.35, 0.24, 0.5))
            .c(rect(0.3, 0.35, 0.46, 0.5))
            .c(rect(0.52, 0.35, 0.68, 0.5))
            .c(rect(0.74, 0.35, 0.9, 0.5))
            .f(circ(0.22, 0.77, 0.1))
            .f(circ(0.78, 0.77, 0.1))
            .d(circ(0.22, 0.77, 0.05))
            .d(circ(0.78, 0.77, 0.05))
            .d(rect(0.02, 0.6, 0.98, 0.64)),
        // train: three coupled cars, the locomotive taller with a chimney.
        6 => G::new()
            .f(rect(0.02, 0.42, 0.3, 0.74))
            .f(rect(0.36, 0.42, 0.64, 0.74))
            .f(rect(0.7, 0.26, 0.98, 0.74))
            .f(rect(0.74, 0.08, 0.84, 0.26))
            .f(rect(0.28, 0.6, 0.72, 0.65))
            .d(rect(0.77, 0.32, 0.92, 0.44))
            .f(circ(0.1, 0.78, 0.05))
            .f(circ(0.22, 0.78, 0.05))
            .f(circ(0.44, 0.78, 0.05))
            .f(circ(0.56, 0.78, 0.05))
            .f(circ(0.78, 0.78, 0.05))
            .f(circ(0.9, 0.78, 0.05)),
        // truck: tall cargo box and a lower cab with a window.
        7 => G::new()
            .f(rect(0.02, 0.12, 0.62, 0.72))
            .f(rr(0.64, 0.34, 0.97, 0.72, 0.05))
            .d(rect(0.72, 0.4, 0.9, 0.52))
            .d(rect(0.06, 0.2, 0.58, 0.24))
            .f(circ(0.2, 0.76, 0.11))
            .f(circ(0.8, 0.76, 0.11))
            .d(circ(0.2, 0.76, 0.05))
            .d(circ(0.8, 0.76, 0.05)),
        // boat: trapezoid hull, mast and a triangular sail.
        8 => G::new()
            .f(poly(&[
                [0.02, 0.58],
                [0.98, 0.58],
                [0.8, 0.84],
                [0.2, 0.84],
            ]))
            .f(line(0.48, 0.06, 0.48, 0.6, 0.05))
            .f(poly(&[[0.52, 0.08], [0.52, 0.52], [0.88, 0.52]]))
            .f(poly(&[[0.44, 0.16], [0.44, 0.52], [0.16, 0.52]]))
            .d(rect(0.1, 0.64, 0.9, 0.69)),
        // traffic light: tall housing with three round lamp holes and a visor.
        9 => G::new()
            .f(rr(0.34, 0.02, 0.66, 0.86, 0.06))
            .f(rect(0.46, 0.86, 0.54, 0.98))
            .c(circ(0.5, 0.17, 0.085))
            .c(circ(0.5, 0.44, 0.085))
            .d(circ(0.5, 0.71, 0.085))
            .f(poly(&[[0.66, 0.06], [0.76, 0.06], [0.66, 0.2]]))
            .f(poly(&[[0.34, 0.06], [0.24, 0.06], [0.34, 0.2]])),
        // fire hydrant: domed body with side nozzles and a wide base.
        10 => G::new()
            .f(rect(0.32, 0.28, 0.68, 0.88))
            .f(el(0.5, 0.28, 0.2, 0.16))
            .f(rect(0.46, 0.06, 0.54, 0.14))
            .f(rr(0.14, 0.44, 0.86, 0.58, 0.04))
            .f(rect(0.24, 0.84, 0.76, 0.96))
            .d(circ(0.5, 0.51, 0.06))
            .d(rect(0.32, 0.3, 0.68, 0.34)),
        // stop sign: octagon with a band, on a thin pole.
        11 => G::new()
            .f(ngon(0.5, 0.36, 0.36, 8, 22.5))
            .d(rect(0.24, 0.31, 0.76, 0.41))
            .f(rect(0.46, 0.7, 0.54, 0.99)),
        // parking meter: head with a window hole on a thick post.
        12 => G::new()
            .f(rr(0.28, 0.04, 0.72, 0.46, 0.12))
            .c(rr(0.37, 0.12, 0.63, 0.27, 0.03))
            .d(rect(0.44, 0.33, 0.56, 0.4))
            .f(rect(0.43, 0.46, 0.57, 0.92))
            .f(rect(0.34, 0.9, 0.66, 0.98)),
        // bench: backrest and seat slats on splayed legs.
        13 => G::new()
            .f(rect(0.04, 0.22, 0.96, 0.32))
            .f(rect(0.02, 0.48, 0.98, 0.58))
            .f(line(0.14, 0.28, 0.14, 0.55, 0.06))
            .f(line(0.86, 0.28, 0.86, 0.55, 0.06))
            .f(line(0.14, 0.55, 0.08, 0.88, 0.07))
            .f(line(0.86, 0.55, 0.92, 0.88, 0.07))
            .d(rect(0.04, 0.26, 0.96, 0.28)),
        // bird: plump body, head with a beak, fanned tail and a wing.
        14 => G::new()
            .f(el(0.48, 0.58, 0.28, 0.18))
            .f(circ(0.76, 0.38, 0.13))
            .f(poly(&[[0.86, 0.33], [1.0, 0.4], [0.86, 0.45]]))
            .f(poly(&[[0.26, 0.52], [0.0, 0.36], [0.04, 0.72]]))
            .f(line(0.45, 0.75, 0.42, 0.92, 0.04))
            .f(line(0.55, 0.75, 0.58, 0.92, 0.04))
            .d(rel(0.44, 0.55, 0.16, 0.08, -15.0))
            .d(circ(0.79, 0.35, 0.03)),
        // cat: round face with two pointed ears and whiskers.
        15 => G::new()
            .f(el(0.5, 0.58, 0.34, 0.3))
            .f(poly(&[[0.18, 0.48], [0.2, 0.04], [0.46, 0.32]]))
            .f(poly(&[[0.82, 0.48], [0.8, 0.04], [0.54, 0.32]]))
            .d(el(0.37, 0.54, 0.05, 0.07))
            .d(el(0.63, 0.54, 0.05, 0.07))
            .d(poly(&[[0.45, 0.66], [0.55, 0.66], [0.5, 0.72]])),
        // dog: side view with a raised tail, floppy ear and a snout.
        16 => G::new()
            .f(rr(0.18, 0.4, 0.74, 0.64, 0.08))
            .f(circ(0.78, 0.32, 0.14))
            .f(rr(0.8, 0.3, 0.99, 0.42, 0.04))
            .f(line(0.24, 0.6, 0.24, 0.92, 0.08))
            .f(line(0.38, 0.6, 0.38, 0.92, 0.08))
            .f(line(0.56, 0.6, 0.56, 0.92, 0.08))
            .f(line(0.68, 0.6, 0.68, 0.92, 0.08))
            .f(line(0.2, 0.46, 0.04, 0.2, 0.07))
            .d(rel(0.71, 0.36, 0.05, 0.11, 20.0))
            .d(circ(0.97, 0.33, 0.025)),
        // horse: long neck up to a narrow head, long thin legs, a tail.
        17 => G::new()
            .f(el(0.44, 0.46, 0.3, 0.13))
            .f(poly(&[
                [0.6, 0.4],
                [0.72, 0.36],
                [0.86, 0.06],
                [0.76, 0.04],
            ]))
            .f(rel(0.86, 0.12, 0.12, 0.05, 30.0))
            .f(line(0.2, 0.5, 0.18, 0.97, 0.05))
            .f(line(0.3, 0.5, 0.3, 0.97, 0.05))
            .f(line(0.58, 0.5, 0.58, 0.97, 0.05))
            .f(line(0.68, 0.5, 0.7, 0.97, 0.05))
            .f(line(0.15, 0.42, 0.04, 0.7, 0.06))
            .d(line(0.72, 0.12, 0.64, 0.36, 0.04)),
        // sheep: a scalloped woolly cloud with a dark face and short legs.
        18 => G::new()
            .f(circ(0.25, 0.5, 0.16))
            .f(circ(0.42, 0.38, 0.17))
            .f(circ(0.6, 0.38, 0.17))
            .f(circ(0.74, 0.5, 0.15))
            .f(circ(0.4, 0.6, 0.16))
            .f(circ(0.6, 0.6, 0.16))
            .f(line(0.32, 0.7, 0.32, 0.92, 0.07))
            .f(line(0.64, 0.7, 0.64, 0.92, 0.07))
            .f(el(0.9, 0.46, 0.09, 0.12))
            .d(el(0.91, 0.48, 0.06, 0.08)),
        // cow: boxy body on four thick legs, square head with horns, patches.
        19 => G::new()
            .f(rect(0.1, 0.34, 0.78, 0.66))
            .f(rect(0.78, 0.26, 0.97, 0.5))
            .f(line(0.8, 0.26, 0.76, 0.12, 0.05))
            .f(line(0.95, 0.26, 0.99, 0.12, 0.05))
            .f(rect(0.12, 0.66, 0.22, 0.92))
            .f(rect(0.26, 0.66, 0.36, 0.92))
            .f(rect(0.54, 0.66, 0.64, 0.92))
            .f(rect(0.66, 0.66, 0.76, 0.92))
            .d(el(0.32, 0.46, 0.1, 0.07))
            .d(el(0.58, 0.54, 0.08, 0.06))
            .d(rect(0.84, 0.44, 0.97, 0.5)),
        // elephant: huge rounded body, big ear, trunk down to the ground, pillar legs.
        20 => G::new()
            .f(el(0.42, 0.42, 0.36, 0.26))
            .f(rect(0.12, 0.5, 0.26, 0.92))
            .f(rect(0.52, 0.5, 0.66, 0.92))
            .f(circ(0.76, 0.34, 0.16))
            .f(line(0.88, 0.36, 0.95, 0.9, 0.09))
            .d(el(0.68, 0.36, 0.1, 0.14))
            .f(poly(&[[0.84, 0.48], [0.98, 0.56], [0.86, 0.58]])),
        // bear: heavy hunched body, small head with a round ear, stubby legs.
        21 => G::new()
            .f(el(0.46, 0.5, 0.38, 0.24))
            .f(circ(0.82, 0.44, 0.14))
            .f(circ(0.76, 0.29, 0.06))
            .f(rect(0.14, 0.6, 0.28, 0.86))
            .f(rect(0.56, 0.6, 0.7, 0.86))
            .d(el(0.94, 0.48, 0.04, 0.04))
            .d(el(0.36, 0.42, 0.14, 0.06)),
        // zebra: horse-like with a stiff mane, the body cut by stripes.
        22 => G::new()
            .f(rect(0.12, 0.34, 0.74, 0.6))
            .f(poly(&[
                [0.62, 0.36],
                [0.74, 0.36],
                [0.94, 0.14],
                [0.84, 0.06],
            ]))
            .f(line(0.16, 0.56, 0.16, 0.94, 0.07))
            .f(line(0.32, 0.56, 0.32, 0.94, 0.07))
            .f(line(0.54, 0.56, 0.54, 0.94, 0.07))
            .f(line(0.7, 0.56, 0.7, 0.94, 0.07))
            .f(rect(0.66, 0.16, 0.76, 0.3))
            .c(rect(0.24, 0.34, 0.28, 0.52))
            .c(rect(0.38, 0.42, 0.42, 0.6))
            .c(rect(0.52, 0.34, 0.56, 0.52))
            .d(line(0.02, 0.36, 0.12, 0.4, 0.05)),
        // giraffe: very tall neck and head above a small spotted body on long legs.
        23 => G::new()
            .f(poly(&[[0.3, 0.5], [0.5, 0.46], [0.7, 0.08], [0.6, 0.04]]))
            .f(rel(0.7, 0.06, 0.12, 0.05, 15.0))
            .f(rr(0.2, 0.46, 0.56, 0.66, 0.06))
            .f(line(0.24, 0.62, 0.22, 0.98, 0.05))
            .f(line(0.52, 0.62, 0.54, 0.98, 0.05))
            .d(circ(0.32, 0.54, 0.04))
            .d(circ(0.44, 0.57, 0.04))
            .d(circ(0.5, 0.34, 0.035))
            .d(circ(0.58, 0.2, 0.03)),
        // backpack: tall rounded pack with both shoulder straps looping out at the sides.
        24 => G::new()
            .f(rr(0.26, 0.14, 0.74, 0.94, 0.18))
            .f(arc(0.3, 0.52, 0.22, 0.06, 100.0, 260.0))
            .f(arc(0.7, 0.52, 0.22, 0.06, -80.0, 80.0))
            .f(ring(0.5, 0.13, 0.1, 0.05))
            .d(rr(0.34, 0.58, 0.66, 0.86, 0.06)),
        // umbrella: domed canopy with a scalloped rim, a shaft and a J hook.
        25 => G::new()
            .f(el(0.5, 0.44, 0.48, 0.36))
            .c(rect(0.0, 0.44, 1.0, 1.0))
            .c(circ(0.26, 0.46, 0.07))
            .c(circ(0.5, 0.46, 0.07))
            .c(circ(0.74, 0.46, 0.07))
            .f(line(0.5, 0.4, 0.5, 0.86, 0.06))
            .f(arc(0.41, 0.86, 0.09, 0.06, 0.0, 180.0))
            .d(line(0.5, 0.1, 0.3, 0.42, 0.03))
            .d(line(0.5, 0.1, 0.7, 0.42, 0.03)),
        // handbag: trapezoid bag under an arched handle.
        26 => G::new()
            .f(poly(&[
                [0.16, 0.46],
                [0.84, 0.46],
                [0.96, 0.92],
                [0.04, 0.92],
            ]))
            .f(arc(0.5, 0.48, 0.28, 0.08, 180.0, 360.0))
            .d(rect(0.1, 0.56, 0.9, 0.6))
            .d(rect(0.44, 0.56, 0.56, 0.66)),
        // tie: small knot over a long kite-shaped blade.
        27 => G::new()
            .f(poly(&[
                [0.36, 0.03],
                [0.64, 0.03],
                [0.58, 0.17],
                [0.42, 0.17],
            ]))
            .f(poly(&[
                [0.43, 0.17],
                [0.57, 0.17],
                [0.68, 0.8],
                [0.5, 0.98],
                [0.32, 0.8],
            ]))
            .d(line(0.44, 0.36, 0.58, 0.46, 0.04))
            .d(line(0.4, 0.58, 0.62, 0.72, 0.04)),
        // suitcase: upright case on wheels with a tall telescopic handle (an open U).
        28 => G::new()
            .f(rr(0.2, 0.34, 0.8, 0.9, 0.07))
            .f(line(0.36, 0.36, 0.36, 0.05, 0.06))
            .f(line(0.64, 0.36, 0.64, 0.05, 0.06))
            .f(line(0.36, 0.05, 0.64, 0.05, 0.07))
            .f(circ(0.3, 0.93, 0.055))
            .f(circ(0.7, 0.93, 0.055))
            .d(rect(0.2, 0.52, 0.8, 0.56))
            .d(rect(0.2, 0.7, 0.8, 0.74)),
        // frisbee: a flat ring seen at an angle (open in the middle).
        29 => G::new()
            .f(el(0.5, 0.5, 0.48, 0.18))
            .c(el(0.5, 0.48, 0.26, 0.07))
            .d(arc(0.5, 0.5, 0.4, 0.03, 20.0, 160.0)),
        // skis: two long parallel diagonal skis with bindings.
        30 => G::new()
            .f(line(0.08, 0.86, 0.66, 0.04, 0.08))
            .f(line(0.34, 0.96, 0.92, 0.14, 0.08))
            .d(rect(0.33, 0.44, 0.41, 0.52))
            .d(rect(0.59, 0.54, 0.67, 0.62)),
        // snowboard: one wide diagonal board with two bindings.
        31 => G::new()
            .f(line(0.14, 0.86, 0.86, 0.14, 0.22))
            .d(rel(0.36, 0.64, 0.08, 0.05, -45.0))
            .d(rel(0.64, 0.36, 0.08, 0.05, -45.0)),
        // sports ball: a disc cut by two wide curved seams.
        32 => G::new()
            .f(circ(0.5, 0.5, 0.44))
            .c(arc(0.0, 0.5, 0.34, 0.09, -60.0, 60.0))
            .c(arc(1.0, 0.5, 0.34, 0.09, 120.0, 240.0))
            .d(circ(0.5, 0.5, 0.07)),
        // kite: diamond with cross spars and a wavy tail.
        33 => G::new()
            .f(poly(&[[0.5, 0.02], [0.84, 0.3], [0.5, 0.66], [0.16, 0.3]]))
            .d(line(0.5, 0.04, 0.5, 0.64, 0.03))
            .d(line(0.18, 0.3, 0.82, 0.3, 0.03))
            .f(line(0.5, 0.64, 0.42, 0.76, 0.04))
            .f(line(0.42, 0.76, 0.56, 0.86, 0.04))
            .f(line(0.56, 0.86, 0.46, 0.98, 0.04))
            .f(rel(0.46, 0.8, 0.05, 0.025, 30.0))
            .f(rel(0.52, 0.92, 0.05, 0.025, -30.0)),
        // baseball bat: tapered diagonal club with a knob.
        34 => G::new()
            .f(poly(&[
                [0.14, 0.92],
                [0.2, 0.98],
                [0.95, 0.14],
                [0.82, 0.04],
            ]))
            .f(circ(0.88, 0.09, 0.09))
            .f(circ(0.14, 0.97, 0.05))
            .d(line(0.24, 0.86, 0.32, 0.78, 0.05)),
        // baseball glove: a palm with four splayed fingers and a thumb out to the side.
        35 => G::new()
            .f(el(0.54, 0.7, 0.28, 0.26))
            .f(line(0.42, 0.6, 0.2, 0.16, 0.12))
            .f(line(0.5, 0.56, 0.42, 0.04, 0.12))
            .f(line(0.6, 0.56, 0.66, 0.04, 0.12))
            .f(line(0.7, 0.6, 0.88, 0.18, 0.12))
            .f(line(0.36, 0.76, 0.04, 0.56, 0.13))
            .d(arc(0.54, 0.7, 0.16, 0.04, 200.0, 340.0)),
        // skateboard: long flat deck with kicked ends and two pairs of wheels.
        36 => G::new()
            .f(line(0.1, 0.48, 0.9, 0.48, 0.14))
            .f(line(0.1, 0.48, 0.02, 0.38, 0.12))
            .f(line(0.9, 0.48, 0.98, 0.38, 0.12))
            .f(circ(0.24, 0.64, 0.08))
            .f(circ(0.76, 0.64, 0.08))
            .d(rect(0.2, 0.54, 0.28, 0.57))
            .d(rect(0.72, 0.54, 0.8, 0.57)),
        // surfboard: tall narrow pointed board with a centre stripe and a fin.
        37 => G::new()
            .f(poly(&[
                [0.5, 0.0],
                [0.58, 0.12],
                [0.62, 0.4],
                [0.6, 0.76],
                [0.55, 0.92],
                [0.45, 0.92],
                [0.4, 0.76],
                [0.38, 0.4],
                [0.42, 0.12],
            ]))
            .d(line(0.5, 0.1, 0.5, 0.86, 0.03))
            .f(poly(&[[0.46, 0.84], [0.54, 0.84], [0.5, 1.0]])),
        // tennis racket: open oval head strung with a cross and a long handle.
        38 => G::new()
            .f(ring(0.5, 0.32, 0.3, 0.22))
            .f(line(0.5, 0.1, 0.5, 0.54, 0.05))
            .f(line(0.28, 0.32, 0.72, 0.32, 0.05))
            .f(line(0.5, 0.6, 0.5, 0.98, 0.09))
            .d(rect(0.45, 0.82, 0.55, 0.98)),
        // bottle: narrow neck with a cap over a wide body with a label.
        39 => G::new()
            .f(rr(0.24, 0.4, 0.76, 0.98, 0.08))
            .f(poly(&[
                [0.24, 0.42],
                [0.42, 0.22],
                [0.58, 0.22],
                [0.76, 0.42],
            ]))
            .f(rect(0.42, 0.06, 0.58, 0.24))
            .d(rect(0.4, 0.02, 0.6, 0.08))
            .d(rect(0.24, 0.58, 0.76, 0.76)),
        // wine glass: round bowl on a thin stem and a flat foot.
        40 => G::new()
            .f(el(0.5, 0.24, 0.26, 0.22))
            .c(rect(0.0, 0.0, 1.0, 0.14))
            .f(line(0.5, 0.42, 0.5, 0.9, 0.06))
            .f(el(0.5, 0.92, 0.24, 0.05))
            .d(el(0.5, 0.3, 0.18, 0.08)),
        // cup: tapered mug with a ring handle on the right.
        41 => G::new()
            .f(poly(&[
                [0.14, 0.22],
                [0.72, 0.22],
                [0.66, 0.86],
                [0.2, 0.86],
            ]))
            .f(ring(0.76, 0.5, 0.17, 0.08))
            .d(rect(0.14, 0.22, 0.72, 0.3)),
        // fork: long handle with three tines.
        42 => G::new()
            .f(line(0.5, 0.5, 0.5, 0.98, 0.1))
            .f(rr(0.3, 0.34, 0.7, 0.52, 0.06))
            .f(line(0.34, 0.38, 0.34, 0.03, 0.08))
            .f(line(0.5, 0.38, 0.5, 0.03, 0.08))
            .f(line(0.66, 0.38, 0.66, 0.03, 0.08)),
        // knife: lying flat, a slim handle and a broad blade rising to a point.
        43 => G::new()
            .f(rr(0.02, 0.5, 0.36, 0.64, 0.06))
            .f(poly(&[
                [0.36, 0.36],
                [0.72, 0.36],
                [0.98, 0.3],
                [0.84, 0.5],
                [0.7, 0.66],
                [0.36, 0.66],
            ]))
            .d(rect(0.36, 0.48, 0.4, 0.66))
            .d(circ(0.12, 0.57, 0.025))
            .d(circ(0.24, 0.57, 0.025)),
        // spoon: oval bowl on a long thin handle.
        44 => G::new()
            .f(el(0.5, 0.22, 0.18, 0.21))
            .f(line(0.5, 0.4, 0.5, 0.98, 0.08))
            .d(el(0.5, 0.22, 0.1, 0.13)),
        // bowl: wide half-dome with a rim and a small foot.
        45 => G::new()
            .f(el(0.5, 0.36, 0.46, 0.46))
            .c(rect(-1.0, -1.0, 2.0, 0.36))
            .f(rr(0.02, 0.3, 0.98, 0.4, 0.04))
            .f(rect(0.36, 0.78, 0.64, 0.88))
            .d(rect(0.1, 0.48, 0.9, 0.52)),
        // banana: thick crescent with a stem tip.
        46 => G::new()
            .f(el(0.5, 0.4, 0.46, 0.44))
            .c(el(0.5, 0.22, 0.5, 0.44))
            .f(rect(0.02, 0.26, 0.1, 0.44))
            .d(arc(0.5, 0.4, 0.36, 0.03, 40.0, 140.0)),
        // apple: two-lobed body with deep notches top and bottom, a stem and a leaf.
        47 => G::new()
            .f(circ(0.35, 0.58, 0.3))
            .f(circ(0.65, 0.58, 0.3))
            .c(circ(0.5, 0.26, 0.11))
            .c(circ(0.5, 0.94, 0.07))
            .f(line(0.5, 0.34, 0.56, 0.06, 0.05))
            .f(rel(0.74, 0.12, 0.15, 0.06, -25.0))
            .d(el(0.32, 0.56, 0.05, 0.1)),
        // sandwich: a triangular wedge with layered filling.
        48 => G::new()
            .f(poly(&[[0.02, 0.86], [0.98, 0.86], [0.02, 0.1]]))
            .d(poly(&[
                [0.02, 0.5],
                [0.55, 0.5],
                [0.62, 0.56],
                [0.02, 0.56],
            ]))
            .d(rect(0.02, 0.68, 0.75, 0.72)),
        // orange: a citrus slice, its segments separated by wide cuts around a core.
        49 => G::new()
            .f(circ(0.5, 0.5, 0.44))
            .c(line(0.5, 0.14, 0.5, 0.86, 0.1))
            .c(line(0.19, 0.32, 0.81, 0.68, 0.1))
            .c(line(0.19, 0.68, 0.81, 0.32, 0.1))
            .f(circ(0.5, 0.5, 0.1))
            .d(ring(0.5, 0.5, 0.44, 0.38)),
        // broccoli: a three-lobed crown on a thick stalk.
        50 => G::new()
            .f(circ(0.26, 0.36, 0.18))
            .f(circ(0.5, 0.24, 0.21))
            .f(circ(0.74, 0.36, 0.18))
            .f(el(0.5, 0.42, 0.34, 0.14))
            .f(poly(&[
                [0.38, 0.5],
                [0.62, 0.5],
                [0.58, 0.96],
                [0.42, 0.96],
            ]))
            .d(circ(0.4, 0.3, 0.05))
            .d(circ(0.62, 0.28, 0.05)),
        // carrot: long downward cone with a leafy fan on top.
        51 => G::new()
            .f(poly(&[
                [0.32, 0.26],
                [0.68, 0.26],
                [0.52, 0.99],
                [0.48, 0.99],
            ]))
            .f(line(0.5, 0.28, 0.5, 0.02, 0.06))
            .f(line(0.48, 0.28, 0.3, 0.04, 0.06))
            .f(line(0.52, 0.28, 0.7, 0.04, 0.06))
            .d(line(0.36, 0.42, 0.5, 0.46, 0.03))
            .d(line(0.6, 0.6, 0.48, 0.64, 0.03)),
        // hot dog: a sausage sticking out of both ends of a bun, with a mustard zigzag.
        52 => G::new()
            .f(line(0.16, 0.54, 0.84, 0.54, 0.3))
            .f(line(0.02, 0.44, 0.98, 0.44, 0.14))
            .d(line(0.2, 0.44, 0.3, 0.4, 0.03))
            .d(line(0.3, 0.4, 0.4, 0.48, 0.03))
            .d(line(0.4, 0.48, 0.5, 0.4, 0.03))
            .d(line(0.5, 0.4, 0.6, 0.48, 0.03))
            .d(line(0.6, 0.48, 0.7, 0.4, 0.03)),
        // pizza: a round pie with a quarter missing, and toppings.
        53 => G::new()
            .f(circ(0.5, 0.5, 0.45))
            .c(poly(&[[0.5, 0.5], [1.0, 0.0], [1.0, 1.0]]))
            .d(ring(0.5, 0.5, 0.45, 0.41))
            .d(circ(0.3, 0.4, 0.05))
            .d(circ(0.45, 0.72, 0.05))
            .d(circ(0.5, 0.24, 0.05)),
        // donut: a fat ring with icing.
        54 => G::new()
            .f(ring(0.5, 0.5, 0.44, 0.16))
            .d(arc(0.5, 0.5, 0.3, 0.08, 190.0, 350.0)),
        // cake: two tiers with candles.
        55 => G::new()
            .f(rect(0.06, 0.56, 0.94, 0.94))
            .f(rect(0.22, 0.32, 0.78, 0.56))
            .f(line(0.34, 0.32, 0.34, 0.12, 0.04))
            .f(line(0.5, 0.32, 0.5, 0.12, 0.04))
            .f(line(0.66, 0.32, 0.66, 0.12, 0.04))
            .d(el(0.34, 0.08, 0.03, 0.05))
            .d(el(0.5, 0.08, 0.03, 0.05))
            .d(el(0.66, 0.08, 0.03, 0.05))
            .d(rect(0.06, 0.66, 0.94, 0.7)),
        // chair: side view, a tall back on one side, seat and two legs ("h").
        56 => G::new()
            .f(rect(0.22, 0.02, 0.34, 0.58))
            .f(rect(0.22, 0.5, 0.78, 0.6))
            .f(line(0.26, 0.58, 0.24, 0.98, 0.07))
            .f(line(0.74, 0.58, 0.76, 0.98, 0.07))
            .d(rect(0.22, 0.14, 0.34, 0.18)),
        // couch: wide seat, low back and two rounded armrests.
        57 => G::new()
            .f(rect(0.06, 0.24, 0.94, 0.56))
            .f(rect(0.04, 0.5, 0.96, 0.78))
            .f(rr(0.0, 0.36, 0.16, 0.8, 0.06))
            .f(rr(0.84, 0.36, 1.0, 0.8, 0.06))
            .f(rect(0.1, 0.78, 0.16, 0.86))
            .f(rect(0.84, 0.78, 0.9, 0.86))
            .d(rect(0.16, 0.52, 0.84, 0.56))
            .d(rect(0.48, 0.28, 0.52, 0.52)),
        // potted plant: a tapered pot with three long leaves fanning out.
        58 => G::new()
            .f(poly(&[
                [0.28, 0.6],
                [0.72, 0.6],
                [0.64, 0.98],
                [0.36, 0.98],
            ]))
            .f(rel(0.5, 0.3, 0.07, 0.28, 0.0))
            .f(rel(0.3, 0.4, 0.06, 0.24, -40.0))
            .f(rel(0.7, 0.4, 0.06, 0.24, 40.0))
            .d(rect(0.28, 0.6, 0.72, 0.66)),
        // bed: mattress between a tall headboard and a lower footboard, with a pillow.
        59 => G::new()
            .f(rect(0.02, 0.46, 0.98, 0.68))
            .f(rect(0.02, 0.14, 0.12, 0.9))
            .f(rect(0.88, 0.34, 0.98, 0.9))
            .d(el(0.24, 0.42, 0.1, 0.05))
            .f(el(0.24, 0.42, 0.09, 0.04))
            .d(rect(0.12, 0.6, 0.88, 0.63)),
        // dining table: a thick top on two splayed legs ("Π").
        60 => G::new()
            .f(rr(0.0, 0.26, 1.0, 0.38, 0.03))
            .f(line(0.12, 0.36, 0.08, 0.9, 0.08))
            .f(line(0.88, 0.36, 0.92, 0.9, 0.08))
            .d(rect(0.0, 0.34, 1.0, 0.38)),
        // toilet: a tank at the back, a bowl in front and a narrowing pedestal.
        61 => G::new()
            .f(rr(0.6, 0.02, 0.92, 0.46, 0.04))
            .f(el(0.44, 0.5, 0.4, 0.12))
            .f(poly(&[[0.18, 0.5], [0.74, 0.5], [0.62, 0.96], [0.3, 0.96]]))
            .d(el(0.42, 0.47, 0.3, 0.05))
            .d(rect(0.68, 0.1, 0.84, 0.14)),
        // tv: a 4:3 screen with rabbit-ear antennas on a pedestal.
        62 => G::new()
            .f(rr(0.06, 0.16, 0.94, 0.7, 0.04))
            .d(rect(0.22, 0.28, 0.78, 0.58))
            .f(line(0.5, 0.16, 0.28, 0.0, 0.04))
            .f(line(0.5, 0.16, 0.72, 0.0, 0.04))
            .f(rect(0.45, 0.7, 0.55, 0.88))
            .f(rect(0.24, 0.86, 0.76, 0.95)),
        // laptop: an open lid above a wider, thin keyboard base.
        63 => G::new()
            .f(poly(&[
                [0.2, 0.06],
                [0.8, 0.06],
                [0.84, 0.62],
                [0.16, 0.62],
            ]))
            .d(poly(&[[0.3, 0.16], [0.7, 0.16], [0.72, 0.5], [0.28, 0.5]]))
            .f(poly(&[[0.12, 0.66], [0.88, 0.66], [1.0, 0.8], [0.0, 0.8]]))
            .d(rect(0.3, 0.7, 0.7, 0.74)),
        // computer mouse: an egg with a button split and a cord to the top.
        64 => G::new()
            .f(el(0.5, 0.6, 0.27, 0.36))
            .d(line(0.5, 0.26, 0.5, 0.52, 0.03))
            .d(line(0.28, 0.52, 0.72, 0.52, 0.03))
            .f(line(0.5, 0.26, 0.56, 0.12, 0.04))
            .f(line(0.56, 0.12, 0.48, 0.0, 0.04)),
        // tv remote: tall narrow bar with a grid of button holes.
        65 => G::new()
            .f(rr(0.38, 0.02, 0.62, 0.98, 0.08))
            .d(circ(0.5, 0.12, 0.05))
            .c(circ(0.45, 0.3, 0.035))
            .c(circ(0.55, 0.3, 0.035))
            .c(circ(0.45, 0.44, 0.035))
            .c(circ(0.55, 0.44, 0.035))
            .c(circ(0.45, 0.58, 0.035))
            .c(circ(0.55, 0.58, 0.035)),
        // computer keyboard: very wide flat slab with rows of key holes and a space bar.
        66 => G::new()
            .f(rr(0.0, 0.34, 1.0, 0.68, 0.03))
            .c(rect(0.06, 0.39, 0.14, 0.47))
            .c(rect(0.2, 0.39, 0.28, 0.47))
            .c(rect(0.34, 0.39, 0.42, 0.47))
            .c(rect(0.48, 0.39, 0.56, 0.47))
            .c(rect(0.62, 0.39, 0.7, 0.47))
            .c(rect(0.76, 0.39, 0.84, 0.47))
            .c(rect(0.88, 0.39, 0.95, 0.47))
            .c(rect(0.3, 0.55, 0.7, 0.62))
            .d(rect(0.06, 0.53, 0.2, 0.63))
            .d(rect(0.8, 0.53, 0.94, 0.63)),
        // cell phone: portrait slab with a big screen and a round home-button hole.
        67 => G::new()
            .f(rr(0.26, 0.02, 0.74, 0.98, 0.08))
            .d(rect(0.35, 0.14, 0.65, 0.72))
            .c(circ(0.5, 0.89, 0.05)),
        // microwave: wide box with a big door window hole and a control panel.
        68 => G::new()
            .f(rr(0.02, 0.2, 0.98, 0.8, 0.03))
            .c(rect(0.1, 0.3, 0.62, 0.7))
            .d(rect(0.7, 0.3, 0.9, 0.42))
            .d(circ(0.8, 0.56, 0.05))
            .d(circ(0.8, 0.7, 0.04))
            .f(rect(0.06, 0.8, 0.14, 0.86))
            .f(rect(0.86, 0.8, 0.94, 0.86)),
        // oven: tall-ish cabinet with knobs on a raised panel and a door window hole.
        69 => G::new()
            .f(rect(0.1, 0.2, 0.9, 0.94))
            .f(rr(0.1, 0.06, 0.9, 0.22, 0.03))
            .d(circ(0.24, 0.14, 0.04))
            .d(circ(0.4, 0.14, 0.04))
            .d(circ(0.6, 0.14, 0.04))
            .d(circ(0.76, 0.14, 0.04))
            .d(rect(0.2, 0.3, 0.8, 0.34))
            .c(rect(0.22, 0.42, 0.78, 0.76))
            .f(rect(0.14, 0.94, 0.22, 0.99))
            .f(rect(0.78, 0.94, 0.86, 0.99)),
        // toaster: rounded box with two slices of toast popping up.
        70 => G::new()
            .f(rr(0.28, 0.1, 0.46, 0.45, 0.05))
            .f(rr(0.54, 0.1, 0.72, 0.45, 0.05))
            .f(rr(0.1, 0.36, 0.9, 0.92, 0.16))
            .d(rect(0.28, 0.36, 0.46, 0.42))
            .d(rect(0.54, 0.36, 0.72, 0.42))
            .d(rr(0.8, 0.5, 0.96, 0.58, 0.02)),
        // sink: counter slab with a deep basin below and a goose-neck tap above.
        71 => G::new()
            .f(rect(0.02, 0.46, 0.98, 0.56))
            .f(el(0.5, 0.56, 0.34, 0.32))
            .c(rect(0.0, 0.0, 1.0, 0.46))
            .f(line(0.5, 0.48, 0.5, 0.16, 0.07))
            .f(arc(0.62, 0.16, 0.12, 0.07, 180.0, 360.0))
            .f(line(0.74, 0.16, 0.74, 0.28, 0.06))
            .d(el(0.5, 0.62, 0.24, 0.06)),
        // refrigerator: tall cabinet split into two doors by a wide gap, with handles and feet.
        72 => G::new()
            .f(rr(0.18, 0.01, 0.82, 0.94, 0.05))
            .c(rect(0.18, 0.33, 0.82, 0.39))
            .d(rect(0.66, 0.1, 0.72, 0.26))
            .d(rect(0.66, 0.46, 0.72, 0.7))
            .f(rect(0.22, 0.94, 0.3, 0.99))
            .f(rect(0.7, 0.94, 0.78, 0.99)),
        // book: an open book, two pages rising to a deep V with a gap at the spine.
        73 => G::new()
            .f(poly(&[
                [0.02, 0.1],
                [0.47, 0.34],
                [0.47, 0.92],
                [0.02, 0.7],
            ]))
            .f(poly(&[
                [0.98, 0.1],
                [0.53, 0.34],
                [0.53, 0.92],
                [0.98, 0.7],
            ]))
            .c(rect(0.47, 0.0, 0.53, 0.86))
            .d(line(0.1, 0.3, 0.38, 0.44, 0.03))
            .d(line(0.1, 0.46, 0.38, 0.6, 0.03))
            .d(line(0.62, 0.44, 0.9, 0.3, 0.03))
            .d(line(0.62, 0.6, 0.9, 0.46, 0.03)),
        // clock: a thin round frame with hands and tick marks, open inside.
        74 => G::new()
            .f(ring(0.5, 0.5, 0.46, 0.37))
            .f(line(0.5, 0.5, 0.5, 0.2, 0.06))
            .f(line(0.5, 0.5, 0.72, 0.56, 0.06))
            .f(circ(0.5, 0.5, 0.06))
            .f(rect(0.18, 0.48, 0.25, 0.52))
            .f(rect(0.48, 0.75, 0.52, 0.82)),
        // vase: an amphora, narrow neck and flared lip over a wide belly, with two handles.
        75 => G::new()
            .f(poly(&[
                [0.34, 0.02],
                [0.66, 0.02],
                [0.57, 0.12],
                [0.57, 0.26],
                [0.76, 0.5],
                [0.72, 0.84],
                [0.6, 0.98],
                [0.4, 0.98],
                [0.28, 0.84],
                [0.24, 0.5],
                [0.43, 0.26],
                [0.43, 0.12],
            ]))
            .f(arc(0.36, 0.3, 0.14, 0.05, 110.0, 300.0))
            .f(arc(0.64, 0.3, 0.14, 0.05, -120.0, 70.0))
            .d(rect(0.26, 0.54, 0.74, 0.62)),
        // scissors: two finger rings below crossed blades (an X).
        76 => G::new()
            .f(ring(0.28, 0.8, 0.16, 0.08))
            .f(ring(0.72, 0.8, 0.16, 0.08))
            .f(poly(&[
                [0.34, 0.68],
                [0.42, 0.72],
                [0.72, 0.02],
                [0.66, 0.02],
            ]))
            .f(poly(&[
                [0.66, 0.68],
                [0.58, 0.72],
                [0.28, 0.02],
                [0.34, 0.02],
            ]))
            .d(circ(0.5, 0.48, 0.04)),
        // teddy bear: front view, round head with round ears, body, paws and feet.
        77 => G::new()
            .f(circ(0.5, 0.3, 0.2))
            .f(circ(0.32, 0.13, 0.08))
            .f(circ(0.68, 0.13, 0.08))
            .f(el(0.5, 0.68, 0.22, 0.24))
            .f(circ(0.24, 0.56, 0.1))
            .f(circ(0.76, 0.56, 0.1))
            .f(circ(0.34, 0.9, 0.1))
            .f(circ(0.66, 0.9, 0.1))
            .d(el(0.5, 0.36, 0.08, 0.06))
            .d(el(0.5, 0.7, 0.12, 0.13)),
        // hair drier: a barrel with a round back and a slanted pistol grip.
        78 => G::new()
            .f(line(0.1, 0.3, 0.66, 0.3, 0.24))
            .f(circ(0.74, 0.3, 0.22))
            .f(line(0.66, 0.4, 0.56, 0.94, 0.15))
            .d(circ(0.74, 0.3, 0.1))
            .d(rect(0.02, 0.2, 0.1, 0.4)),
        // toothbrush: a long thin handle with a comb of bristles at one end.
        79 => G::new()
            .f(line(0.03, 0.66, 0.96, 0.56, 0.07))
            .f(rect(0.66, 0.4, 0.96, 0.56))
            .c(rect(0.71, 0.4, 0.74, 0.5))
            .c(rect(0.79, 0.4, 0.82, 0.5))
            .c(rect(0.87, 0.4, 0.9, 0.5))
            .d(line(0.06, 0.655, 0.5, 0.61, 0.03)),
        _ => unreachable!("class index {index} is outside 0..80"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raster::{rasterize, Label, Placement};

    /// Renders a class alone at `size` px in a 40×40 canvas; returns (mask, detail-ness).
    fn render(class: ClassId, size: f32) -> Vec<Label> {
        let p = Placement {
            cx: 20.0,
            cy: 20.0,
            size,
            aspect: 1.0,
            rotation: 0.0,
            flip: false,
        };
        let r = rasterize(glyph(class), &p, 40, 40);
        let mut out = vec![Label::Empty; 40 * 40];
        for y in 0..40 {
            for x in 0..40 {
                out[(y * 40 + x) as usize] = r.get(x, y);
            }
        }
        out
    }

    /// Best IoU of two binary masks over translations of up to ±`r` px.
    fn best_iou(a: &[Label], b: &[Label], r: i32) -> f64 {
        let mut best = 0.0f64;
        for dy in -r..=r {
            for dx in -r..=r {
                let (mut inter, mut uni) = (0usize, 0usize);
                for y in 0..40i32 {
                    for x in 0..40i32 {
                        let ia = a[(y * 40 + x) as usize] != Label::Empty;
                        let (xb, yb) = (x + dx, y + dy);
                        let ib = (0..40).contains(&xb)
                            && (0..40).contains(&yb)
                            && b[(yb * 40 + xb) as usize] != Label::Empty;
                        inter += (ia && ib) as usize;
                        uni += (ia || ib) as usize;
                    }
                }
                best = best.max(inter as f64 / uni.max(1) as f64);
            }
        }
        best
    }

    #[test]
    fn every_glyph_is_visible_and_fills_most_of_its_own_colour() {
        let mut problems = Vec::new();
        for c in ClassId::all() {
            let m = render(c, 20.0);
            let fill = m.iter().filter(|l| **l == Label::Fill).count();
            let detail = m.iter().filter(|l| **l == Label::Detail).count();
            if fill + detail < 40 {
                problems.push(format!("{c}: only {} pixels", fill + detail));
            }
            // The fill colour must dominate so that the object's colour is unambiguous.
            if (fill as f64) < 0.65 * (fill + detail) as f64 {
                problems.push(format!("{c}: fill {fill} vs detail {detail}"));
            }
            let e = glyph(c).extent;
            if e[0] < -0.05 || e[1] < -0.05 || e[2] > 1.05 || e[3] > 1.05 {
                problems.push(format!("{c}: extent {e:?}"));
            }
        }
        assert!(problems.is_empty(), "{problems:#?}");
    }

    #[test]
    fn class_silhouettes_are_pairwise_distinct_at_20px() {
        let masks: Vec<Vec<Label>> = ClassId::all().map(|c| render(c, 20.0)).collect();
        let mut worst = (0.0, 0, 0);
        for i in 0..NUM_CLASSES {
            for j in i + 1..NUM_CLASSES {
                let iou = best_iou(&masks[i], &masks[j], 3);
                if iou > 0.7 {
                    eprintln!(
                        "{} / {}: {iou:.3}",
                        ClassId::new(i).unwrap(),
                        ClassId::new(j).unwrap()
                    );
                }
                if iou > worst.0 {
                    worst = (iou, i, j);
                }
            }
        }
        let (iou, i, j) = worst;
        let (a, b) = (ClassId::new(i).unwrap(), ClassId::new(j).unwrap());
        assert!(iou <= 0.8, "{a} and {b} masks overlap with IoU {iou:.3}");
    }
}
