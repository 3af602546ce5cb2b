//! Diagnostic: how well a trained generator predicts masked tokens at fixed mask ratios, beside
//! a "copy the left neighbour" baseline (docs/generator.md). Usage:
//! `cargo run --release -p models --example probe_generator -- DIR [SAMPLES]`, DIR holding
//! generator.json/.bpk and tokenizer/ (tokenizer.json/.bpk) or a TOKENIZER_DIR third argument.
use burn::prelude::*;
use harness::rng::Rng;
use models::maskgit::data::{prompt_ids, push_masked, to_device, HostBatch};
use models::maskgit::BurnGenerator;
use std::path::Path;
use world::dataset::{DatasetKind, SampleSource};

type B = models::Cpu;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(&args[1]);
    let samples: usize = args.get(2).map_or(64, |s| s.parse().unwrap_or(64));
    let device = Default::default();
    let tok_dir = args
        .get(3)
        .map_or_else(|| dir.join("tokenizer"), std::path::PathBuf::from);
    let g = BurnGenerator::<B>::load_dir(dir, &tok_dir, &device)?;
    // Held-out scenes in the world style the generator's tokenizer was trained on.
    let src = SampleSource::styled(DatasetKind::Prompts, 999, g.tokenizer.meta.train.style);
    let scenes: Vec<_> = (0..samples)
        .map(|i| src.sample(i))
        .collect::<Result<_, _>>()?;
    let images: Vec<_> = scenes.iter().map(|s| s.scene.image.clone()).collect();
    let grids = g.tokenizer.encode(&images);
    let n = grids[0].len();
    let side = (n as f64).sqrt() as usize;
    let distinct: f64 = grids
        .iter()
        .map(|gr| {
            let mut v = gr.clone();
            v.sort();
            v.dedup();
            v.len() as f64
        })
        .sum::<f64>()
        / samples as f64;
    println!("tokens/image {n}, distinct codes per image {distinct:.1}");
    for ratio in [0.1, 0.3, 0.5, 0.7, 0.9, 1.0] {
        let mut h = HostBatch {
            text: Vec::new(),
            input: Vec::new(),
            targets: Vec::new(),
            masked: Vec::new(),
        };
        let (mut copy_hit, mut copy_n) = (0, 0);
        for (i, (s, gr)) in scenes.iter().zip(&grids).enumerate() {
            let mut rng = Rng::derived(5, &[i as u64, (ratio * 100.0) as u64]);
            let k = ((ratio * n as f64).ceil() as usize).clamp(1, n);
            let mut order: Vec<usize> = (0..n).collect();
            rng.shuffle(&mut order);
            let mut mask = vec![false; n];
            order[..k].iter().for_each(|&j| mask[j] = true);
            for j in 0..n {
                if mask[j] && j % side > 0 && !mask[j - 1] {
                    copy_n += 1;
                    copy_hit += usize::from(gr[j] == gr[j - 1]);
                }
            }
            let prompt = s.metadata.as_ref().map_or("", |m| m.prompt.as_str());
            push_masked(
                &mut h,
                &prompt_ids(prompt)?,
                gr,
                &mask,
                g.config().mask_id(),
            );
        }
        let (text, input, targets, masked) = to_device::<B>(h, g.config().text_len, &device);
        let logp = burn::tensor::activation::log_softmax(g.net.forward(text, input), 2);
        let [b, n2, _] = logp.dims();
        let picked = logp
            .clone()
            .gather(2, targets.clone().reshape([b, n2, 1]))
            .reshape([b, n2]);
        let count = masked.clone().sum().into_scalar().elem::<f32>();
        let ce = -(picked * masked.clone()).sum().into_scalar().elem::<f32>() / count;
        let hit = logp.argmax(2).reshape([b, n2]).equal(targets).float() * masked;
        let acc = hit.sum().into_scalar().elem::<f32>() / count;
        println!(
            "mask {ratio:.1}: CE {ce:.3} acc {acc:.3}; copy-left baseline acc {:.3} ({copy_n} tokens)",
            copy_hit as f64 / copy_n.max(1) as f64
        );
    }
    Ok(())
}
