use crate::cli::{EvalArgs, EvalModel};
use anyhow::Context;
use harness::fsutil;
use models::detector::eval::{evaluate, DetectorEval};
use models::detector::BurnDetector;
use reports::Summary;
use std::fmt::Write;

/// `evalcot eval detector [--detector DIR] --out FILE.md`.
pub fn run(args: &EvalArgs) -> anyhow::Result<i32> {
    match args.model {
        EvalModel::Tokenizer => tokenizer(args),
        EvalModel::Judge => judges(args),
        EvalModel::Detector => {
            let det = models::open::cpu_detector(args.detector.as_deref())?;
            let source = match &args.detector {
                Some(d) => d.display().to_string(),
                None => "embedded evaluation detector".to_string(),
            };
            let t = std::time::Instant::now();
            let ev = evaluate(
                &det,
                args.seed,
                args.images,
                args.empty,
                args.suite_images,
                1234,
            )
            .map_err(|e| anyhow::anyhow!("evaluating {source}: {e}"))?;
            let summary = Summary::from_rows(&ev.suite_rows)
                .ok_or_else(|| anyhow::anyhow!("no suite rows"))?;
            let text = render(
                &ev,
                &summary,
                &source,
                &det.meta.name,
                args,
                t.elapsed().as_secs_f64(),
            );
            fsutil::write_atomic(&args.out, text.as_bytes())?;
            print!("{}", summary.render_official());
            eprintln!("wrote {}", args.out.display());
            Ok(0)
        }
    }
}

fn render(
    ev: &DetectorEval,
    summary: &Summary,
    source: &str,
    name: &str,
    args: &EvalArgs,
    secs: f64,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Detector validation: {name}\n");
    let _ = writeln!(
        s,
        "Made by `evalcot eval detector{} --images {} --empty {} --suite-images {} --seed {}` ({source}; {:.0} s on this machine).\n",
        args.detector.as_ref().map(|d| format!(" --detector {}", d.display())).unwrap_or_default(),
        args.images, args.empty, args.suite_images, args.seed, secs
    );
    let _ = writeln!(
        s,
        "## GenEval score of the ground-truth suite through the detector\n"
    );
    let _ = writeln!(s, "553 official prompts × {} renders (suite seed 1234), scored with the exact GenEval rules:\n", args.suite_images);
    let _ = writeln!(s, "```\n{}```\n", summary.render_official());
    let _ = writeln!(
        s,
        "| tag | correct | images | accuracy |\n|---|---|---|---|"
    );
    for t in &summary.tags {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.3} |",
            t.tag,
            t.correct,
            t.total,
            t.accuracy()
        );
    }
    let _ = writeln!(
        s,
        "| **overall** (mean over tags) | | | **{:.4}** |\n",
        summary.overall()
    );
    let _ = writeln!(
        s,
        "## Held-out renders: {} images, {} objects (score > 0.3, same class, IoU ≥ 0.5)\n",
        ev.images, ev.objects
    );
    let total = ev.per_class.iter().fold((0, 0, 0), |a, (_, c)| {
        (a.0 + c.true_pos, a.1 + c.false_pos, a.2 + c.false_neg)
    });
    let _ = writeln!(
        s,
        "All classes: precision {:.4}, recall {:.4} ({} true positives, {} false positives, {} missed).\n",
        total.0 as f64 / (total.0 + total.1).max(1) as f64,
        total.0 as f64 / (total.0 + total.2).max(1) as f64,
        total.0, total.1, total.2
    );
    let _ = writeln!(
        s,
        "At GenEval's counting threshold (score > 0.9): precision {:.4}, recall {:.4} ({} true positives, {} false positives, {} missed).\n",
        ev.strict.precision(),
        ev.strict.recall(),
        ev.strict.true_pos, ev.strict.false_pos, ev.strict.false_neg
    );
    let _ = writeln!(
        s,
        "### Per colour (objects found with the right class; colour predicted right or wrong)\n"
    );
    let _ = writeln!(s, "| colour | right | wrong | predicted wrongly as this | precision | recall |\n|---|---|---|---|---|---|");
    for (c, n) in &ev.per_color {
        let _ = writeln!(
            s,
            "| {c} | {} | {} | {} | {:.3} | {:.3} |",
            n.true_pos,
            n.false_neg,
            n.false_pos,
            n.precision(),
            n.recall()
        );
    }
    let _ = writeln!(
        s,
        "\n### Calibration (reliability table, all decoded detections)\n"
    );
    let _ = writeln!(s, "| score bin | detections | mean score | fraction matched to a true object |\n|---|---|---|---|");
    for b in &ev.reliability {
        let frac = if b.count > 0 {
            format!("{:.3}", b.matched as f64 / b.count as f64)
        } else {
            "–".into()
        };
        let _ = writeln!(
            s,
            "| {:.1}–{:.1} | {} | {:.3} | {} |",
            b.lo, b.hi, b.count, b.mean_score, frac
        );
    }
    let _ = writeln!(
        s,
        "\n### False positives on {} object-free images\n",
        ev.empty_images
    );
    let _ = writeln!(
        s,
        "{} detections with score > 0.3 ({:.4} per image), {} with score > 0.9.\n",
        ev.empty_fp_03,
        ev.empty_fp_03 as f64 / ev.empty_images.max(1) as f64,
        ev.empty_fp_09
    );
    let _ = writeln!(s, "### Per class\n");
    let _ = writeln!(
        s,
        "| class | TP | FP | FN | precision | recall |\n|---|---|---|---|---|---|"
    );
    for (c, n) in &ev.per_class {
        let _ = writeln!(
            s,
            "| {c} | {} | {} | {} | {:.3} | {:.3} |",
            n.true_pos,
            n.false_pos,
            n.false_neg,
            n.precision(),
            n.recall()
        );
    }
    s
}

