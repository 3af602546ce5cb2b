//! Judge costs on the CPU with the shipped zero-shot judge (which reads the frozen annotator's
//! maps): one call at the batch sizes the strategies use — 1 request, the 20 candidates of one
//! prompt (ORM/PARM, N = 20), and 8 prompts × 20 (the run loop's default batch) — for the final
//! task and for reflection (clause verdicts). `cargo bench -p benchmarks --bench judge`;
//! throughput in requests/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness::judge::{Judge, JudgeRequest, JudgeTask};

fn judge(c: &mut Criterion) {
    let device = Default::default();
    let judge =
        models::embedded::judge::<models::Cpu>("zero-shot", &device).expect("embedded judge loads");
    let suite = harness::Suite::official();
    let scenes: Vec<_> = (0..160).map(|i| world::random_scene(i, 2)).collect();
    let mut group = c.benchmark_group("judge");
    group.sample_size(10);
    for task in [JudgeTask::Final, JudgeTask::Reflect] {
        for batch in [1usize, 20, 160] {
            let requests: Vec<JudgeRequest<'_>> = scenes[..batch]
                .iter()
                .enumerate()
                .map(|(i, s)| JudgeRequest {
                    task,
                    image: &s.image,
                    metadata: &suite.prompts[(i * 7) % suite.prompts.len()].metadata,
                    step: None,
                })
                .collect();
            group.throughput(Throughput::Elements(batch as u64));
            group.bench_function(format!("{}/batch{batch}", task.as_str()), |b| {
                b.iter(|| judge.judge(&requests).expect("judge"))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, judge);
criterion_main!(benches);
