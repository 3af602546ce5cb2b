//! The burn side of the PyTorch-twin comparison (`benchmarks/twin/compare.sh`).
//!
//! `twin export DIR [--generator NAME|FOLDER]` writes the generator's architecture
//! (`config.json`), its weights as safetensors in f32 under burn's parameter paths
//! (`weights.safetensors`), and a probe — two inputs and the logits burn computes for them
//! (`probe.json`) — so that the twin can prove it is the same function before it is timed.
//!
//! `twin bench [--generator …] [--batch B] [--seconds S]` times the generator's forward pass on
//! the CFG pair of B images (2B rows) and prints one JSON line: rows per second and images per
//! second at the generator's T steps.

use burn::prelude::*;
use burn_store::ModuleSnapshot;
use models::Cpu;
use std::path::PathBuf;
use std::time::Instant;

type CpuDevice = burn::backend::flex::FlexDevice;

fn main() {
    harness::alloc::tune(); // as in the evalcot binary: the burn side runs as evalcot runs it
    if let Err(e) = run() {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let generator = flag(&args, "--generator").unwrap_or_else(|| "base".into());
    let device = Default::default();
    let gen = load(&generator, &device)?;
    match args.first().map(String::as_str) {
        Some("export") => {
            let dir = PathBuf::from(args.get(1).ok_or("usage: twin export DIR")?);
            export(&gen, &dir, &device)
        }
        Some("bench") => {
            let backend = flag(&args, "--backend").unwrap_or_else(|| "flex".into());
            let batch: usize = flag(&args, "--batch")
                .map_or(Ok(64), |b| b.parse())
                .map_err(|e| format!("--batch: {e}"))?;
            let seconds: f64 = flag(&args, "--seconds")
                .map_or(Ok(5.0), |b| b.parse())
                .map_err(|e| format!("--seconds: {e}"))?;
            let g = generator.as_str();
            match backend.as_str() {
                "flex" => bench::<Cpu>(&gen, "flex (CPU)", "f32", batch, seconds, &device),
                "ndarray" => {
                    bench_named::<burn::backend::NdArray>(g, "ndarray (CPU)", "f32", batch, seconds)
                }
                #[cfg(feature = "cuda")]
                "cuda" => bench_named::<models::Gpu>(g, "cuda", "f32", batch, seconds),
                #[cfg(feature = "cuda")]
                "cuda-f16" => bench_named::<models::GpuF16>(g, "cuda", "f16", batch, seconds),
                #[cfg(feature = "cuda")]
                "cuda-bf16" => bench_named::<models::GpuBf16>(g, "cuda", "bf16", batch, seconds),
                other => Err(format!(
                    "--backend {other}: expected flex, ndarray{}",
                    if cfg!(feature = "cuda") {
                        ", cuda, cuda-f16 or cuda-bf16"
                    } else {
                        " (cuda, cuda-f16 and cuda-bf16 need the `cuda` feature)"
                    }
                )),
            }
        }
        _ => Err(
            "usage: twin export DIR | twin bench [--batch B] [--seconds S] [--generator G]".into(),
        ),
    }
}

fn load(name: &str, device: &CpuDevice) -> Result<models::maskgit::BurnGenerator<Cpu>, String> {
    load_on::<Cpu>(name, device)
}

fn load_on<B: Backend>(
    name: &str,
    device: &B::Device,
) -> Result<models::maskgit::BurnGenerator<B>, String> {
    let dir = std::path::Path::new(name);
    let r = if dir.join("generator.json").exists() {
        models::maskgit::BurnGenerator::load_dir(dir, &dir.join("tokenizer"), device)
    } else {
        models::embedded::generator(name, device)
    };
    r.map_err(|e| e.to_string())
}

/// Two inputs: a prompt with all image tokens masked, and one with a pattern of codes and masks.
fn probe_inputs(cfg: &models::maskgit::MaskGitConfig) -> Result<(Vec<i64>, Vec<i64>), String> {
    let mut text = models::maskgit::data::prompt_ids("a photo of a red dog left of a cake")?;
    text.extend(models::maskgit::data::prompt_ids("")?);
    let n = cfg.image_tokens;
    let mut image = vec![cfg.mask_id() as i64; n];
    image.extend((0..n).map(|i| {
        if i % 3 == 0 {
            cfg.mask_id() as i64
        } else {
            ((i * 37) % cfg.codebook) as i64
        }
    }));
    Ok((text, image))
}

fn forward<B: Backend>(
    gen: &models::maskgit::BurnGenerator<B>,
    text: Vec<i64>,
    image: Vec<i64>,
    rows: usize,
    device: &B::Device,
) -> Tensor<B, 3> {
    let cfg = gen.config();
    let text = Tensor::<B, 2, Int>::from_data(TensorData::new(text, [rows, cfg.text_len]), device);
    let image =
        Tensor::<B, 2, Int>::from_data(TensorData::new(image, [rows, cfg.image_tokens]), device);
    gen.net.forward(text, image)
}

fn export(
    gen: &models::maskgit::BurnGenerator<Cpu>,
    dir: &std::path::Path,
    device: &CpuDevice,
) -> Result<(), String> {
    if gen.config().group != 1 {
        return Err(format!(
            "generator {} groups tokens (net.group {}); twin.py rebuilds ungrouped networks only",
            gen.meta.name,
            gen.config().group
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    // safetensors: 8-byte little-endian header length, JSON header, raw little-endian data.
    let mut header = serde_json::Map::new();
    let mut data: Vec<u8> = Vec::new();
    for snap in gen.net.collect(None, None, true) {
        let values: Vec<f32> = snap
            .to_data()
            .map_err(|e| format!("{}: {e:?}", snap.full_path()))?
            .convert::<f32>()
            .to_vec()
            .map_err(|e| format!("{}: {e:?}", snap.full_path()))?;
        let start = data.len();
        for v in &values {
            data.extend_from_slice(&v.to_le_bytes());
        }
        header.insert(
            snap.full_path(),
            serde_json::json!({"dtype": "F32", "shape": snap.shape.to_vec(), "data_offsets": [start, data.len()]}),
        );
    }
    let header = serde_json::Value::Object(header).to_string();
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend_from_slice(header.as_bytes());
    file.extend_from_slice(&data);
    write(&dir.join("weights.safetensors"), &file)?;
    let cfg = gen.config();
    write(
        &dir.join("config.json"),
        serde_json::to_string_pretty(
            &serde_json::json!({"net": cfg, "sampling": gen.sampling, "name": gen.meta.name}),
        )
        .map_err(|e| e.to_string())?
        .as_bytes(),
    )?;
    let (text, image) = probe_inputs(cfg)?;
    let logits: Vec<f32> = forward(gen, text.clone(), image.clone(), 2, device)
        .into_data()
        .convert::<f32>()
        .to_vec()
        .map_err(|e| format!("{e:?}"))?;
    write(
        &dir.join("probe.json"),
        serde_json::json!({"text": text, "image": image, "rows": 2, "logits": logits})
            .to_string()
            .as_bytes(),
    )?;
    eprintln!(
        "exported {} ({} bytes of weights) to {}",
        gen.meta.name,
        data.len(),
        dir.display()
    );
    Ok(())
}

fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), String> {
    harness::fsutil::write_atomic(path, bytes).map_err(|e| e.to_string())
}

/// [`bench`] on the generator `name` loaded on backend `B`'s default device.
fn bench_named<B: Backend>(
    name: &str,
    backend: &str,
    precision: &str,
    batch: usize,
    seconds: f64,
) -> Result<(), String> {
    let device = Default::default();
    let gen = load_on::<B>(name, &device)?;
    bench(&gen, backend, precision, batch, seconds, &device)
}

fn bench<B: Backend>(
    gen: &models::maskgit::BurnGenerator<B>,
    backend: &str,
    precision: &str,
    batch: usize,
    seconds: f64,
    device: &B::Device,
) -> Result<(), String> {
    let cfg = *gen.config();
    let rows = 2 * batch; // the CFG pair of each image
    let (text1, image1) = probe_inputs(&cfg)?;
    let text: Vec<i64> = (0..rows)
        .flat_map(|r| text1[(r % 2) * cfg.text_len..(r % 2 + 1) * cfg.text_len].to_vec())
        .collect();
    let image: Vec<i64> = (0..rows)
        .flat_map(|r| image1[(r % 2) * cfg.image_tokens..(r % 2 + 1) * cfg.image_tokens].to_vec())
        .collect();
    // Warm-up (on a GPU: kernel compilation and autotuning), then as many forwards as fit in
    // `seconds`. Each call waits for the device, as the twin's does (torch.cuda.synchronize),
    // but leaves the logits where they are: reading 2B × 64 × 8,192 floats back would time the
    // PCIe bus, which the twin does not pay.
    let call = || -> Result<(), String> {
        let logits = forward(gen, text.clone(), image.clone(), rows, device);
        B::sync(device).map_err(|e| format!("{backend}: {e:?}"))?;
        drop(logits);
        Ok(())
    };
    for _ in 0..3 {
        call()?;
    }
    let started = Instant::now();
    let mut calls = 0usize;
    while started.elapsed().as_secs_f64() < seconds || calls < 3 {
        call()?;
        calls += 1;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rows_per_s = (calls * rows) as f64 / elapsed;
    println!(
        "{}",
        serde_json::json!({
            "impl": "burn", "backend": backend, "precision": precision, "batch": batch,
            "rows_per_s": rows_per_s,
            "images_per_s": rows_per_s / (2.0 * gen.sampling.steps as f64),
            "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        })
    );
    Ok(())
}