/// `evalcot eval tokenizer [--tokenizer DIR] --out FILE.md`.
fn tokenizer(args: &EvalArgs) -> anyhow::Result<i32> {
    let device = Default::default();
    let (tok, source) = match &args.tokenizer {
        Some(d) => (
            models::vq::VqTokenizer::<models::Cpu>::load_dir(d, &device)?,
            d.display().to_string(),
        ),
        None => (
            models::embedded::base_tokenizer(&device)?,
            "the embedded base generator's tokenizer".to_string(),
        ),
    };
    let det = models::open::cpu_detector(args.detector.as_deref())?;
    let t = std::time::Instant::now();
    let ev = models::vq::eval::evaluate(&tok, &det, args.images, args.suite_images, args.seed)
        .map_err(|e| anyhow::anyhow!("evaluating {source}: {e}"))?;
    let orig = Summary::from_rows(&ev.suite_original).ok_or_else(|| anyhow::anyhow!("no rows"))?;
    let recon =
        Summary::from_rows(&ev.suite_reconstructed).ok_or_else(|| anyhow::anyhow!("no rows"))?;
    let mut s = String::new();
    let _ = writeln!(s, "# Tokenizer validation: {}\n", tok.meta.name);
    let _ = writeln!(
        s,
        "Command: `evalcot eval tokenizer{} --images {} --suite-images {} --seed {} --out {}` ({source}; {:.0} s on this machine). Training config and loss curve: `{dir}/train.yaml`, `{dir}/losses.csv`.\n",
        args.tokenizer.as_ref().map_or(String::new(), |d| format!(" --tokenizer {}", d.display())),
        args.images,
        args.suite_images,
        args.seed,
        args.out.display(),
        t.elapsed().as_secs_f64(),
        dir = args.tokenizer.as_ref().map_or_else(
            || models::embedded::tokenizer_folder(&tok.meta.name).unwrap_or("(embedded)").to_string(),
            |d| d.display().to_string()
        ),
    );
    let _ = writeln!(s, "## Reconstruction\n");
    let _ = writeln!(
        s,
        "| held-out renders (seed {}) | images | mean PSNR (dB) |\n|---|---|---|",
        args.seed
    );
    let _ = writeln!(
        s,
        "| random scenes (0–5 objects) | {} | {:.2} |",
        ev.images, ev.psnr_random
    );
    let _ = writeln!(
        s,
        "| training-prompt scenes | {} | {:.2} |\n",
        ev.images, ev.psnr_prompts
    );
    let _ = writeln!(
        s,
        "Codebook: {} of {} codes used on these images, perplexity {:.1}. Token predictability \
         (what a generator can learn): {:.1} distinct codes per image of {} tokens; a token equals \
         its left neighbour {:.1}% of the time.\n",
        ev.codes_used,
        ev.codebook,
        ev.perplexity,
        ev.distinct_per_image,
        ev.tokens,
        100.0 * ev.left_agreement
    );
    let _ = writeln!(
        s,
        "## GenEval of the ground-truth suite, original vs reconstructed\n"
    );
    let _ = writeln!(s, "553 official prompts × {} renders (seed 1234), judged by the evaluation detector and the GenEval rules.\n", args.suite_images);
    let _ = writeln!(
        s,
        "| tag | original | reconstructed | kept |\n|---|---|---|---|"
    );
    for (a, b) in orig.tags.iter().zip(&recon.tags) {
        let _ = writeln!(
            s,
            "| {} | {:.3} | {:.3} | {:.1}% |",
            a.tag,
            a.accuracy(),
            b.accuracy(),
            100.0 * b.accuracy() / a.accuracy().max(1e-9)
        );
    }
    let _ = writeln!(
        s,
        "| **overall** | **{:.3}** | **{:.3}** | {:.1}% |",
        orig.overall(),
        recon.overall(),
        100.0 * recon.overall() / orig.overall().max(1e-9)
    );
    fsutil::write_atomic(&args.out, s.as_bytes())?;
    print!("{s}");
    // A contact sheet: ground-truth renders (odd columns) beside their reconstructions.
    let sheet_path = args.out.with_extension("png");
    let suite = harness::Suite::official();
    let originals: Vec<_> = (0..32)
        .map(|k| {
            let p = &suite.prompts[k * 17 % suite.prompts.len()];
            world::dataset::suite_scene(p, 1234, 0, tok.meta.train.style).map(|sc| sc.image)
        })
        .collect::<Result<_, _>>()?;
    let grids = tok.encode(&originals);
    let refs: Vec<&[u32]> = grids.iter().map(Vec::as_slice).collect();
    let recon = tok.decode(&refs).map_err(|e| anyhow::anyhow!(e))?;
    let mut sheet = image::RgbImage::new(8 * 2 * 66, 4 * 66);
    for (k, (a, b)) in originals.iter().zip(&recon).enumerate() {
        let (x, y) = ((k % 8) as i64 * 132, (k / 8) as i64 * 66);
        image::imageops::overlay(&mut sheet, a, x, y);
        image::imageops::overlay(&mut sheet, b, x + 66, y);
    }
    let mut bytes = Vec::new();
    image::DynamicImage::ImageRgb8(sheet).write_to(
        &mut std::io::Cursor::new(&mut bytes),
        image::ImageFormat::Png,
    )?;
    fsutil::write_atomic(&sheet_path, &bytes)?;
    eprintln!("wrote {} and {}", args.out.display(), sheet_path.display());
    Ok(0)
}

