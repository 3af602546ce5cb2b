//! Diagnostic: is the evaluation detector's calibration right for small objects? Reliability per
//! predicted-box size on held-out random scenes, and the scores of true objects in the
//! ground-truth suite's counting prompts. Usage:
//! `cargo run --release -p models --example probe_calibration -- [IMAGES]`.
use harness::Suite;
use models::detector::data::peaks;
use models::detector::training::label_peaks;
use rayon::prelude::*;
use world::scene::random_scene;

type B = models::Cpu;

fn size(b: &[f32; 4]) -> f32 {
    ((b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)).sqrt()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(2000, |s| s.parse().unwrap_or(2000));
    let device = Default::default();
    let det = models::embedded::evaluation_detector::<B>(&device)?;
    let cal = det.meta.calibration;
    let grid = det.grid();
    let edges = [0.0f32, 9.0, 11.0, 13.0, 16.0, 20.0, 1e9];
    // [size bucket][score bin] -> (count, matched)
    let mut table = vec![vec![(0usize, 0usize); 10]; edges.len() - 1];
    for chunk in (0..n).collect::<Vec<_>>().chunks(128) {
        let scenes: Vec<_> = chunk
            .par_iter()
            .map(|&i| random_scene(harness::rng::derive_seed(4242, &[i as u64]), 1 + i % 5))
            .collect();
        let images: Vec<_> = scenes.iter().map(|s| s.image.clone()).collect();
        for (out, s) in det.raw(&images).iter().zip(&scenes) {
            let truths: Vec<_> = s
                .objects
                .iter()
                .map(models::detector::data::Truth::from)
                .collect();
            let ps = peaks(out, grid, -6.0);
            let labels = label_peaks(&ps, &truths);
            let mut order: Vec<usize> = (0..ps.len()).collect();
            order.sort_by(|&a, &b| ps[b].logit.total_cmp(&ps[a].logit));
            for (k, (_, hit)) in order.iter().zip(labels) {
                let p = &ps[*k];
                let sc = cal.apply(p.logit);
                if sc < 0.05 {
                    continue;
                }
                let sz = size(&p.bbox);
                let b = edges
                    .windows(2)
                    .position(|w| sz >= w[0] && sz < w[1])
                    .unwrap_or(0);
                let bin = ((sc * 10.0) as usize).min(9);
                table[b][bin].0 += 1;
                table[b][bin].1 += hit as usize;
            }
        }
    }
    println!("size bucket | score bins 0.0..1.0: matched/count");
    for (b, row) in table.iter().enumerate() {
        let cells: Vec<String> = row.iter().map(|(c, m)| format!("{m}/{c}")).collect();
        println!(
            "{:>4}-{:<4} {}",
            edges[b],
            edges[b + 1].min(99.0),
            cells.join("  ")
        );
    }
    // Counting prompts of the suite: the score of each true object's best detection.
    let suite = Suite::official();
    let mut hist = [(0usize, 0usize); 10];
    for p in suite
        .prompts
        .iter()
        .filter(|p| p.metadata.tag.as_str() == "counting")
    {
        let scenes: Vec<_> = (0..4)
            .map(|i| world::dataset::suite_scene(p, 1234, i, Default::default()))
            .collect::<Result<_, _>>()?;
        let images: Vec<_> = scenes.iter().map(|s| s.image.clone()).collect();
        for (out, s) in det.raw(&images).iter().zip(&scenes) {
            let ps = peaks(out, grid, -6.0);
            for o in &s.objects {
                let best = ps
                    .iter()
                    .filter(|q| {
                        q.class == o.class.index()
                            && models::detector::training::iou(&q.bbox, &o.bbox) >= 0.5
                    })
                    .map(|q| cal.apply(q.logit))
                    .fold(0.0f32, f32::max);
                let bin = ((best * 10.0) as usize).min(9);
                let small = ((o.bbox[2] - o.bbox[0]) * (o.bbox[3] - o.bbox[1])).sqrt() < 13.0;
                if small {
                    hist[bin].0 += 1
                } else {
                    hist[bin].1 += 1
                }
            }
        }
    }
    println!("counting suite: true objects' best score per bin (small<13px, large)");
    for (i, (s, l)) in hist.iter().enumerate() {
        println!(
            "{:.1}-{:.1}: {s} {l}",
            i as f32 / 10.0,
            (i + 1) as f32 / 10.0
        );
    }
    Ok(())
}
