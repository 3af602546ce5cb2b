//! `evalcot bank` and `evalcot replay`: wiring only; the bank itself is `harness::bank`.

use crate::cli::{ReplayArgs, RunArgs};
use anyhow::anyhow;
use harness::bank::{self, BankManifest};
use harness::detector::Detector;
use harness::generator::Generator;
use harness::run::shard::Shard;
use harness::run::{Context, Job, RunConfig, StrategyKind};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::{Path, PathBuf};

/// The manifest of a bank made with `config` (resolved) over `prompts` by these models.
pub fn manifest(
    config: RunConfig,
    prompts: &[harness::PromptEntry],
    generator: &dyn Generator,
    detector: &dyn Detector,
    shard: Option<Shard>,
) -> BankManifest {
    BankManifest {
        format: bank::FORMAT.into(),
        code_version: crate::CODE_VERSION.into(),
        generator: generator.name().into(),
        detector: detector.name().into(),
        config,
        prompts: prompts.len(),
        suite_digest: bank::suite_digest(prompts),
        shard: shard.map(|s| [s.index, s.count]),
    }
}

/// `evalcot bank SUITE --n N --images-per-prompt K --generator G --out BANK [--shard K/N]`.
pub fn bank(args: &RunArgs) -> anyhow::Result<i32> {
    if args.settings.strategy.is_some() || args.settings.judge.is_some() {
        anyhow::bail!(
            "a bank holds candidates for every strategy and judge: name them when you replay it \
             (evalcot replay BANK --strategy S --judge J)"
        );
    }
    let base_out = args
        .out
        .clone()
        .ok_or_else(|| anyhow!("--out BANK is required: where the bank goes"))?;
    let mut cfg = super::run::resolve(args)?;
    // A bank's verdicts are what the oracle picks with; the strategy is chosen at replay.
    cfg.strategy = StrategyKind::Oracle.as_str().into();
    let shard = args
        .shard
        .as_deref()
        .map(|spec| Shard::parse(spec, &|k| std::env::var(k).ok()))
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let opened = super::run::open(&mut cfg)?;
    let out = shard.map_or_else(|| base_out.clone(), |s| s.folder(&base_out));
    let jobs = Shard::select(
        shard,
        Job::all(&opened.prompts, cfg.images_per_prompt, cfg.seed),
    );
    let want = manifest(
        cfg.clone(),
        &opened.prompts,
        opened.generator.as_ref(),
        opened.detector.as_ref(),
        shard,
    );
    let cx = Context {
        generator: opened.generator.as_ref(),
        steps: cfg.steps.unwrap_or(opened.generator.default_steps()),
        n: cfg.n,
        detector: Some(opened.detector.as_ref()),
        rules: harness::RuleConfig::default(),
        judge: None,
        decision: cfg.decision,
    };
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "bank {{bar:40}} {{pos}}/{{len}} images × {} candidates, {{elapsed}} elapsed, eta {{eta}}",
            cfg.n
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let (made, resumed) = bank::write::generate(
        &out,
        &want,
        &jobs,
        &cx,
        cfg.batch_prompts * cfg.images_per_prompt,
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    eprintln!(
        "{made} images × {} candidates banked now ({resumed} were there) in {:.1} s; wrote {}",
        cfg.n,
        started.elapsed().as_secs_f64(),
        out.display()
    );
    Ok(0)
}

/// `evalcot replay BANK --strategy S [--judge J] [--n N′]`.
pub fn replay(args: &ReplayArgs) -> anyhow::Result<i32> {
    let have = bank::read_manifest(&args.bank)?.ok_or_else(|| {
        anyhow!(
            "{}: not a bank (no {}); make one with evalcot bank",
            args.bank.display(),
            bank::MANIFEST
        )
    })?;
    if let Some([k, n]) = have.shard {
        anyhow::bail!(
            "{}: shard {k} of {n} of a bank; join the shards with evalcot merge first",
            args.bank.display()
        );
    }
    let cfg = replay_config(&have, args)?;
    let shard = args
        .shard
        .as_deref()
        .map(|spec| Shard::parse(spec, &|k| std::env::var(k).ok()))
        .transpose()
        .map_err(|e| anyhow!(e))?;
    let base_out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("replay-{}", cfg.strategy)));
    if args.profile {
        harness::profile::enable();
    }
    super::run::execute_with(cfg, &base_out, shard, Some((&args.bank, &have)))?;
    Ok(0)
}

/// The run configuration a replay of `bank` stands for: the bank's generation settings with
/// the strategy, judge, N′ and decision rule of the command.
fn replay_config(bank: &BankManifest, args: &ReplayArgs) -> anyhow::Result<RunConfig> {
    let kind: StrategyKind = args.strategy.parse().map_err(|e: String| anyhow!(e))?;
    if matches!(kind, StrategyKind::Prm | StrategyKind::ParmPlus) {
        anyhow::bail!(
            "{kind} changes trajectories (PRM forks the kept state, PARM++ re-masks regions), so \
             a bank cannot serve it; run it live with evalcot run --strategy {kind}"
        );
    }
    let mut cfg = bank.config.clone();
    cfg.strategy = kind.as_str().into();
    if let Some(n) = args.n {
        if n == 0 || n > bank.config.n {
            anyhow::bail!(
                "--n {n}: the bank holds {} candidates per image; choose 1..={}",
                bank.config.n,
                bank.config.n
            );
        }
        cfg.n = n;
    }
    if let Some(j) = &args.judge {
        cfg.judge = j.clone();
    }
    if let Some(d) = args.decision {
        cfg.decision = d;
    }
    Ok(cfg)
}

/// Whether `dir` holds a bank (for commands that take runs or banks).
pub fn is_bank(dir: &Path) -> bool {
    dir.join(bank::MANIFEST).is_file()
}
