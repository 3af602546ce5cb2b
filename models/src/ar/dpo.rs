//! DPO of an AR generator over sequence log-probabilities.

use super::data::push_raster;
use super::inference::*;
use super::model::*;
use super::training::*;
use crate::maskgit::data::{prompt_ids, to_device, HostBatch};
use crate::maskgit::dpo::{dpo_loss, total_steps, DpoTrainConfig, Pair};
use crate::maskgit::MaskGit;
use crate::store::{module_from_bytes, ModelError};
use crate::train_loop::{LoopSpec, StepLoss};
use burn::module::AutodiffModule;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use std::path::Path;

/// DPO of an AR generator (`evalcot train dpo` with an AR `init`): the paper's loss over
/// sequence log-probabilities log π(image tokens | prompt) under teacher forcing, the conditional
/// model without guidance (as DPO for language models). Pairs come from the same judged samples
/// as the masked-token family's (`dpo::judge_samples`, `dpo::select_pairs`). The online reward
/// term is implemented for the masked-token family only and is refused here.
pub fn train_dpo<B: AutodiffBackend>(
    cfg: &DpoTrainConfig,
    pairs: &[Pair],
    init: &ArGenerator<B::InnerBackend>,
    reference: &ArGenerator<B::InnerBackend>,
    out: &Path,
    device: &B::Device,
    progress: &mut dyn FnMut(usize, usize, &[f64]),
) -> Result<ArMeta, ModelError> {
    let err = |m: String| ModelError::config("AR DPO", m);
    cfg.validate().map_err(err)?;
    if cfg.reward.is_some() {
        return Err(err(
            "reward: the online reward term is implemented for the masked-token family only".into(),
        ));
    }
    if pairs.is_empty() {
        return Err(err(
            "no preference pairs: every prompt's samples got the same verdict".into(),
        ));
    }
    let net_cfg = init.meta.net;
    if reference.meta.net != net_cfg {
        return Err(err(
            "the reference generator has another architecture than init".into(),
        ));
    }
    let what = format!("AR DPO init {}", init.meta.name);
    let bytes = crate::store::module_to_bytes(&init.net, true, &what)?;
    let policy: MaskGit<B> =
        module_from_bytes(net_cfg.init_family::<B>(true, device), bytes, &what)?;
    let steps = total_steps(cfg, pairs.len());
    let config = serde_json::to_value(cfg).map_err(|e| err(e.to_string()))?;
    let spec = LoopSpec {
        what: "AR DPO",
        config: config.clone(),
        steps,
        lr: cfg.lr,
        warmup_steps: (cfg.warmup_ratio * steps as f64).round() as usize,
        checkpoint_every: cfg.checkpoint_every,
        log_every: cfg.log_every,
        columns: &["dpo", "accuracy", "margin"],
    };
    let inner = reference.device.clone();
    let mut step_fn = |model: &MaskGit<B>, step: usize| -> Result<StepLoss<B>, ModelError> {
        // Rows 0..b are the chosen images, b..2b the rejected ones.
        let b = cfg.batch_size.min(pairs.len());
        let mut host = HostBatch::default();
        for side in 0..2 {
            for j in 0..b {
                let p = &pairs[(step * cfg.batch_size + j) % pairs.len()];
                let grid = if side == 0 { &p.chosen } else { &p.rejected };
                let text = prompt_ids(&p.prompt).map_err(err)?;
                push_raster(&mut host, &text, grid, &net_cfg);
            }
        }
        let (rt, ri, rg, rm) = to_device::<B::InnerBackend>(host.clone(), net_cfg.text_len, &inner);
        let ref_lp = reference.net.masked_log_prob(rt, ri, rg, rm);
        let ref_lp = Tensor::<B, 1>::from_data(ref_lp.into_data(), device);
        let (text, input, targets, all) = to_device::<B>(host, net_cfg.text_len, device);
        let delta = model.masked_log_prob(text, input, targets, all) - ref_lp;
        let (dpo, accuracy, margin) = dpo_loss(delta, b, cfg.beta);
        Ok(StepLoss {
            total: dpo.clone(),
            parts: vec![dpo.detach(), accuracy, margin],
            grads: None,
        })
    };
    let model = run_loop(
        &spec,
        out,
        policy,
        device,
        cfg.weight_decay,
        &mut step_fn,
        progress,
    )?;
    let meta = ArMeta {
        format: AR_FORMAT.into(),
        name: cfg.name.clone(),
        net: net_cfg,
        tokenizer: init.meta.tokenizer.clone(),
        sampling: init.sampling,
        train: config,
    };
    write_ar(&model.valid(), &meta, out)?;
    Ok(meta)
}
