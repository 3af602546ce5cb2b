//! Vector primitives in a unit square and their rasterisation into binary object masks.
//!
//! A glyph is a list of painted primitives applied in order: `Fill` paints the object's colour,
//! `Detail` paints a shade of it (internal structure), `Cut` erases (holes and notches that
//! change the silhouette). A pixel belongs to the object when at least half of its sub-samples
//! are painted, so the mask is binary and exactly matches what is drawn in object colours.

use std::f32::consts::PI;

/// A shape in glyph coordinates: the unit square, x to the right, y down.
#[derive(Debug, Clone, PartialEq)]
pub enum Prim {
    Ellipse {
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
    },
    /// An ellipse rotated by `angle` radians (clockwise on screen, because y points down).
    RotEllipse {
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        angle: f32,
    },
    Rect {
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
    },
    RoundRect {
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        r: f32,
    },
    /// A simple polygon (even-odd rule).
    Poly(Vec<[f32; 2]>),
    /// A thick segment with round caps (a capsule).
    Line {
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        w: f32,
    },
    /// An annulus.
    Ring {
        cx: f32,
        cy: f32,
        ro: f32,
        ri: f32,
    },
    /// A circular arc of width `w` around radius `r`, from angle `a0` to `a1` (radians,
    /// measured clockwise on screen from +x; `a1 > a0`).
    Arc {
        cx: f32,
        cy: f32,
        r: f32,
        w: f32,
        a0: f32,
        a1: f32,
    },
}

impl Prim {
    /// Whether the point lies inside the primitive.
    pub fn contains(&self, x: f32, y: f32) -> bool {
        match self {
            Prim::Ellipse { cx, cy, rx, ry } => {
                let (dx, dy) = ((x - cx) / rx, (y - cy) / ry);
                dx * dx + dy * dy <= 1.0
            }
            Prim::RotEllipse {
                cx,
                cy,
                rx,
                ry,
                angle,
            } => {
                let (s, c) = angle.sin_cos();
                let (px, py) = (x - cx, y - cy);
                let (u, v) = ((px * c + py * s) / rx, (-px * s + py * c) / ry);
                u * u + v * v <= 1.0
            }
            Prim::Rect { x0, y0, x1, y1 } => x >= *x0 && x <= *x1 && y >= *y0 && y <= *y1,
            Prim::RoundRect { x0, y0, x1, y1, r } => {
                if x < *x0 || x > *x1 || y < *y0 || y > *y1 {
                    return false;
                }
                let qx = (x - x0).min(x1 - x);
                let qy = (y - y0).min(y1 - y);
                if qx >= *r || qy >= *r {
                    return true;
                }
                let (dx, dy) = (r - qx, r - qy);
                dx * dx + dy * dy <= r * r
            }
            Prim::Poly(pts) => {
                let mut inside = false;
                let n = pts.len();
                let mut j = n - 1;
                for i in 0..n {
                    let [xi, yi] = pts[i];
                    let [xj, yj] = pts[j];
                    if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                        inside = !inside;
                    }
                    j = i;
                }
                inside
            }
            Prim::Line { x0, y0, x1, y1, w } => {
                let (vx, vy) = (x1 - x0, y1 - y0);
                let len2 = vx * vx + vy * vy;
                let t = if len2 > 0.0 {
                    (((x - x0) * vx + (y - y0) * vy) / len2).clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let (dx, dy) = (x - (x0 + t * vx), y - (y0 + t * vy));
                dx * dx + dy * dy <= (w / 2.0) * (w / 2.0)
            }
            Prim::Ring { cx, cy, ro, ri } => {
                let d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                d2 <= ro * ro && d2 >= ri * ri
            }
            Prim::Arc {
                cx,
                cy,
                r,
                w,
                a0,
                a1,
            } => {
                let d = ((x - cx) * (x - cx) + (y - cy) * (y - cy)).sqrt();
                if (d - r).abs() > w / 2.0 {
                    return false;
                }
                let mut a = (y - cy).atan2(x - cx);
                while a < *a0 {
                    a += 2.0 * PI;
                }
                a <= *a1
            }
        }
    }

    /// A bounding box `[x0, y0, x1, y1]` (not always tight), for fast rejection.
    pub fn bounds(&self) -> [f32; 4] {
        match self {
            Prim::Ellipse { cx, cy, rx, ry } => [cx - rx, cy - ry, cx + rx, cy + ry],
            Prim::RotEllipse { cx, cy, rx, ry, .. } => {
                let r = rx.max(*ry);
                [cx - r, cy - r, cx + r, cy + r]
            }
            Prim::Rect { x0, y0, x1, y1 } | Prim::RoundRect { x0, y0, x1, y1, .. } => {
                [*x0, *y0, *x1, *y1]
            }
            Prim::Poly(pts) => pts
                .iter()
                .fold([f32::MAX, f32::MAX, f32::MIN, f32::MIN], |b, [x, y]| {
                    [b[0].min(*x), b[1].min(*y), b[2].max(*x), b[3].max(*y)]
                }),
            Prim::Line { x0, y0, x1, y1, w } => {
                let h = w / 2.0;
                [
                    x0.min(*x1) - h,
                    y0.min(*y1) - h,
                    x0.max(*x1) + h,
                    y0.max(*y1) + h,
                ]
            }
            Prim::Ring { cx, cy, ro, .. } => [cx - ro, cy - ro, cx + ro, cy + ro],
            Prim::Arc { cx, cy, r, w, .. } => {
                let o = r + w / 2.0;
                [cx - o, cy - o, cx + o, cy + o]
            }
        }
    }
}

