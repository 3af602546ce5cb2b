//! Wiring a model spec to its implementation: `ext:CMD` to a worker process (the `external`
//! crate), anything else to evalcot's own models by name or folder (`models::open`).

use anyhow::anyhow;
use harness::detector::Detector;
use harness::generator::{Draws, Generator};
use harness::judge::Judge;
use harness::run::Device;
use models::open::SamplingOptions;
use std::path::Path;

/// A generator spec, with the guidance scale in use (`cfg_scale` when given, else the
/// generator's default).
pub fn generator(
    spec: &str,
    options: SamplingOptions,
    device: Device,
) -> anyhow::Result<(Box<dyn Generator>, Option<f64>)> {
    let Some(cmd) = external::command_of(spec) else {
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
    if options.temperature.is_some() {
        anyhow::bail!(
            "temperature: an external generator ({spec}) samples its own way; \
             the evalcot-ext/1 protocol carries no temperature"
        );
    }
    let mut g =
        external::ExtGenerator::start(cmd, external::timeout_from_env().map_err(|e| anyhow!(e))?)
            .map_err(|e| anyhow!(e))?;
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
