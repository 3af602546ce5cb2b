//! evalcot's neural networks, written in burn and trained on the embedded world. Library users
//! see them through the harness traits (`Detector`, later `Generator` and `Judge`).

pub mod ar;
pub mod checkpoint;
pub mod detector;
pub mod embedded;
pub mod evidence;
pub mod judge;
pub mod maskgit;
pub mod open;
pub mod store;
pub mod train_loop;
pub mod vq;

/// The CPU backend: burn-flex (f32). burn 0.21's ndarray backend runs a 3×3 convolution's
/// forward + backward 5–18× slower than flex on this machine (docs/performance.md), which
/// would put training out of reach on two cores; ndarray stays compiled for comparison.
pub type Cpu = burn::backend::Flex;
/// The CPU backend with autodiff, for training.
pub type CpuTrain = burn::backend::Autodiff<Cpu>;
/// burn's CUDA backend (f32), for `--device cuda` (cargo feature `cuda`).
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda;
/// The CUDA backend with autodiff, for training.
#[cfg(feature = "cuda")]
pub type GpuTrain = burn::backend::Autodiff<Gpu>;
/// burn's CUDA backend in half precision (IEEE f16), for inference (`--device cuda-f16`).
#[cfg(feature = "cuda")]
pub type GpuF16 = burn::backend::Cuda<burn::tensor::f16>;
/// burn's CUDA backend in bfloat16, for inference (`--device cuda-bf16`).
#[cfg(feature = "cuda")]
pub type GpuBf16 = burn::backend::Cuda<burn::tensor::bf16>;

pub use store::ModelError;

/// Runs `init` right after seeding the backend's global RNG, holding a process-wide lock so that
/// concurrent initialisations (tests, parallel tools) cannot interleave their draws: the same seed
/// always gives the same weights. burn initialises parameters lazily, so `init` must also use
/// them (see `DetectorNetConfig::init_materialized`).
pub fn seeded_init<B: burn::prelude::Backend, T>(
    device: &B::Device,
    seed: u64,
    init: impl FnOnce() -> T,
) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    B::seed(device, seed);
    init()
}

/// Tiny randomly initialised networks over the shipped tokenizer's codes, for unit tests.
#[cfg(test)]
pub(crate) mod testutil {
    use crate::maskgit::MaskGitConfig;
    use crate::vq::VqTokenizer;
    use crate::Cpu;

    /// `(architecture, weights as shipped (half precision), the shipped tokenizer)` of a
    /// 16-wide network of `layers` layers, bidirectional or `causal`, drawn from `seed`.
    pub fn tiny_net(
        causal: bool,
        layers: usize,
        seed: u64,
        group: usize,
    ) -> (MaskGitConfig, Vec<u8>, VqTokenizer<Cpu>) {
        let device = Default::default();
        let tokenizer = crate::embedded::tokenizer::<Cpu>(&device).expect("shipped tokenizer");
        let net = MaskGitConfig {
            d_model: 16,
            heads: 2,
            layers,
            d_ff: 32,
            group,
            ..MaskGitConfig::default()
        };
        let model = crate::seeded_init::<Cpu, _>(&device, seed, || {
            net.init_materialized_family::<Cpu>(causal, &device)
        });
        let bytes = crate::store::module_to_bytes(&model, true, "tiny").expect("serialises");
        (net, bytes, tokenizer)
    }

    /// A one-layer masked-token generator `name` on [`tiny_net`] (seed 3) with token groups of
    /// side `group` and `steps` sampling steps.
    pub fn tiny_generator(
        name: &str,
        group: usize,
        steps: usize,
    ) -> crate::maskgit::BurnGenerator<Cpu> {
        use crate::maskgit::{BurnGenerator, GeneratorMeta, SamplingConfig, GENERATOR_FORMAT};
        let (net, bytes, tokenizer) = tiny_net(false, 1, 3, group);
        let meta = GeneratorMeta {
            format: GENERATOR_FORMAT.into(),
            name: name.into(),
            net,
            tokenizer: tokenizer.meta.name.clone(),
            sampling: SamplingConfig {
                steps,
                ..SamplingConfig::default()
            },
            train: serde_json::Value::Null,
        };
        BurnGenerator::from_parts(meta, bytes, tokenizer, name, &Default::default())
            .expect("tiny generator loads")
    }
}
