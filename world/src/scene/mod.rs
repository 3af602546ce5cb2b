//! Scenes: objects placed on a textured background, with exact ground truth.
//!
//! Objects are painted back to front, each with a 1-px outline. The ground truth of each object
//! is its *visible* mask and the tight box of that mask (mmdet convention: `[xmin, ymin,
//! xmax+1, ymax+1]`). Every scene keeps each object at least [`MIN_VISIBLE`] visible, so the
//! truth is never ambiguous, and a scene sampled for a prompt is checked with the GenEval rules
//! themselves before it is returned.

use crate::glyphs::glyph;
use crate::palette;
use crate::raster::{rasterize, Label, Placement};
use crate::WorldError;
use harness::rng::Rng;
use harness::rules::{judge, relative_position, RuleConfig};
use harness::vocab::NUM_CLASSES;
use harness::{ClassId, Color, Detection, Include, Metadata, Relation};
use image::{Rgb, RgbImage};
use serde_json::{json, Value};

/// Width and height of every image.
pub const IMAGE_SIZE: u32 = 64;
/// Most objects a scene may hold (prompts need at most 5, near-misses of counting 5).
pub const MAX_OBJECTS: usize = 6;
/// Smallest visible fraction of an object's own mask once later objects are painted.
pub const MIN_VISIBLE: f64 = 0.7;
/// Placement attempts before a scene request is reported as unsatisfiable.
const MAX_ATTEMPTS: u64 = 200;

/// A binary pixel mask over the whole image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    pub width: u32,
    pub height: u32,
    pub bits: Vec<bool>,
}

impl Mask {
    pub fn new(width: u32, height: u32) -> Mask {
        Mask {
            width,
            height,
            bits: vec![false; (width * height) as usize],
        }
    }

    pub fn get(&self, x: u32, y: u32) -> bool {
        self.bits[(y * self.width + x) as usize]
    }

    pub fn area(&self) -> usize {
        self.bits.iter().filter(|b| **b).count()
    }

    /// Tight box `[xmin, ymin, xmax+1, ymax+1]`, or `None` for an empty mask.
    pub fn bbox(&self) -> Option<[f64; 4]> {
        let mut b = [u32::MAX, u32::MAX, 0, 0];
        for y in 0..self.height {
            for x in 0..self.width {
                if self.get(x, y) {
                    b = [b[0].min(x), b[1].min(y), b[2].max(x + 1), b[3].max(y + 1)];
                }
            }
        }
        (b[0] != u32::MAX).then(|| b.map(f64::from))
    }
}

/// An object to draw: what it is and where.
#[derive(Debug, Clone, PartialEq)]
pub struct PlacedObject {
    pub class: ClassId,
    pub color: Color,
    /// The instance's exact colour (the GenEval colour's base with a small jitter).
    pub rgb: [u8; 3],
    pub placement: Placement,
}

/// One object of a rendered scene, with its exact ground truth.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectInstance {
    pub class: ClassId,
    pub color: Color,
    pub rgb: [u8; 3],
    /// Tight box of the visible mask, `[xmin, ymin, xmax+1, ymax+1]`.
    pub bbox: [f64; 4],
    /// Visible pixels (what is painted in the object's colours in the final image).
    pub mask: Mask,
    /// Visible pixels / pixels of the object had nothing covered it.
    pub visible_fraction: f64,
}

/// A rendered scene: the image and its objects in painting order (back to front).
#[derive(Debug, Clone)]
pub struct Scene {
    pub image: RgbImage,
    pub objects: Vec<ObjectInstance>,
}

impl Scene {
    /// Exact detections: every object with score 1.0, its class, box and colour.
    pub fn detections(&self) -> Vec<Detection> {
        self.objects
            .iter()
            .map(|o| Detection {
                class: o.class,
                score: 1.0,
                bbox: o.bbox,
                color: Some(o.color),
            })
            .collect()
    }

    /// Detections in the `score --detections` format.
    pub fn detections_json(&self) -> Value {
        Value::Array(
            self.objects
                .iter()
                .map(|o| {
                    json!({"class": o.class.name(), "score": 1.0, "box": o.bbox, "color": o.color.as_str()})
                })
                .collect(),
        )
    }

