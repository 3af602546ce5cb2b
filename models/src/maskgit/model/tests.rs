use super::*;
use crate::Cpu;

/// `row_logits` slices are the full forward's logits at the chosen rows, grouped or not.
#[test]
fn row_logits_are_the_forward_at_the_chosen_rows() {
    for group in [1, 2] {
        let cfg = MaskGitConfig {
            text_len: 4,
            text_vocab: 10,
            image_tokens: 16,
            codebook: 8,
            d_model: 16,
            heads: 2,
            layers: 1,
            d_ff: 32,
            group,
            ..MaskGitConfig::default()
        };
        let dev = Default::default();
        let net = cfg.init::<Cpu>(&dev);
        let text = Tensor::<Cpu, 2, Int>::from_data(
            TensorData::new((0..12).map(|v| v % 10).collect::<Vec<i64>>(), [3, 4]),
            &dev,
        );
        let image = Tensor::<Cpu, 2, Int>::from_data(
            TensorData::new((0..48).map(|v| (v * 5) % 9).collect::<Vec<i64>>(), [3, 16]),
            &dev,
        );
        let full: Vec<f32> = net
            .forward(text.clone(), image.clone())
            .into_data()
            .to_vec()
            .unwrap();
        let rows = [0usize, 5, 17, 18, 40, 47];
        let sel = Tensor::<Cpu, 1, Int>::from_data(
            TensorData::new(rows.iter().map(|&r| r as i64).collect::<Vec<_>>(), [6]),
            &dev,
        );
        let picked = net.row_logits(text, image, sel);
        let got: Vec<f32> = Tensor::cat(vec![picked.slice(0, 2), picked.slice(2, 4)], 0)
            .into_data()
            .to_vec()
            .unwrap();
        for (i, &r) in rows.iter().enumerate() {
            for k in 0..8 {
                let (a, b) = (got[i * 8 + k], full[r * 8 + k]);
                assert!(
                    (a - b).abs() < 1e-5,
                    "group {group} row {r} code {k}: {a} vs {b}"
                );
            }
        }
    }
}

#[test]
fn sincos_positions_have_token_scale_and_make_neighbours_alike() {
    let (text, side, d) = (16, 8, 128);
    let t = sincos_table(text, side, d);
    let row = |k: usize| &t[(text + k) * d..(text + k + 1) * d];
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let var = dot(row(9), row(9)) / d as f32;
    assert!((var - 1.0).abs() < 0.05, "per-dimension variance {var}");
    // (1,1) is closer to (1,2) and (2,1) than to (5,6).
    let (k, right, down, far) = (9, 10, 17, 46);
    assert!(dot(row(k), row(right)) > dot(row(k), row(far)));
    assert!(dot(row(k), row(down)) > dot(row(k), row(far)));
    // A shift by one column looks the same everywhere (translation structure).
    let a = dot(row(9), row(10));
    let b = dot(row(36), row(37));
    assert!((a - b).abs() < 1e-3);
    let net = MaskGitConfig {
        image_tokens: 64,
        pos_init: PosInit::Sincos,
        ..MaskGitConfig::default()
    }
    .init::<crate::Cpu>(&Default::default());
    let pos = net.pos.val().into_data().to_vec::<f32>().unwrap();
    assert_eq!(pos, sincos_table(net.text_len, 8, 128));
}

/// The network must be able to read visible image tokens: on sequences whose 16 tokens all
/// carry one random code, half of them masked, it has to copy a visible code into the masked
/// places (chance: 1 in 32). Both position starts must learn it within 150 steps.
#[test]
fn the_network_learns_to_copy_visible_tokens() {
    use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
    use harness::rng::Rng;
    type AB = burn::backend::Autodiff<crate::Cpu>;
    let device = Default::default();
    for pos_init in [PosInit::Normal, PosInit::Sincos] {
        let cfg = MaskGitConfig {
            text_len: 4,
            text_vocab: 8,
            image_tokens: 16,
            codebook: 32,
            d_model: 32,
            heads: 2,
            layers: 2,
            d_ff: 64,
            pos_init,
            ..MaskGitConfig::default()
        };
        let mut model: MaskGit<AB> =
            crate::seeded_init::<AB, _>(&device, 7, || cfg.init_materialized(&device));
        let mut optim = AdamWConfig::new().init::<AB, MaskGit<AB>>();
        let batch = |step: u64| {
            let b = 32;
            let (mut input, mut target, mut masked) = (vec![], vec![], vec![]);
            for i in 0..b {
                let mut rng = Rng::derived(11, &[step, i]);
                let code = rng.index(32) as i64;
                let mut order: Vec<usize> = (0..16).collect();
                rng.shuffle(&mut order);
                let mut m = vec![0f32; 16];
                order[..8].iter().for_each(|&k| m[k] = 1.0);
                for &mk in &m {
                    input.push(if mk > 0.0 { 32 } else { code });
                    target.push(code);
                }
                masked.extend(m);
            }
            (
                Tensor::<AB, 2, Int>::zeros([b as usize, 4], &device),
                Tensor::<AB, 2, Int>::from_data(TensorData::new(input, [b as usize, 16]), &device),
                Tensor::<AB, 2, Int>::from_data(TensorData::new(target, [b as usize, 16]), &device),
                Tensor::<AB, 2>::from_data(TensorData::new(masked, [b as usize, 16]), &device),
            )
        };
        let mut acc = 0.0;
        for step in 0..150u64 {
            let (text, input, target, masked) = batch(step);
            let logp = burn::tensor::activation::log_softmax(model.forward(text, input), 2);
            let picked = logp
                .clone()
                .gather(2, target.clone().reshape([32, 16, 1]))
                .reshape([32, 16]);
            let loss = -(picked * masked.clone()).sum() / masked.clone().sum();
            let hit = logp
                .detach()
                .argmax(2)
                .reshape([32, 16])
                .equal(target)
                .float()
                * masked;
            acc = hit.sum().into_scalar().elem::<f32>() / (32.0 * 8.0);
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(3e-3, model, grads);
        }
        assert!(
            acc > 0.9,
            "{pos_init:?}: copy accuracy {acc} after 150 steps"
        );
    }
}

