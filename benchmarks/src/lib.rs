//! Fixtures shared by evalcot's criterion benches (`cargo bench -p benchmarks`). Speed targets
//! live here, never in timed unit tests.

use harness::rng::Rng;
use harness::{ClassId, Color, Detection, Suite};

/// Random detections for every prompt of the official suite: each prompt's classes plus
/// distractors, scores across the thresholds, boxes on a 512 px canvas.
pub fn random_detections(seed: u64, per_image: usize) -> Vec<(harness::Metadata, Vec<Detection>)> {
    let suite = Suite::official();
    suite
        .prompts
        .iter()
        .map(|p| {
            let mut rng = Rng::derived(seed, &[p.index as u64]);
            let classes: Vec<ClassId> = p.metadata.include.iter().map(|c| c.class).collect();
            let dets = (0..per_image)
                .map(|_| {
                    let class = if rng.chance(0.8) {
                        classes[rng.index(classes.len())]
                    } else {
                        ClassId::new(rng.index(80)).unwrap_or(classes[0])
                    };
                    let (x, y) = (rng.uniform(0.0, 400.0), rng.uniform(0.0, 400.0));
                    let (w, h) = (rng.uniform(10.0, 110.0), rng.uniform(10.0, 110.0));
                    Detection {
                        class,
                        score: rng.f64(),
                        bbox: [x, y, x + w, y + h],
                        color: Some(Color::ALL[rng.index(10)]),
                    }
                })
                .collect();
            (p.metadata.clone(), dets)
        })
        .collect()
}
