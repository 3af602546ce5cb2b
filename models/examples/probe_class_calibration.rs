//! Diagnostic: would a per-class calibration (Platt per class, shrunk toward the shared fit) make
//! the evaluation detector's scores better probabilities, and what would it do to counting?
//! Fits on held-out renders of the training mix (never the GenEval prompts), checks reliability
//! on other held-out renders, then reports the ground-truth suite's counting verdicts.
//! Usage: `cargo run --release -p models --example probe_class_calibration -- [FIT] [CHECK] [LAMBDA]`.
use harness::rng::derive_seed;
use harness::Suite;
use models::detector::data::{peaks, Truth};
use models::detector::model::HEAT;
use models::detector::training::{label_peaks, platt_with_prior};
use rayon::prelude::*;
use world::dataset::{DatasetKind, SampleSource};

type B = models::Cpu;

/// (class, logit, hit) of every peak of `n` held-out training-mix scenes drawn from `seed`.
fn held_out(
    det: &models::detector::inference::BurnDetector<B>,
    seed: u64,
    n: usize,
) -> Vec<(usize, f32, bool)> {
    let prompts = SampleSource::new(DatasetKind::Prompts, seed);
    let random = SampleSource::new(DatasetKind::Detector, derive_seed(seed, &[1]));
    let mut out = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(128) {
        let items: Vec<_> = chunk
            .par_iter()
            .map(|&i| {
                let src = if i % 2 == 0 { &prompts } else { &random };
                src.sample(i).expect("held-out scene")
            })
            .collect();
        let images: Vec<_> = items.iter().map(|s| s.scene.image.clone()).collect();
        for (o, s) in det.raw(&images).iter().zip(&items) {
            let truths: Vec<Truth> = s.scene.objects.iter().map(Truth::from).collect();
            let ps = peaks(o, det.grid(), -6.0);
            let mut order: Vec<usize> = (0..ps.len()).collect();
            order.sort_by(|&a, &b| ps[b].logit.total_cmp(&ps[a].logit));
            for (k, (logit, hit)) in order.iter().zip(label_peaks(&ps, &truths)) {
                out.push((ps[*k].class, logit, hit));
            }
        }
    }
    out
}

fn reliability(name: &str, rows: &[(usize, f32, bool)], cal: &dyn Fn(usize, f32) -> f32) {
    let mut bins = [(0usize, 0usize, 0.0f64); 10];
    let mut brier = 0.0;
    for &(c, l, hit) in rows {
        let p = cal(c, l);
        brier += (p as f64 - hit as u8 as f64).powi(2);
        if p < 0.05 {
            continue;
        }
        let k = ((p * 10.0) as usize).min(9);
        bins[k].0 += 1;
        bins[k].1 += hit as usize;
        bins[k].2 += p as f64;
    }
    println!("{name}: Brier {:.5}", brier / rows.len() as f64);
    for (k, (n, m, s)) in bins.iter().enumerate() {
        if *n > 0 {
            println!(
                "  {:.1}-{:.1}: {n:>6} mean {:.3} matched {:.3}",
                k as f64 / 10.0,
                (k + 1) as f64 / 10.0,
                s / *n as f64,
                *m as f64 / *n as f64
            );
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let arg = |i: usize, d: f64| {
        std::env::args()
            .nth(i)
            .and_then(|s| s.parse().ok())
            .unwrap_or(d)
    };
    let (fit_n, check_n, lambda) = (
        arg(1, 8000.0) as usize,
        arg(2, 4000.0) as usize,
        arg(3, 30.0),
    );
    let device = Default::default();
    let det = models::embedded::evaluation_detector::<B>(&device)?;
    let shared = det.meta.calibration;
    let fit = held_out(&det, 5150, fit_n);
    let mut per_class = vec![shared; HEAT];
    for (c, cal) in per_class.iter_mut().enumerate() {
        let s: Vec<(f32, bool)> = fit
            .iter()
            .filter(|r| r.0 == c)
            .map(|r| (r.1, r.2))
            .collect();
        *cal = platt_with_prior(&s, shared, lambda);
    }
    let check = held_out(&det, 6160, check_n);
    reliability("shared", &check, &|_, l| shared.apply(l));
    reliability("per class", &check, &|c, l| per_class[c].apply(l));
    // Counting verdicts of the ground-truth suite: exactly N detections above 0.9 of the class.
    let suite = Suite::official();
    let (mut ok_shared, mut ok_class, mut total) = (0, 0, 0);
    for p in suite
        .prompts
        .iter()
        .filter(|p| p.metadata.tag.as_str() == "counting")
    {
        let inc = &p.metadata.include[0];
        let scenes: Vec<_> = (0..4)
            .map(|i| world::dataset::suite_scene(p, 1234, i, Default::default()))
            .collect::<Result<_, _>>()?;
        let images: Vec<_> = scenes.iter().map(|s| s.image.clone()).collect();
        for o in det.raw(&images) {
            let ps = peaks(&o, det.grid(), -6.0);
            let class = inc.class.index();
            let count = |cal: &dyn Fn(f32) -> f32| {
                ps.iter()
                    .filter(|q| q.class == class && cal(q.logit) > 0.9)
                    .count()
            };
            total += 1;
            ok_shared += (count(&|l| shared.apply(l)) == inc.count as usize) as usize;
            ok_class += (count(&|l| per_class[class].apply(l)) == inc.count as usize) as usize;
        }
    }
    println!("counting: shared {ok_shared}/{total}, per class {ok_class}/{total}");
    let mut moved: Vec<(f64, usize)> = per_class
        .iter()
        .enumerate()
        .map(|(c, k)| ((k.apply(2.0) - shared.apply(2.0)) as f64, c))
        .collect();
    moved.sort_by(|a, b| a.0.total_cmp(&b.0));
    println!(
        "p(logit 2) shift, lowest: {:?}",
        &moved[..5]
            .iter()
            .map(|(d, c)| (
                harness::vocab::class_names()[*c],
                (d * 1000.0).round() / 1000.0
            ))
            .collect::<Vec<_>>()
    );
    println!(
        "highest: {:?}",
        &moved[moved.len() - 5..]
            .iter()
            .map(|(d, c)| (
                harness::vocab::class_names()[*c],
                (d * 1000.0).round() / 1000.0
            ))
            .collect::<Vec<_>>()
    );
    Ok(())
}
