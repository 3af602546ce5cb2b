//! Wiring a model spec to its implementation: `ext:CMD` to a worker process (the `external`
//! crate), anything else to evalcot's own models by name or folder (`models::open`).

use anyhow::anyhow;
use harness::detector::Detector;
use harness::generator::{Draws, Generator};
use harness::judge::Judge;
use harness::run::Device;
use models::open::SamplingOptions;
use std::collections::BTreeMap;
use std::path::Path;

/// A generator spec, with the guidance scale in use (`cfg_scale` when given, else the
/// generator's default). `extra` are the run's pass-through `options`, for external generators.
pub fn generator(
    spec: &str,
    options: SamplingOptions,
    extra: &BTreeMap<String, serde_json::Value>,
    device: Device,
) -> anyhow::Result<(Box<dyn Generator>, Option<f64>)> {
    let Some(cmd) = external::command_of(spec) else {
        if let Some(k) = extra.keys().next() {
            anyhow::bail!(
                "options: {k:?} is for external generators (evalcot-ext/2 workers); {spec} takes \
                 --steps, --cfg-scale and --temperature"
            );
        }
        return Ok(models::open::generator(spec, options, device)?);
    };
    if options.batching.is_set() {
        anyhow::bail!(
            "forward_batch, slice_rows: {} ({spec} is external)",
            models::open::BATCHING_ONLY
        );
    }
    if options.draws != Draws::Host {
        anyhow::bail!(
            "draws: an external generator ({spec}) draws its own tokens; `device` draws are \
             for evalcot's masked-token generators"
        );
    }
    let mut g =
        external::ExtGenerator::start(cmd, external::timeout_from_env().map_err(|e| anyhow!(e))?)
            .map_err(|e| anyhow!(e))?;
    // Temperature and other sampling options travel in evalcot-ext/2's `options`.
    let mut pass = extra.clone();
    if let Some(t) = options.temperature {
        pass.insert("temperature".into(), t.into());
    }
    g.set_options(pass).map_err(|e| anyhow!(e))?;
    if let Some(s) = options.cfg_scale {
        g.set_cfg_scale(s);
    }
    let scale = g.cfg_scale();
    Ok((Box::new(g), scale))
}

/// A judge spec: `ext:CMD`, a name or a folder.
pub fn judge(spec: &str, device: Device) -> anyhow::Result<Box<dyn Judge>> {
    if let Some(cmd) = external::command_of(spec) {
        let timeout = external::timeout_from_env().map_err(|e| anyhow!(e))?;
        return Ok(Box::new(
            external::ExtJudge::start(cmd, timeout).map_err(|e| anyhow!(e))?,
        ));
    }
    Ok(models::open::judge(spec, device)?)
}

/// The explicit name of the embedded evaluation detector (`--detector embedded`).
pub const EMBEDDED: &str = "embedded";

/// The evaluation detector for a set of images, and the caveat to print as the summary's first
/// line when there is one. `world` says what wrote the images when it was evalcot's own world
/// (`None`: made elsewhere, `what` names them, `why` says how that was told). The embedded detector is a CenterNet trained on
/// 64×64 glyph scenes: on anything else its verdicts look official and mean nothing, so it is
/// never chosen silently there — only by an explicit `--detector embedded`, and then the
/// summary says so.
pub fn evaluation_detector(
    spec: Option<&str>,
    world: Option<&str>,
    what: &str,
    why: &str,
    device: Device,
) -> anyhow::Result<(Box<dyn Detector>, Option<String>)> {
    match (spec, world) {
        (Some(EMBEDDED), Some(_)) => Ok((detector(None, device)?, None)),
        // evalcot's own detectors (the embedded one, its first stage, a trained folder) all
        // know the glyph world only: allowed when named, and said so.
        (Some(s), None) if external::command_of(s).is_none() => Ok((
            detector((s != EMBEDDED).then_some(s), device)?,
            Some(format!(
                "NOTE: {what} scored by an evalcot detector ({s}, trained on its 64×64 glyph \
                 world), forced by --detector {s}: not a GenEval score"
            )),
        )),
        (None, None) => anyhow::bail!(
            "{what} are not images of evalcot's world{why}, and the embedded detector, trained \
             on that world's 64×64 glyph scenes, cannot judge them. Choose the evaluation detector: \
             `--detector ext:CMD` (a detector worker: examples/ext/transformers_detector.py runs \
             Mask2Former with CLIP colours as GenEval's evaluate_images.py does), or run a \
             detector elsewhere and score its detections with `evalcot score --detections FILE` \
             (examples/ext/official_to_detections.py makes FILE from the official evaluator's \
             results.jsonl). `--detector embedded` forces the embedded detector anyway."
        ),
        (spec, _) => Ok((detector(spec, device)?, None)),
    }
}

/// The detector name `summary.json` records: marked when it was forced (a caveat was given),
/// so that such scores are never compared with a real detector's.
pub fn scored_by(name: &str, caveat: Option<&String>) -> String {
    match caveat {
        Some(_) => format!("{name} (forced on images not of evalcot's world)"),
        None => name.to_string(),
    }
}

/// A detector spec: `ext:CMD`, a folder, or the embedded evaluation detector when `None`.
pub fn detector(spec: Option<&str>, device: Device) -> anyhow::Result<Box<dyn Detector>> {
    if let Some(cmd) = spec.and_then(external::command_of) {
        let timeout = external::timeout_from_env().map_err(|e| anyhow!(e))?;
        return Ok(Box::new(
            external::ExtDetector::start(cmd, timeout).map_err(|e| anyhow!(e))?,
        ));
    }
    Ok(models::open::detector(spec.map(Path::new), device)?)
}