/// `evalcot eval judge --judges zero-shot,fine-tuned --out FILE.md`.
fn judges(args: &EvalArgs) -> anyhow::Result<i32> {
    use models::judge::eval;
    let det = models::open::cpu_detector(args.detector.as_deref())?;
    let generator = models::open::cpu_generator(&args.generator)?;
    // Held-out prompts: the validation split of the training prompts (never trained on).
    let all = world::prompts::training_prompts(world::prompts::DEFAULT_COUNT, args.seed);
    let val = world::prompts::split(&all, args.seed).1;
    let clean =
        eval::clean_samples(&val, args.images, args.seed).map_err(|e| anyhow::anyhow!(e))?;
    let step = (val.len() / args.prompts.max(1)).max(1);
    let sampled: Vec<_> = val
        .iter()
        .step_by(step)
        .take(args.prompts)
        .cloned()
        .collect();
    let t = std::time::Instant::now();
    // Held-out trajectories of the generator, labelled exactly as the fine-tuned judge's training
    // data (annotator detector + GenEval rules; Math-Shepherd rollouts for `step`): every task
    // scored on the kind of data a judge meets inside a strategy.
    let annotator = BurnDetector::<models::Cpu>::load_dir(&args.annotator, &Default::default())
        .with_context(|| format!("--annotator {}", args.annotator.display()))?;
    let collect = models::judge::data::CollectConfig {
        prompts: args.prompts,
        candidates: 2,
        rollout_every: 6,
        rollouts: 1,
        steps: harness::generator::Generator::default_steps(&generator),
        batch: 16,
    };
    let trajectories = models::judge::data::collect(
        &generator,
        &annotator,
        &val,
        &collect,
        args.seed,
        &mut |_, _| {},
    )
    .map_err(|e| anyhow::anyhow!("labelling held-out generator trajectories: {e}"))?;
    let verdicts = eval::verdict_samples(&generator, &det, &sampled, 2, args.seed)
        .map_err(|e| anyhow::anyhow!("sampling held-out generator images: {e}"))?;
    let mut s = String::new();
    let _ = writeln!(s, "# Judge validation\n");
    let _ = writeln!(
        s,
        "Command: `evalcot eval judge --judges {} --generator {} --images {} --prompts {} --seed {} --out {}`.\n",
        args.judges, args.generator, args.images, args.prompts, args.seed, args.out.display()
    );
    let _ = writeln!(s, "Held-out prompts: the validation split of the training prompts (seed {}), never trained on. *Clean renders*: {} prompts rendered matching or as a near miss (the zero-shot judge's kind of data), asked `final`, plus one `reflect` question per include clause. *Generator samples*: 2 samples of generator `{}` for each of {} prompts; the GenEval verdict comes from the evaluation detector and the rules. *Generator trajectories*: 2 trajectories of `{}` for each of {} prompts drawn from the same split, every step labelled as the fine-tuned judge's training data are (the annotator detector and the GenEval rules; `step` by one fresh rollout every 6 steps, Math-Shepherd style; `clarity` by the measured boundary; `potential` from the final verdict).\n", args.seed, args.images, args.generator, sampled.len(), args.generator, args.prompts);
    let _ = writeln!(
        s,
        "| judge | data | task | n | positives | accuracy | AUROC |\n|---|---|---|---|---|---|---|"
    );
    for name in args
        .judges
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
    {
        let judge = models::open::cpu_judge(name)?;
        let mut row = |data: &str, task: &str, sc: eval::Scores| {
            let _ = writeln!(
                s,
                "| {name} | {data} | {task} | {} | {} | {:.3} | {:.3} |",
                sc.n, sc.positives, sc.accuracy, sc.auroc
            );
        };
        for (samples, data) in [
            (&clean, "clean renders"),
            (&trajectories, "generator trajectories"),
        ] {
            for (task, sc) in eval::per_task(&judge, samples).map_err(|e| anyhow::anyhow!(e))? {
                row(data, task.as_str(), sc);
            }
        }
        let (sc, geneval) = eval::agreement(&judge, &verdicts).map_err(|e| anyhow::anyhow!(e))?;
        row(
            &format!("generator samples (agreement with GenEval; GenEval accuracy {geneval:.3})"),
            "final",
            sc,
        );
    }
    let _ = writeln!(s, "\n{:.0} s on this machine.", t.elapsed().as_secs_f64());
    fsutil::write_atomic(&args.out, s.as_bytes())?;
    print!("{s}");
    Ok(0)
}
