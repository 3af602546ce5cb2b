use crate::cli::{EvalArgs, EvalModel};
use harness::fsutil;
use models::detector::eval::evaluate;
use reports::Summary;

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
            let made_by = format!(
                "Made by `evalcot eval detector{} --images {} --empty {} --suite-images {} --seed {}` ({source}; {:.0} s on this machine).",
                args.detector.as_ref().map(|d| format!(" --detector {}", d.display())).unwrap_or_default(),
                args.images, args.empty, args.suite_images, args.seed, t.elapsed().as_secs_f64()
            );
            let text = models::detector::eval::markdown(
                &ev,
                &summary,
                &det.meta.name,
                &made_by,
                args.suite_images,
            );
            fsutil::write_atomic(&args.out, text.as_bytes())?;
            print!("{}", summary.render_official());
            eprintln!("wrote {}", args.out.display());
            Ok(0)
        }
    }
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
    let command = format!(
        "Command: `evalcot eval tokenizer{} --images {} --suite-images {} --seed {} --out {}` ({source}; {:.0} s on this machine). Training config and loss curve: `{dir}/train.yaml`, `{dir}/losses.csv`.",
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
    let s = models::vq::eval::markdown(
        &ev,
        &orig,
        &recon,
        &tok.meta.name,
        &command,
        args.seed,
        args.suite_images,
    );
    fsutil::write_atomic(&args.out, s.as_bytes())?;
    print!("{s}");
    // A contact sheet: ground-truth renders (odd columns) beside their reconstructions.
    let sheet_path = args.out.with_extension("png");
    let sheet = models::vq::eval::contact_sheet(&tok)?;
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
    if let Some(bank) = &args.bank {
        return super::bank::judge_bank(args, bank);
    }
    let s = models::judge::eval::validate(&models::judge::eval::JudgeValidation {
        judges: args.judges.clone(),
        generator: args.generator.clone(),
        annotator: args.annotator.clone(),
        detector: args.detector.clone(),
        images: args.images,
        prompts: args.prompts,
        seed: args.seed,
        out: args.out.display().to_string(),
    })?;
    fsutil::write_atomic(&args.out, s.as_bytes())?;
    print!("{s}");
    Ok(0)
}