    /// Objects as dataset annotations: `[{"class", "color", "box"}]`.
    pub fn objects_json(&self) -> Value {
        Value::Array(
            self.objects
                .iter()
                .map(|o| json!({"class": o.class.name(), "color": o.color.as_str(), "box": o.bbox}))
                .collect(),
        )
    }

    /// Whether the GenEval rules (official thresholds) accept this scene's exact detections.
    pub fn satisfies(&self, metadata: &Metadata) -> bool {
        judge(metadata, &self.detections(), &RuleConfig::default()).is_ok_and(|j| j.correct)
    }
}

/// Paints `objects` back to front over `background` and measures what stays visible.
pub fn compose(mut image: RgbImage, objects: &[PlacedObject]) -> Scene {
    let (w, h) = image.dimensions();
    // Which object each pixel shows (-1: background or an outline).
    let mut owner = vec![-1i32; (w * h) as usize];
    let mut full_area = Vec::with_capacity(objects.len());
    for (k, o) in objects.iter().enumerate() {
        let r = rasterize(glyph(o.class), &o.placement, w, h);
        let inside = |x: i32, y: i32| r.get(x, y) != Label::Empty;
        let detail = palette::detail_rgb(o.rgb, o.color);
        let outline = palette::outline_rgb(o.rgb);
        let mut area = 0usize;
        for y in (r.y0 - 1).max(0)..(r.y0 + r.h + 1).min(h as i32) {
            for x in (r.x0 - 1).max(0)..(r.x0 + r.w + 1).min(w as i32) {
                let idx = (y as u32 * w + x as u32) as usize;
                match r.get(x, y) {
                    Label::Fill | Label::Detail => {
                        let rgb = if r.get(x, y) == Label::Fill {
                            o.rgb
                        } else {
                            detail
                        };
                        image.put_pixel(x as u32, y as u32, Rgb(rgb));
                        owner[idx] = k as i32;
                        area += 1;
                    }
                    Label::Empty => {
                        let near = (-1..=1).any(|dy| (-1..=1).any(|dx| inside(x + dx, y + dy)));
                        if near {
                            image.put_pixel(x as u32, y as u32, Rgb(outline));
                            owner[idx] = -1;
                        }
                    }
                }
            }
        }
        full_area.push(area);
    }
    let instances = objects
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let mut mask = Mask::new(w, h);
            for (i, own) in owner.iter().enumerate() {
                mask.bits[i] = *own == k as i32;
            }
            let visible = mask.area();
            ObjectInstance {
                class: o.class,
                color: o.color,
                rgb: o.rgb,
                bbox: mask.bbox().unwrap_or([0.0; 4]),
                mask,
                visible_fraction: visible as f64 / full_area[k].max(1) as f64,
            }
        })
        .collect();
    Scene {
        image,
        objects: instances,
    }
}

/// Larger glyph side, in pixels, for a scene of `n` objects: big when alone, 12–20 px when
/// crowded, so that up to five objects fit without heavy overlap.
fn sample_size(rng: &mut Rng, n: usize) -> f32 {
    let (lo, hi) = match n {
        0 | 1 => (26.0, 44.0),
        2 => (18.0, 30.0),
        3 => (15.0, 25.0),
        _ => (12.0, 20.0),
    };
    rng.uniform(lo, hi) as f32
}

/// Where an object's centre may go, in pixels: `[xmin, xmax, ymin, ymax]`.
type Region = [f32; 4];

const FULL: Region = [0.0, IMAGE_SIZE as f32, 0.0, IMAGE_SIZE as f32];

/// An object to place: class, colour and the region its centre should fall in.
#[derive(Debug, Clone)]
struct Slot {
    class: ClassId,
    color: Color,
    region: Region,
}

