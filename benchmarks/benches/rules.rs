//! The GenEval rule engine: all 553 official prompts judged against random detections.

use benchmarks::random_detections;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness::rules::judge;
use harness::RuleConfig;
use std::hint::black_box;

fn rules(c: &mut Criterion) {
    let cfg = RuleConfig::default();
    let mut group = c.benchmark_group("rules");
    for per_image in [8usize, 32] {
        let data = random_detections(1234, per_image);
        group.throughput(Throughput::Elements(data.len() as u64));
        group.bench_function(format!("judge_553_prompts_{per_image}_detections"), |b| {
            b.iter(|| {
                let mut correct = 0usize;
                for (meta, dets) in &data {
                    let j = judge(black_box(meta), black_box(dets), &cfg).expect("colours set");
                    correct += j.correct as usize;
                }
                correct
            })
        });
    }
    group.finish();
}

criterion_group!(benches, rules);
criterion_main!(benches);
