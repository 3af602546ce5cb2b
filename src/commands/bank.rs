//! `evalcot bank` and `evalcot replay`: wiring only; the bank itself is `harness::bank`.

use crate::cli::{EvalArgs, ReplayArgs, RunArgs};
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

/// Checks bank `dir` (manifest `have`) against the models its configuration opened: the same
/// build, generator, detector and prompts, complete for `jobs`, and candidate 0 of the first job
/// regenerated equal to the banked one.
pub fn verify(
    dir: &Path,
    have: &BankManifest,
    prompts: &[harness::PromptEntry],
    generator: &dyn Generator,
    detector: &dyn Detector,
    jobs: &[Job],
    any_build: bool,
) -> anyhow::Result<()> {
    let want = manifest(
        have.config.clone(),
        prompts,
        generator,
        detector,
        have.shard.map(|[k, n]| Shard { index: k, count: n }),
    );
    bank::check_but(dir, &want, jobs, any_build)?;
    let steps = have.config.steps.unwrap_or(generator.default_steps());
    bank::spot_check(dir, &jobs[0], generator, steps, detector.input_size())?;
    if have.code_version != crate::CODE_VERSION {
        eprintln!(
            "note: bank {} was written by evalcot {}, this is {}; its candidate 0 regenerated and \
             decoded identically",
            dir.display(),
            have.code_version,
            crate::CODE_VERSION
        );
    }
    Ok(())
}

/// The manifest of the bank (or bank shard) in `dir`; a folder without one is refused.
pub fn read(dir: &Path) -> anyhow::Result<BankManifest> {
    bank::read_manifest(dir)?.ok_or_else(|| {
        anyhow!(
            "{}: not a bank (no {}); make one with evalcot bank",
            dir.display(),
            bank::MANIFEST
        )
    })
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
    external::set_workers(args.workers.into());
    let mut cfg = super::run::resolve(args)?;
    // A bank's verdicts are what the oracle picks with; the strategy is chosen at replay.
    cfg.strategy = StrategyKind::Oracle.as_str().into();
    let shard = super::run::shard_flag(args.shard.as_deref())?;
    let opened = super::run::open(&mut cfg)?;
    if let Some(c) = &opened.caveat {
        eprintln!("{c}");
    }
    if opened.generator.opaque_state() {
        anyhow::bail!(
            "generator {}: its candidates carry the worker's own state (evalcot-ext/2 `state`), \
             which a bank, made of token states, cannot hold; run the strategies live",
            opened.generator.name()
        );
    }
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
        keep_best: cfg.keep_best,
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
    let have = read(&args.bank)?;
    let cfg = replay_config(&have, args)?;
    let asked = super::run::shard_flag(args.shard.as_deref())?;
    // A bank shard replays as the same shard of the run.
    let banked = have.shard.map(|[k, n]| Shard { index: k, count: n });
    let shard = match (banked, asked) {
        (Some(b), Some(a)) if a != b => anyhow::bail!(
            "{} is shard {b} of a bank: it can replay only shard {b} of the run, not --shard {a}",
            args.bank.display()
        ),
        (b, a) => b.or(a),
    };
    let base_out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs").join(format!("replay-{}", cfg.strategy)));
    if args.profile {
        harness::profile::enable();
    }
    super::run::execute_with(
        cfg,
        &base_out,
        shard,
        Some((&args.bank, &have, args.any_build)),
    )?;
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
    if args.keep_best.is_some() {
        cfg.keep_best = args.keep_best;
    }
    cfg.validate().map_err(|e| anyhow!("{e}"))?;
    Ok(cfg)
}

/// Whether `dir` holds a bank (for commands that take runs or banks).
pub fn is_bank(dir: &Path) -> bool {
    dir.join(bank::MANIFEST).is_file()
}