/// Centre regions that make `A rel B` likely: A's group on one side of a random split, B's on
/// the other, both near a shared line across so the relation is not diagonal.
fn relation_regions(rng: &mut Rng, rel: Relation) -> (Region, Region) {
    let s = IMAGE_SIZE as f32;
    let split = rng.uniform(0.42, 0.58) as f32 * s;
    let across = rng.uniform(0.3, 0.7) as f32 * s;
    let band = [across - 10.0, across + 10.0];
    let gap = 5.0;
    let (first, second) = ([0.0, split - gap], [split + gap, s]);
    match rel {
        Relation::LeftOf => (
            [first[0], first[1], band[0], band[1]],
            [second[0], second[1], band[0], band[1]],
        ),
        Relation::RightOf => (
            [second[0], second[1], band[0], band[1]],
            [first[0], first[1], band[0], band[1]],
        ),
        Relation::Above => (
            [band[0], band[1], first[0], first[1]],
            [band[0], band[1], second[0], second[1]],
        ),
        Relation::Below => (
            [band[0], band[1], second[0], second[1]],
            [band[0], band[1], first[0], first[1]],
        ),
    }
}

/// The canonical centre nearest `c` whose footprint (glyph plus outline) starts on a cell
/// boundary and stays inside the image.
fn snap_to_cell(c: f32) -> f32 {
    let half = CANONICAL_SIZE / 2.0 + 1.0;
    let cells = ((IMAGE_SIZE as f32 - 2.0 * half) / CANONICAL_CELL).floor();
    let start = ((c - half) / CANONICAL_CELL).round().clamp(0.0, cells);
    start * CANONICAL_CELL + half
}

/// Random placements for `slots`, preferring positions whose boxes do not touch earlier ones.
fn place(rng: &mut Rng, slots: &[Slot], style: Style) -> Vec<PlacedObject> {
    let n = slots.len();
    let s = IMAGE_SIZE as f32;
    let mut boxes: Vec<[f32; 4]> = Vec::new();
    let mut out = Vec::with_capacity(n);
    for slot in slots {
        let shape = glyph(slot.class);
        let mut p = match style {
            Style::Natural => Placement {
                cx: 0.0,
                cy: 0.0,
                size: sample_size(rng, n),
                aspect: rng.uniform(0.85, 1.15) as f32,
                rotation: rng.uniform(-12.0, 12.0).to_radians() as f32,
                flip: rng.chance(0.5),
            },
            Style::Canonical => Placement {
                cx: 0.0,
                cy: 0.0,
                size: CANONICAL_SIZE,
                aspect: 1.0,
                rotation: 0.0,
                flip: false,
            },
        };
        let (hx, hy) = p.half_extents(shape);
        // The whole object and its outline stay inside the image.
        let (xlo, xhi) = (hx + 1.5, s - hx - 1.5);
        let (ylo, yhi) = (hy + 1.5, s - hy - 1.5);
        let pick = |rng: &mut Rng, lo: f32, hi: f32, rlo: f32, rhi: f32| -> f32 {
            let (a, b) = (lo.max(rlo), hi.min(rhi));
            if a < b {
                rng.uniform(a as f64, b as f64) as f32
            } else if lo < hi {
                // The region does not fit this object: stay as close to it as possible.
                ((rlo + rhi) / 2.0).clamp(lo, hi)
            } else {
                s / 2.0
            }
        };
        let mut best: Option<(f32, f32, f32)> = None;
        for _ in 0..30 {
            let mut cx = pick(rng, xlo, xhi, slot.region[0], slot.region[1]);
            let mut cy = pick(rng, ylo, yhi, slot.region[2], slot.region[3]);
            if style == Style::Canonical {
                (cx, cy) = (snap_to_cell(cx), snap_to_cell(cy));
            }
            let b = [cx - hx - 1.0, cy - hy - 1.0, cx + hx + 1.0, cy + hy + 1.0];
            let overlap: f32 = boxes
                .iter()
                .map(|o| {
                    let iw = (b[2].min(o[2]) - b[0].max(o[0])).max(0.0);
                    let ih = (b[3].min(o[3]) - b[1].max(o[1])).max(0.0);
                    iw * ih
                })
                .sum();
            if best.is_none_or(|(_, _, o)| overlap < o) {
                best = Some((cx, cy, overlap));
            }
            if overlap == 0.0 {
                break;
            }
        }
        let (cx, cy, _) = best.unwrap_or((s / 2.0, s / 2.0, 0.0));
        p.cx = cx;
        p.cy = cy;
        boxes.push([cx - hx, cy - hy, cx + hx, cy + hy]);
        let rgb = match style {
            Style::Natural => palette::instance_rgb(slot.color, rng),
            Style::Canonical => palette::base_rgb(slot.color),
        };
        out.push(PlacedObject {
            class: slot.class,
            color: slot.color,
            rgb,
            placement: p,
        });
    }
    out
}