/// A one-layer network over a 4×4 grid of 8 codes in 2×2 groups.
fn grouped_4x4() -> MaskGitConfig {
    MaskGitConfig {
        image_tokens: 16,
        codebook: 8,
        d_model: 8,
        heads: 2,
        layers: 1,
        d_ff: 8,
        group: 2,
        ..MaskGitConfig::default()
    }
}

#[test]
fn groups_tile_the_grid_in_squares() {
    assert_eq!(
        group_of(16, 2),
        vec![0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]
    );
    assert_eq!(
        group_major(16, 2),
        vec![0, 1, 4, 5, 2, 3, 6, 7, 8, 9, 12, 13, 10, 11, 14, 15]
    );
    assert_eq!(group_of(16, 1), (0..16).collect::<Vec<_>>());
    let bad = MaskGitConfig {
        image_tokens: 16,
        group: 3,
        ..MaskGitConfig::default()
    };
    assert!(bad.validate().unwrap_err().contains("net.group (3)"));
}

/// The head's `g²·codebook` outputs of a position must come back on the raster tokens of its
/// group, place by place: with a zero head and a bias that favours code k at place k, every
/// token's argmax is its place in its 2×2 group.
#[test]
fn grouped_outputs_land_on_their_raster_tokens() {
    let cfg = grouped_4x4();
    let device = Default::default();
    let mut net = cfg.init::<Cpu>(&device);
    let gg = 4;
    let mut bias = vec![0f32; gg * 8];
    for k in 0..gg {
        bias[k * 8 + k] = 10.0;
    }
    net.head.weight = Param::from_tensor(Tensor::zeros([8, gg * 8], &device));
    net.head.bias = Some(Param::from_tensor(Tensor::from_data(
        TensorData::new(bias, [gg * 8]),
        &device,
    )));
    let text = Tensor::<Cpu, 2, Int>::zeros([2, cfg.text_len], &device);
    let image = Tensor::<Cpu, 2, Int>::full([2, 16], cfg.mask_id() as i64, &device);
    let out = net.forward(text, image);
    assert_eq!(out.dims(), [2, 16, 8]);
    let arg: Vec<i64> = out
        .argmax(2)
        .reshape([32])
        .into_data()
        .convert::<i64>()
        .to_vec()
        .unwrap();
    let place: Vec<i64> = (0..16).map(|r| ((r / 4 % 2) * 2 + r % 2) as i64).collect();
    assert_eq!(arg[..16], place[..]);
    assert_eq!(arg[16..], place[..]);
}

/// Codes at different places of a group use different tables: swapping two codes inside a
/// group changes the output (one shared table would not notice), and the grouped sequence
/// has one position per group.
#[test]
fn grouped_embedding_tells_places_apart() {
    let cfg = grouped_4x4();
    let device = Default::default();
    let net = crate::seeded_init::<Cpu, _>(&device, 4, || cfg.init_materialized::<Cpu>(&device));
    assert_eq!(net.pos.val().dims(), [cfg.text_len + 4, 8]);
    let text = Tensor::<Cpu, 2, Int>::zeros([1, cfg.text_len], &device);
    let mut a: Vec<i64> = (0..16).map(|i| (i % 8) as i64).collect();
    let run = |ids: &Vec<i64>| -> Vec<f32> {
        let image =
            Tensor::<Cpu, 2, Int>::from_data(TensorData::new(ids.clone(), [1, 16]), &device);
        net.forward(text.clone(), image)
            .into_data()
            .convert::<f32>()
            .to_vec()
            .unwrap()
    };
    let base = run(&a);
    a.swap(0, 1); // both in group 0 (places 0 and 1)
    assert_ne!(run(&a), base);
}