/// `evalcot eval judge --bank BANK --judges J1,J2 --out FILE.md`: every judge ranks the bank's
/// candidates; writes the report, FILE.csv (per judge and N′), FILE-scores.csv (every P(yes))
/// and FILE.png/.svg (best-of-N′ curves).
pub fn judge_bank(args: &EvalArgs, dir: &Path) -> anyhow::Result<i32> {
    // A shard of a bank is a fine sample of images to rank (`bank --images-per-prompt 4
    // --shard 0/4` holds image 0 of every prompt).
    let have = read(dir)?;
    let shard = have.shard.map(|[k, n]| Shard { index: k, count: n });
    let mut cfg = have.config.clone();
    let opened = super::run::open(&mut cfg)?;
    let jobs = Shard::select(
        shard,
        Job::all(&opened.prompts, cfg.images_per_prompt, cfg.seed),
    );
    verify(
        dir,
        &have,
        &opened.prompts,
        opened.generator.as_ref(),
        opened.detector.as_ref(),
        &jobs,
        args.any_build,
    )?;
    let device = cfg.device.unwrap_or(harness::run::Device::Cpu);
    let steps = cfg
        .steps
        .unwrap_or_else(|| opened.generator.default_steps());
    let at: Vec<usize> = match &args.potential {
        None => Vec::new(),
        Some(list) => list
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&t| t >= 1 && t < steps)
                    .ok_or_else(|| {
                        anyhow!("--potential {list:?}: {t:?} is not a step in 1..{steps}")
                    })
            })
            .collect::<anyhow::Result<_>>()?,
    };
    if args.potential.is_some() && args.rollouts == 0 {
        anyhow::bail!("--rollouts 0: a state's value needs at least one continuation");
    }
    let by_step = args.by_step || !at.is_empty();
    let names: Vec<String> = args
        .judges
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let judges = names
        .iter()
        .map(|n| crate::open::judge(n, device))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let refs: Vec<&dyn harness::judge::Judge> = judges.iter().map(|j| j.as_ref()).collect();
    let bar = ProgressBar::new(jobs.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "judging {bar:40} {pos}/{len} images, {elapsed} elapsed, eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    let images = bank::judge::judge_bank(
        dir,
        &jobs,
        cfg.n,
        opened.generator.as_ref(),
        &refs,
        bank::judge::Asks {
            batch_jobs: cfg.batch_prompts * cfg.images_per_prompt,
            by_step,
            ablations: args.ablations.then_some(args.seed),
        },
        &mut |done, _| bar.set_position(done as u64),
    )?;
    bar.finish_and_clear();
    let valued = if at.is_empty() {
        Vec::new()
    } else {
        let bar = ProgressBar::new(jobs.len() as u64);
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "rollouts {{bar:40}} {{pos}}/{{len}} images ({} per state), {{elapsed}} elapsed, eta {{eta}}",
                args.rollouts
            ))
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        let v = bank::value::values(
            dir,
            &jobs,
            cfg.n,
            opened.generator.as_ref(),
            opened.detector.as_ref(),
            bank::value::Rollouts {
                at: &at,
                k: args.rollouts,
                batch_jobs: cfg.batch_prompts,
            },
            &mut |done, _| bar.set_position(done as u64),
        )?;
        bar.finish_and_clear();
        v
    };
    let seconds = started.elapsed().as_secs_f64();
    let provenance = reports::verifier::Provenance {
        bank: match shard {
            Some(s) => format!("{} (shard {} of {})", dir.display(), s.index, s.count),
            None => dir.display().to_string(),
        },
        generator: have.generator.clone(),
        detector: have.detector.clone(),
        build: have.code_version.clone(),
        seed: cfg.seed,
        steps: cfg.steps.unwrap_or(0),
        judges: names.clone(),
    };
    let bench =
        reports::verifier::Bench::compute(provenance, &images, args.resamples, args.seed, 0.95);
    let out = &args.out;
    let sibling = |suffix: &str| {
        let stem = out
            .file_stem()
            .map_or("judges".into(), |s| s.to_string_lossy().into_owned());
        out.with_file_name(format!("{stem}{suffix}"))
    };
    let mut scores = String::from("prompt_index,image_index,tag,candidate,correct,judge,p_yes\n");
    for img in &images {
        for (j, name) in names.iter().enumerate() {
            for (c, (&ok, p)) in img.correct.iter().zip(&img.p_yes[j]).enumerate() {
                scores.push_str(&format!(
                    "{},{},{},{c},{},{},{p}\n",
                    img.prompt_index, img.image_index, img.tag, ok as u8, name
                ));
            }
        }
    }
    let potential = if at.is_empty() {
        String::new()
    } else {
        let mut csv =
            String::from("prompt_index,image_index,tag,after_step,candidate,correct,value\n");
        for v in &valued {
            for (a, t) in at.iter().enumerate() {
                for (c, x) in v.value[a].iter().enumerate() {
                    csv.push_str(&format!(
                        "{},{},{},{t},{c},{},{x}\n",
                        v.prompt_index, v.image_index, v.tag, v.correct[c] as u8
                    ));
                }
            }
        }
        harness::fsutil::write_atomic(&sibling("-values.csv"), csv.as_bytes())?;
        reports::verifier::potential_markdown(&names, &images, &valued, &at, steps, args.rollouts)
            + &format!("\nEvery value: {}.\n", sibling("-values.csv").display())
    };
    let md = bench.markdown()
        + &reports::verifier::by_step_markdown(&names, &images)
        + &potential
        + &format!(
            "\nMade by `evalcot eval judge --bank {} --judges {}{} --out {}` ({seconds:.0} s on this machine). Every P(yes): {}; per N′: {}; plot: {}.\n",
            dir.display(),
            args.judges,
            [
                (args.by_step, " --by-step".to_string()),
                (args.ablations, " --ablations".to_string()),
                (
                    args.potential.is_some(),
                    format!(
                        " --potential {} --rollouts {}",
                        args.potential.as_deref().unwrap_or(""),
                        args.rollouts
                    )
                ),
            ]
            .into_iter()
            .filter_map(|(on, flag)| on.then_some(flag))
            .collect::<String>(),
            out.display(),
            sibling("-scores.csv").display(),
            sibling(".csv").display(),
            sibling(".png").display(),
        );
    let font = reports::font::font();
    let text = font.available();
    let md = md + &font.missing().map_or(String::new(), |m| format!("\n{m}\n"));
    let scaling = bench.scaling();
    harness::fsutil::write_atomic(&sibling("-scores.csv"), scores.as_bytes())?;
    harness::fsutil::write_atomic(&sibling(".csv"), bench.csv().as_bytes())?;
    let png = sibling(".png");
    harness::fsutil::write_atomic(
        &png,
        &reports::plots::render_scaling_png(&scaling, text, &png)?,
    )?;
    let svg = sibling(".svg");
    harness::fsutil::write_atomic(
        &svg,
        reports::plots::render_scaling_svg(&scaling, text, &svg)?.as_bytes(),
    )?;
    harness::fsutil::write_atomic(out, md.as_bytes())?;
    print!("{md}");
    Ok(0)
}
