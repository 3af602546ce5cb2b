//! DPO's unit tests.
use crate::maskgit::generator::BurnGenerator;
use harness::generator::Generator;
use harness::judge::{Judge, JudgeRequest, JudgeTask};

use super::config::*;
use super::pairs::*;
use super::training::*;
use crate::{Cpu, CpuTrain};
use harness::judge::Verdict;

#[test]
fn advantages_leave_one_out_within_a_group_and_normalize_by_its_spread() {
    let a = advantages(&[1.0, 0.0, 0.5], false);
    assert_eq!(a, vec![0.75, -0.75, 0.0]);
    // Normalised: the same order, scaled by the group's standard deviation; a flat group
    // carries no signal.
    let sd = (((0.5f64).powi(2) * 2.0) / 3.0).sqrt();
    let b = advantages(&[1.0, 0.0, 0.5], true);
    for (x, y) in a.iter().zip(&b) {
        assert!((x / sd - y).abs() < 1e-12, "{a:?} {b:?}");
    }
    assert_eq!(advantages(&[0.3, 0.3], true), vec![0.0, 0.0]);
    // Scale-free: tiny gaps of one prompt weigh as much as large ones.
    let small = advantages(&[0.101, 0.100], true);
    let large = advantages(&[0.9, 0.1], true);
    assert!((small[0] - large[0]).abs() < 1e-6, "{small:?} {large:?}");
}

#[test]
fn reward_prompts_cover_every_tag_over_a_run() {
    let mut c = config(Some(0.1));
    c.reward.as_mut().unwrap().samples_per_step = 8;
    c.reward.as_mut().unwrap().samples_per_prompt = 4;
    let (per_step, pool) = reward_prompts(&c, 27);
    assert_eq!((per_step, pool.len()), (2, 54));
    let tags: std::collections::BTreeSet<_> = pool.iter().map(|m| m.tag).collect();
    assert_eq!(tags.len(), 5, "{tags:?}");
    // Consecutive steps do not repeat one tag pattern.
    let first: Vec<_> = pool[..2].iter().map(|m| m.tag).collect();
    assert!(pool
        .chunks(2)
        .any(|s| s.iter().map(|m| m.tag).collect::<Vec<_>>() != first));
}

#[test]
fn reward_groups_must_divide_the_step() {
    let mut c = config(Some(0.1));
    c.reward.as_mut().unwrap().samples_per_prompt = 3;
    assert!(c.validate().unwrap_err().contains("samples_per_prompt 3"));
    c.reward.as_mut().unwrap().samples_per_prompt = 4;
    assert!(c.validate().is_ok());
}

/// A tiny generator over the shipped tokenizer's codes, random weights from a seed.
fn tiny() -> BurnGenerator<Cpu> {
    crate::testutil::tiny_generator("tiny", 1, super::super::SamplingConfig::default().steps)
}

/// P(yes) = the image's mean red level: cheap, deterministic, and it varies between samples.
struct RedJudge;
impl Judge for RedJudge {
    fn name(&self) -> &str {
        "red"
    }
    fn judge(
        &self,
        requests: &[JudgeRequest<'_>],
    ) -> Result<Vec<Verdict>, harness::error::ModelFault> {
        Ok(requests
            .iter()
            .map(|r| {
                let px = r.image.pixels().map(|p| p.0[0] as f64).sum::<f64>();
                let mean = px / (255.0 * r.image.pixels().len() as f64);
                Verdict {
                    p_yes: (mean * 4.0 - 1.5).clamp(0.0, 1.0),
                    clauses: vec![],
                }
            })
            .collect())
    }
}

fn config(reward: Option<f64>) -> DpoTrainConfig {
    DpoTrainConfig {
        name: "dpo-test".into(),
        seed: 1,
        init: "tiny".into(),
        reference: None,
        pairs: PairsConfig {
            sampler: None,
            bank: None,
            judge: "red".into(),
            prompts: 8,
            samples_per_prompt: 4,
            steps: Some(3),
            seed: 2,
            rule: PairRule::Verdict,
            min_gap: 0.0,
        },
        epochs: 3,
        batch_size: 2,
        lr: 3e-3,
        warmup_ratio: 0.0,
        weight_decay: 0.0,
        beta: 0.1,
        reward: reward.map(|weight| RewardConfig {
            judge: "red".into(),
            task: JudgeTask::Final,
            weight,
            samples_per_step: 4,
            samples_per_prompt: 2,
            normalize: true,
            steps: Some(2),
        }),
        checkpoint_every: 100,
        log_every: 1,
    }
}

fn pairs(g: &BurnGenerator<Cpu>) -> Vec<Pair> {
    let cfg = config(None);
    let (pairs, stats) = build_pairs(&cfg.pairs, g, &RedJudge, &mut |_, _| {}).unwrap();
    assert_eq!(stats.prompts, 8);
    assert_eq!(stats.pairs + stats.all_yes + stats.all_no, 8);
    assert_eq!(stats.pairs, pairs.len());
    for p in &pairs {
        assert!(p.p_chosen >= 0.5 && p.p_rejected < 0.5, "{p:?}");
        assert_eq!((p.chosen.len(), p.rejected.len()), (64, 64));
    }
    pairs
}

#[test]
fn the_ranked_rule_pairs_best_with_worst_and_drops_close_calls() {
    let jp = |p_yes: Vec<f64>| JudgedPrompt {
        prompt: "a photo of a cat".into(),
        tokens: (0..p_yes.len() as u32).map(|s| vec![s; 4]).collect(),
        p_yes,
    };
    let judged = vec![
        jp(vec![0.1, 0.3, 0.05, 0.3]), // all "no" to the paper's rule; ranked: 1 over 2
        jp(vec![0.9, 0.2, 0.6, 0.7]),  // both rules pair it
        jp(vec![0.2, 0.21, 0.2, 0.2]), // closer than min_gap
    ];
    let mut cfg = config(None).pairs;
    let (pairs, stats) = select_pairs(&cfg, &judged);
    assert_eq!((stats.all_no, stats.pairs, stats.all_yes), (2, 1, 0));
    assert_eq!(pairs[0].rejected, vec![1; 4]);
    cfg.rule = PairRule::Ranked;
    cfg.min_gap = 0.1;
    let (pairs, stats) = select_pairs(&cfg, &judged);
    assert_eq!((stats.pairs, stats.too_close), (2, 1));
    assert_eq!(
        (pairs[0].chosen[0], pairs[0].rejected[0]),
        (1, 2),
        "ties keep the first"
    );
    assert_eq!((pairs[1].chosen[0], pairs[1].rejected[0]), (0, 1));
    assert_eq!(pairs[1].p_chosen - pairs[1].p_rejected, 0.9 - 0.2);
}

#[test]
fn pairs_do_not_depend_on_the_thread_count() {
    let g = tiny();
    let mut cfg = config(None).pairs;
    cfg.prompts = 20; // three chunks, so two really run in parallel
    let build = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| build_pairs(&cfg, &g, &RedJudge, &mut |_, _| {}).unwrap())
    };
    let (one, stats) = build(1);
    assert_eq!(stats.prompts, 20);
    assert_eq!(stats.pairs + stats.all_yes + stats.all_no, 20);
    assert_eq!((one, stats), build(3));
}