/// How a primitive is painted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paint {
    /// The object's colour: what the colour clause is about.
    Fill,
    /// A shade of the object's colour: internal structure.
    Detail,
    /// Erase: holes and notches.
    Cut,
}

/// What one point of a glyph shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Empty,
    Fill,
    Detail,
}

/// A glyph: painted primitives in drawing order, with the tight extent of what they paint.
#[derive(Debug, Clone)]
pub struct Shape {
    ops: Vec<(Prim, Paint, [f32; 4])>,
    /// Tight `[x0, y0, x1, y1]` of the painted area in unit coordinates.
    pub extent: [f32; 4],
}

impl Shape {
    pub fn new(ops: Vec<(Prim, Paint)>) -> Shape {
        let ops: Vec<_> = ops
            .into_iter()
            .map(|(p, k)| {
                let b = p.bounds();
                (p, k, b)
            })
            .collect();
        let mut shape = Shape {
            ops,
            extent: [0.0, 0.0, 1.0, 1.0],
        };
        shape.extent = shape.measure_extent();
        shape
    }

    /// The label at a point: the last primitive containing it decides.
    pub fn label_at(&self, x: f32, y: f32) -> Label {
        for (prim, paint, b) in self.ops.iter().rev() {
            if x < b[0] || x > b[2] || y < b[1] || y > b[3] || !prim.contains(x, y) {
                continue;
            }
            return match paint {
                Paint::Fill => Label::Fill,
                Paint::Detail => Label::Detail,
                Paint::Cut => Label::Empty,
            };
        }
        Label::Empty
    }

    fn measure_extent(&self) -> [f32; 4] {
        // Sampled on a fine grid around the unit square: cuts make analytic bounds loose.
        const N: usize = 400;
        let mut e = [f32::MAX, f32::MAX, f32::MIN, f32::MIN];
        for j in 0..N {
            for i in 0..N {
                let x = -0.1 + 1.2 * (i as f32 + 0.5) / N as f32;
                let y = -0.1 + 1.2 * (j as f32 + 0.5) / N as f32;
                if self.label_at(x, y) != Label::Empty {
                    e = [e[0].min(x), e[1].min(y), e[2].max(x), e[3].max(y)];
                }
            }
        }
        if e[0] > e[2] {
            [0.0, 0.0, 1.0, 1.0]
        } else {
            e
        }
    }
}

/// Where and how an object's glyph is drawn on the image.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Placement {
    /// Centre of the glyph's extent, in pixels.
    pub cx: f32,
    pub cy: f32,
    /// The larger side of the (unrotated) glyph extent, in pixels.
    pub size: f32,
    /// Horizontal stretch relative to the glyph's own proportions (1.0 = as designed).
    pub aspect: f32,
    /// Rotation in radians (clockwise on screen).
    pub rotation: f32,
    /// Mirror horizontally before rotating.
    pub flip: bool,
}

impl Placement {
    /// Pixel scales along the glyph's x and y axes.
    fn scales(&self, shape: &Shape) -> (f32, f32) {
        let w = shape.extent[2] - shape.extent[0];
        let h = shape.extent[3] - shape.extent[1];
        let s = self.size / (w * self.aspect).max(h);
        (s * self.aspect, s)
    }

    /// Half extents of the rotated glyph's axis-aligned box, in pixels.
    pub fn half_extents(&self, shape: &Shape) -> (f32, f32) {
        let (sx, sy) = self.scales(shape);
        let w = (shape.extent[2] - shape.extent[0]) * sx;
        let h = (shape.extent[3] - shape.extent[1]) * sy;
        let (s, c) = self.rotation.sin_cos();
        (
            0.5 * (w * c.abs() + h * s.abs()),
            0.5 * (w * s.abs() + h * c.abs()),
        )
    }
}

/// A glyph rasterised into a window of the image: labels for pixels `x0..x0+w`, `y0..y0+h`.
#[derive(Debug, Clone)]
pub struct Raster {
    pub x0: i32,
    pub y0: i32,
    pub w: i32,
    pub h: i32,
    pub labels: Vec<Label>,
}

impl Raster {
    pub fn get(&self, x: i32, y: i32) -> Label {
        if x < self.x0 || y < self.y0 || x >= self.x0 + self.w || y >= self.y0 + self.h {
            return Label::Empty;
        }
        self.labels[((y - self.y0) * self.w + (x - self.x0)) as usize]
    }
}

