//! Generator costs on the CPU with the shipped base generator: one sampling step (the CFG pair in
//! one forward) at the batch sizes the strategies use, the tokenizer decode a judge needs after
//! every step, and the masked transformer on flex against ndarray.
//! `cargo bench -p benchmarks --bench generator`; throughput is reported in candidate-steps/s.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harness::generator::Generator;

fn generator(c: &mut Criterion) {
    let device = Default::default();
    let gen = models::embedded::generator::<models::Cpu>("base", &device)
        .expect("embedded generator loads");
    let mut group = c.benchmark_group("generator");
    group.sample_size(10);
    // 1 image; 4 images of one prompt (baseline); 20 candidates (ORM/PARM, N = 20);
    // 8 prompts × 20 candidates (the run loop's default batch).
    for batch in [1usize, 4, 20, 160] {
        let start: Vec<_> = (0..batch)
            .map(|i| gen.start("a photo of a red dog left of a cake", i as u64, 18))
            .collect();
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("step/batch{batch}"), |b| {
            b.iter(|| {
                let mut t = start.clone();
                gen.step(&mut t).expect("step");
            })
        });
        let mut done = start.clone();
        gen.run_to_end(&mut done).expect("generation");
        group.bench_function(format!("decode/batch{batch}"), |b| {
            b.iter(|| gen.decode(&done).expect("decode"))
        });
    }
    group.finish();
}

criterion_group!(benches, generator);
criterion_main!(benches);
