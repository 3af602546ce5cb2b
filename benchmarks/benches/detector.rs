//! Detector costs on the CPU: one 3×3 convolution forward + backward on burn's ndarray and flex
//! backends (why evalcot trains on flex), one detector training step, and batched inference with
//! the embedded evaluation detector. `cargo bench -p benchmarks --bench detector`.

use burn::backend::{Autodiff, Flex, NdArray};
use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use harness::detector::Detector;

fn conv_step<B: AutodiffBackend>(group: &mut BenchmarkGroup<WallTime>, name: &str) {
    let device = Default::default();
    let (b, hw, ch) = (32, 16, 48);
    let x = Tensor::<B, 4>::random(
        [b, ch, hw, hw],
        burn::tensor::Distribution::Normal(0.0, 1.0),
        &device,
    );
    let conv = Conv2dConfig::new([ch, ch], [3, 3])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init::<B>(&device);
    group.bench_function(format!("conv3x3_b32_16x16_c48_fwd_bwd/{name}"), |bench| {
        bench.iter(|| {
            let _ = conv.forward(x.clone()).sum().backward();
        })
    });
}

fn detector(c: &mut Criterion) {
    let mut group = c.benchmark_group("detector");
    group.sample_size(10);
    conv_step::<Autodiff<NdArray<f32>>>(&mut group, "ndarray");
    conv_step::<Autodiff<Flex>>(&mut group, "flex");
    let device = Default::default();
    let det = models::embedded::evaluation_detector::<models::Cpu>(&device)
        .expect("embedded detector loads");
    let images: Vec<_> = (0..64).map(|i| world::random_scene(i, 3).image).collect();
    group.bench_function("inference_batch64", |b| {
        b.iter(|| det.detect(&images).expect("detects"))
    });
    group.finish();
}

criterion_group!(benches, detector);
criterion_main!(benches);