/// Sub-samples per pixel side; 4×4 keeps thin parts stable under rotation.
const SS: usize = 4;

/// Rasterises `shape` at `placement`, clipped to a `width`×`height` image. A pixel is painted
/// when at least half of its sub-samples are; it shows Detail when most painted samples do.
pub fn rasterize(shape: &Shape, p: &Placement, width: u32, height: u32) -> Raster {
    let (sx, sy) = p.scales(shape);
    let gcx = 0.5 * (shape.extent[0] + shape.extent[2]);
    let gcy = 0.5 * (shape.extent[1] + shape.extent[3]);
    let (hx, hy) = p.half_extents(shape);
    let x0 = ((p.cx - hx).floor() as i32 - 1).max(0);
    let y0 = ((p.cy - hy).floor() as i32 - 1).max(0);
    let x1 = ((p.cx + hx).ceil() as i32 + 1).min(width as i32);
    let y1 = ((p.cy + hy).ceil() as i32 + 1).min(height as i32);
    let (w, h) = ((x1 - x0).max(0), (y1 - y0).max(0));
    let (sin, cos) = p.rotation.sin_cos();
    let mut labels = vec![Label::Empty; (w * h) as usize];
    for j in 0..h {
        for i in 0..w {
            let (mut fill, mut detail) = (0usize, 0usize);
            for sj in 0..SS {
                for si in 0..SS {
                    let px = (x0 + i) as f32 + (si as f32 + 0.5) / SS as f32 - p.cx;
                    let py = (y0 + j) as f32 + (sj as f32 + 0.5) / SS as f32 - p.cy;
                    // Inverse rotation, then inverse mirror, then inverse scale.
                    let mut rx = px * cos + py * sin;
                    let ry = -px * sin + py * cos;
                    if p.flip {
                        rx = -rx;
                    }
                    match shape.label_at(rx / sx + gcx, ry / sy + gcy) {
                        Label::Fill => fill += 1,
                        Label::Detail => detail += 1,
                        Label::Empty => {}
                    }
                }
            }
            if 2 * (fill + detail) >= SS * SS {
                labels[(j * w + i) as usize] = if detail > fill {
                    Label::Detail
                } else {
                    Label::Fill
                };
            }
        }
    }
    Raster {
        x0,
        y0,
        w,
        h,
        labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primitives_contain_their_centres_and_not_far_points() {
        let prims = [
            Prim::Ellipse {
                cx: 0.5,
                cy: 0.5,
                rx: 0.2,
                ry: 0.1,
            },
            Prim::RotEllipse {
                cx: 0.5,
                cy: 0.5,
                rx: 0.2,
                ry: 0.1,
                angle: 0.7,
            },
            Prim::Rect {
                x0: 0.4,
                y0: 0.4,
                x1: 0.6,
                y1: 0.6,
            },
            Prim::RoundRect {
                x0: 0.4,
                y0: 0.4,
                x1: 0.6,
                y1: 0.6,
                r: 0.05,
            },
            Prim::Poly(vec![[0.4, 0.4], [0.6, 0.4], [0.5, 0.6]]),
            Prim::Line {
                x0: 0.3,
                y0: 0.5,
                x1: 0.7,
                y1: 0.5,
                w: 0.1,
            },
        ];
        for p in &prims {
            assert!(p.contains(0.5, 0.48), "{p:?}");
            assert!(!p.contains(0.95, 0.05), "{p:?}");
        }
        let ring = Prim::Ring {
            cx: 0.5,
            cy: 0.5,
            ro: 0.3,
            ri: 0.2,
        };
        assert!(!ring.contains(0.5, 0.5) && ring.contains(0.75, 0.5));
        // Lower half arc (angles 0..π go through +y, i.e. down on screen).
        let arc = Prim::Arc {
            cx: 0.5,
            cy: 0.5,
            r: 0.3,
            w: 0.1,
            a0: 0.0,
            a1: PI,
        };
        assert!(arc.contains(0.5, 0.8) && !arc.contains(0.5, 0.2));
    }

    #[test]
    fn rasterised_square_has_the_requested_size() {
        let shape = Shape::new(vec![(
            Prim::Rect {
                x0: 0.0,
                y0: 0.0,
                x1: 1.0,
                y1: 0.5,
            },
            Paint::Fill,
        )]);
        let p = Placement {
            cx: 32.0,
            cy: 32.0,
            size: 20.0,
            aspect: 1.0,
            rotation: 0.0,
            flip: false,
        };
        let r = rasterize(&shape, &p, 64, 64);
        let n = r.labels.iter().filter(|l| **l != Label::Empty).count();
        assert!((190..=230).contains(&n), "{n}");
        assert_eq!(r.get(32, 32), Label::Fill);
        assert_eq!(r.get(32, 45), Label::Empty);
    }
}