/// The slots for a list of include clauses (exact counts; random colours where none is asked),
/// plus `distractors` objects of classes the clauses and `avoid` do not mention.
fn slots_for(
    rng: &mut Rng,
    include: &[Include],
    avoid: &[ClassId],
    distractors: usize,
) -> Vec<Slot> {
    // Regions from position clauses: the clause's objects on one side, its group's on the other.
    let mut regions = vec![FULL; include.len()];
    for (k, clause) in include.iter().enumerate() {
        if let Some(pos) = clause.position {
            let (a, b) = relation_regions(rng, pos.relation);
            regions[k] = a;
            if pos.group < include.len() {
                regions[pos.group] = b;
            }
        }
    }
    let mut slots = Vec::new();
    for (k, clause) in include.iter().enumerate() {
        for _ in 0..clause.count {
            let color = clause
                .color
                .unwrap_or_else(|| Color::ALL[rng.index(Color::ALL.len())]);
            slots.push(Slot {
                class: clause.class,
                color,
                region: regions[k],
            });
        }
    }
    let mentioned: Vec<ClassId> = include
        .iter()
        .map(|c| c.class)
        .chain(avoid.iter().copied())
        .collect();
    let pool: Vec<ClassId> = ClassId::all().filter(|c| !mentioned.contains(c)).collect();
    for _ in 0..distractors {
        if let Some(&class) = rng.choose(&pool) {
            slots.push(Slot {
                class,
                color: Color::ALL[rng.index(Color::ALL.len())],
                region: FULL,
            });
        }
    }
    // Paint order is random so that no clause is always in front.
    rng.shuffle(&mut slots);
    slots
}

/// Whether every object is visible enough to be unambiguous.
fn well_formed(scene: &Scene) -> bool {
    scene
        .objects
        .iter()
        .all(|o| o.visible_fraction >= MIN_VISIBLE && o.mask.area() >= 12)
}

/// How scenes are drawn.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// Textured backgrounds, random sizes, stretches, rotations, flips and colour jitter: what
    /// the detector and the ground-truth suite use.
    #[default]
    Natural,
    /// The generator's world: a flat grey background, every glyph at one size, upright,
    /// unflipped, in its exact palette colour, its footprint aligned to the 8-pixel token grid.
    /// A glyph's tokens are then a function of (class, colour) alone, which is what makes a
    /// masked-token generator learnable on two CPU cores (docs/generator.md).
    Canonical,
}

impl Style {
    /// Serde helper: the natural style is the default and is left out of written configs, so
    /// that configs written before styles existed stay byte-identical.
    pub fn is_natural(&self) -> bool {
        *self == Style::Natural
    }
}

/// The canonical style's grey background.
pub const CANONICAL_BACKGROUND: [u8; 3] = [128, 128, 128];
/// The canonical glyph's larger side; with its 1-pixel outline it covers 3×3 tokens of 8 pixels.
pub const CANONICAL_SIZE: f32 = 22.0;
/// The token grid canonical footprints align to, in pixels.
pub const CANONICAL_CELL: f32 = 8.0;

impl Style {
    /// The empty image scenes of this style are drawn on.
    fn background(self, rng: &mut Rng) -> RgbImage {
        match self {
            Style::Natural => palette::background(rng, IMAGE_SIZE, IMAGE_SIZE),
            Style::Canonical => {
                RgbImage::from_pixel(IMAGE_SIZE, IMAGE_SIZE, Rgb(CANONICAL_BACKGROUND))
            }
        }
    }
}

/// Options of the scene sampler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SceneOptions {
    /// Extra objects of classes the prompt does not mention (the ground-truth suite uses none).
    pub distractors: usize,
    pub style: Style,
}

impl SceneOptions {
    /// No distractors, drawn in `style`.
    pub fn in_style(style: Style) -> SceneOptions {
        SceneOptions {
            style,
            ..SceneOptions::default()
        }
    }
}