/// Trains and returns a fingerprint of the weights (log-probabilities of the pairs' tokens:
/// weight files also hold random parameter ids, so their bytes differ for equal weights) and
/// the loss curve.
fn train_once(cfg: &DpoTrainConfig, pairs: &[Pair], g: &BurnGenerator<Cpu>) -> (Vec<f64>, String) {
    let dir = tempfile::tempdir().unwrap();
    let models = DpoModels {
        init: g,
        reference: g,
        reward_judge: cfg.reward.as_ref().map(|_| &RedJudge as &dyn Judge),
    };
    train::<CpuTrain>(
        cfg,
        pairs,
        &models,
        dir.path(),
        &Default::default(),
        &mut |_, _, _| {},
    )
    .unwrap();
    let meta = crate::train_loop::read_json(&dir.path().join("generator.json")).unwrap();
    let bytes = std::fs::read(dir.path().join("generator.bpk")).unwrap();
    let trained = BurnGenerator::<Cpu>::from_parts(
        meta,
        bytes,
        g.tokenizer.clone(),
        "trained",
        &Default::default(),
    )
    .unwrap();
    let fingerprint = pairs
        .iter()
        .map(|p| trained.log_prob(&p.prompt, &p.chosen, 9).unwrap())
        .collect();
    (
        fingerprint,
        std::fs::read_to_string(dir.path().join("losses.csv")).unwrap(),
    )
}

fn column(csv: &str, name: &str) -> Vec<f64> {
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let i = header.iter().position(|h| *h == name).unwrap();
    csv.lines()
        .skip(1)
        .map(|l| l.split(',').nth(i).unwrap().parse().unwrap())
        .collect()
}

#[test]
fn dpo_starts_at_ln2_raises_the_margin_and_repeats_exactly() {
    let g = tiny();
    let pairs = pairs(&g);
    assert!(!pairs.is_empty());
    assert_eq!(
        pairs,
        super::tests::pairs(&g),
        "pairs depend only on the seeds"
    );
    let cfg = config(None);
    let (w1, csv1) = train_once(&cfg, &pairs, &g);
    let dpo = column(&csv1, "dpo");
    assert!((dpo[0] - std::f64::consts::LN_2).abs() < 1e-4, "{dpo:?}");
    let margins = column(&csv1, "margin");
    let late = margins[margins.len() - 3..].iter().sum::<f64>() / 3.0;
    assert!(
        late > 0.0,
        "the policy should prefer the chosen samples: {margins:?}"
    );
    let (w2, csv2) = train_once(&cfg, &pairs, &g);
    assert_eq!(csv1, csv2);
    assert_eq!(w1, w2, "the same config must give the same weights");
    let before: Vec<f64> = pairs
        .iter()
        .map(|p| g.log_prob(&p.prompt, &p.chosen, 9).unwrap())
        .collect();
    let gained = w1.iter().zip(&before).filter(|(a, b)| a > b).count();
    assert!(
        2 * gained > pairs.len(),
        "chosen samples became likelier: {w1:?} vs {before:?}"
    );
}

#[test]
fn the_reward_term_moves_the_weights_and_weight_zero_is_plain_dpo() {
    let g = tiny();
    let pairs = pairs(&g);
    let (plain, _) = train_once(&config(None), &pairs, &g);
    let (zero, csv_zero) = train_once(&config(Some(0.0)), &pairs, &g);
    let (guided, csv_guided) = train_once(&config(Some(0.1)), &pairs, &g);
    assert_eq!(plain, zero, "weight 0 must leave training unchanged");
    assert_ne!(zero, guided, "a working reward term changes training");
    assert!(column(&csv_zero, "reward_term").iter().all(|&x| x == 0.0));
    assert!(column(&csv_guided, "reward_term").iter().any(|&x| x != 0.0));
    assert!(column(&csv_guided, "reward")
        .iter()
        .all(|&x| (0.0..=1.0).contains(&x)));
}
