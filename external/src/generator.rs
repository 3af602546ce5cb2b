//! An external step-wise generator behind the [`Generator`] trait.

use crate::wire::{image_from_json, number, tokens_from_json, tokens_to_json};
use crate::worker::{field, list, Worker};
use harness::error::ModelFault;
use harness::error::NON_FINITE;
use harness::generator::{Generator, Trajectory, MASK};
use image::RgbImage;
use serde_json::{json, Value};
use std::time::Duration;

pub struct ExtGenerator {
    worker: Worker,
    name: String,
    grid: (usize, usize),
    default_steps: usize,
    /// The guidance scale sent with every step (`None`: the worker's own choice).
    cfg_scale: Option<f64>,
    remask: bool,
    log_prob: bool,
}

impl ExtGenerator {
    pub fn start(command: &str, timeout: Duration) -> Result<ExtGenerator, String> {
        let (worker, hello) = Worker::start(command, "generator", timeout)?;
        let bad = |e: String| format!("{}: hello reply: {e}", worker.label());
        let grid = field(&hello, "grid")
            .map_err(bad)?
            .as_array()
            .and_then(|g| match g.as_slice() {
                [r, c] => Some((r.as_u64()? as usize, c.as_u64()? as usize)),
                _ => None,
            })
            .filter(|&(r, c)| r > 0 && c > 0)
            .ok_or_else(|| bad("\"grid\": expected [rows, cols] of positive integers".into()))?;
        let default_steps = field(&hello, "default_steps")
            .map_err(bad)?
            .as_u64()
            .filter(|&s| s > 0)
            .ok_or_else(|| bad("\"default_steps\": expected a positive integer".into()))?
            as usize;
        let cfg_scale = match hello.get("default_cfg_scale") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_f64()
                    .filter(|s| s.is_finite())
                    .ok_or_else(|| bad("\"default_cfg_scale\": expected a number".into()))?,
            ),
        };
        let caps: Vec<String> = match hello.get("capabilities") {
            None => Vec::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| bad("\"capabilities\": expected a list of names".into()))?,
        };
        let name = hello_name(&hello).map_err(bad)?;
        Ok(ExtGenerator {
            name,
            grid,
            default_steps,
            cfg_scale,
            remask: caps.iter().any(|c| c == "remask"),
            log_prob: caps.iter().any(|c| c == "log_prob"),
            worker,
        })
    }

    /// The guidance scale in use (the worker's default until set).
    pub fn cfg_scale(&self) -> Option<f64> {
        self.cfg_scale
    }

    pub fn set_cfg_scale(&mut self, scale: f64) {
        self.cfg_scale = Some(scale);
    }

    fn len(&self) -> usize {
        self.grid.0 * self.grid.1
    }

    fn bad(&self, op: &str, e: String) -> String {
        format!("{}: {op} reply: {e}", self.worker.label())
    }
}

/// The `name` of a hello reply.
pub(crate) fn hello_name(hello: &Value) -> Result<String, String> {
    hello
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
        .map(str::to_string)
        .ok_or_else(|| "\"name\": expected a non-empty string".into())
}

impl Generator for ExtGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn concurrent(&self) -> bool {
        false
    }

    fn grid(&self) -> (usize, usize) {
        self.grid
    }

    fn default_steps(&self) -> usize {
        self.default_steps
    }

    fn step(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        let live: Vec<usize> = (0..batch.len()).filter(|&i| !batch[i].done()).collect();
        if live.is_empty() {
            return Ok(());
        }
        let mut items = Vec::with_capacity(live.len());
        for &i in &live {
            let t = &batch[i];
            if t.tokens.len() != self.len() {
                return Err(format!(
                    "{}: a trajectory of {} tokens for a {}×{} grid",
                    self.worker.label(),
                    t.tokens.len(),
                    self.grid.0,
                    self.grid.1
                )
                .into());
            }
            if t.schedule_masked < t.tokens.len() && !self.remask {
                return Err(format!(
                    "{}: re-masked trajectories need a worker with the \"remask\" capability \
                     (self-correction, parm++)",
                    self.worker.label()
                )
                .into());
            }
            items.push(json!({
                "prompt": t.prompt,
                "seed": t.seed,
                "step": t.step,
                "steps": t.steps,
                "tokens": tokens_to_json(&t.tokens),
                "schedule_masked": t.schedule_masked,
            }));
        }
        let reply = self
            .worker
            .request("step", json!({"cfg_scale": self.cfg_scale, "batch": items}))?;
        let out = list(&reply, "batch", live.len()).map_err(|e| self.bad("step", e))?;
        for (k, (&i, r)) in live.iter().zip(out).enumerate() {
            let at = |e: String| self.bad("step", format!("batch[{k}]: {e}"));
            let tokens =
                tokens_from_json(r.get("tokens"), "tokens", self.len(), true).map_err(at)?;
            let prediction = tokens_from_json(r.get("prediction"), "prediction", self.len(), false)
                .map_err(at)?;
            let forwards = r
                .get("forwards")
                .and_then(Value::as_u64)
                .ok_or_else(|| at("\"forwards\": expected a whole number".into()))?;
            let t = &mut batch[i];
            let left = tokens.iter().filter(|&&x| x == MASK).count();
            if t.step + 1 >= t.steps && left > 0 {
                return Err(at(format!(
                    "{left} positions still masked after the last step of the schedule"
                ))
                .into());
            }
            t.tokens = tokens;
            t.prediction = prediction;
            t.step += 1;
            t.forwards += forwards;
        }
        Ok(())
    }

    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, ModelFault> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let items: Vec<Value> = batch
            .iter()
            .map(|t| {
                let tokens = if t.prediction.len() == t.tokens.len() {
                    &t.prediction
                } else {
                    &t.tokens
                };
                json!({"prompt": t.prompt, "tokens": tokens_to_json(tokens)})
            })
            .collect();
        let reply = self.worker.request("decode", json!({ "batch": items }))?;
        list(&reply, "images", batch.len())
            .map_err(|e| self.bad("decode", e))?
            .iter()
            .enumerate()
            .map(|(k, v)| {
                image_from_json(v).map_err(|e| self.bad("decode", format!("images[{k}]: {e}")))
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(ModelFault::from)
    }

    fn log_prob(&self, prompt: &str, tokens: &[u32], seed: u64) -> Result<f64, ModelFault> {
        if !self.log_prob {
            return Err(format!(
                "{}: the worker does not declare the \"log_prob\" capability (needed by DPO)",
                self.worker.label()
            )
            .into());
        }
        let reply = self.worker.request(
            "log_prob",
            json!({"prompt": prompt, "tokens": tokens_to_json(tokens), "seed": seed}),
        )?;
        let lp = number(&reply, "log_prob").map_err(|e| self.bad("log_prob", e))?;
        if lp.is_nan() || lp == f64::INFINITY {
            return Err(ModelFault::non_finite(format!(
                "generator {} returned a {NON_FINITE} log-probability for {prompt:?}",
                self.name
            )));
        }
        Ok(lp)
    }
}