/// Renders the objects of `include` (exact counts) until `accept` holds for the exact
/// detections; each attempt draws from its own derived stream, so results depend on the seed
/// only.
pub(crate) fn sample_scene(
    include: &[Include],
    avoid: &[ClassId],
    seed: u64,
    opts: &SceneOptions,
    accept: impl Fn(&Scene) -> bool,
) -> Result<Scene, WorldError> {
    let total: u32 = include.iter().map(|c| c.count).sum::<u32>() + opts.distractors as u32;
    if total as usize > MAX_OBJECTS {
        return Err(WorldError::Unsatisfiable(format!(
            "{total} objects requested; a {IMAGE_SIZE}x{IMAGE_SIZE} scene holds at most {MAX_OBJECTS}"
        )));
    }
    for attempt in 0..MAX_ATTEMPTS {
        let mut rng = Rng::derived(seed, &[attempt]);
        let bg = opts.style.background(&mut rng);
        let slots = slots_for(&mut rng, include, avoid, opts.distractors);
        let placed = place(&mut rng, &slots, opts.style);
        let scene = compose(bg, &placed);
        if well_formed(&scene) && accept(&scene) {
            return Ok(scene);
        }
    }
    Err(WorldError::Unsatisfiable(format!(
        "no valid layout found in {MAX_ATTEMPTS} attempts"
    )))
}

/// A scene that satisfies `metadata` under the GenEval rules: `count` objects per include
/// clause, requested colours (random otherwise), positions as the official relation test sees
/// them, nothing that an exclude clause forbids.
pub fn scene_for_metadata(
    metadata: &Metadata,
    seed: u64,
    opts: &SceneOptions,
) -> Result<Scene, WorldError> {
    let avoid: Vec<ClassId> = metadata.exclude.iter().map(|e| e.class).collect();
    sample_scene(&metadata.include, &avoid, seed, opts, |s| {
        s.satisfies(metadata) && positions_hold(metadata, s)
    })
    .map_err(|e| match e {
        WorldError::Unsatisfiable(why) => {
            WorldError::Unsatisfiable(format!("prompt \"{}\": {why}", metadata.prompt))
        }
        other => other,
    })
}

/// Every position clause checked directly with the official `relative_position` on the final
/// visible boxes (the rules check only the top-`count` objects; here every object must agree).
fn positions_hold(metadata: &Metadata, scene: &Scene) -> bool {
    metadata.include.iter().all(|clause| {
        let Some(pos) = clause.position else {
            return true;
        };
        let Some(target) = metadata.include.get(pos.group) else {
            return false;
        };
        scene
            .objects
            .iter()
            .filter(|a| a.class == clause.class)
            .all(|a| {
                scene
                    .objects
                    .iter()
                    .filter(|b| b.class == target.class)
                    .all(|b| relative_position(&a.bbox, &b.bbox, 0.1).contains(pos.relation))
            })
    })
}

/// A scene of `n` random objects (random classes and colours, no prompt) for detector training.
/// `n = 0` gives an object-free image.
pub fn random_scene(seed: u64, n: usize) -> Scene {
    random_scene_styled(seed, n, Style::Natural)
}

/// [`random_scene`] in a given style.
pub fn random_scene_styled(seed: u64, n: usize, style: Style) -> Scene {
    let n = n.min(MAX_OBJECTS);
    for attempt in 0..MAX_ATTEMPTS {
        let mut rng = Rng::derived(seed, &[attempt]);
        let bg = style.background(&mut rng);
        let slots: Vec<Slot> = (0..n)
            .map(|_| Slot {
                class: ClassId::new(rng.index(NUM_CLASSES)).unwrap_or_else(|| unreachable!()),
                color: Color::ALL[rng.index(Color::ALL.len())],
                region: FULL,
            })
            .collect();
        let placed = place(&mut rng, &slots, style);
        let scene = compose(bg, &placed);
        if well_formed(&scene) {
            return scene;
        }
    }
    // Five small objects always fit; reaching this means the size ranges were broken.
    unreachable!("random_scene: no layout for {n} objects")
}

#[cfg(test)]
mod tests;
