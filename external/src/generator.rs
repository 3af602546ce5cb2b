//! An external step-wise generator behind the [`Generator`] trait.

use crate::wire::{
    bytes_from_json, bytes_to_json, image_from_json, number, tokens_from_json, tokens_to_json,
};
use crate::worker::{field, list, Pool, PROTOCOL_2};
use harness::error::ModelFault;
use harness::error::NON_FINITE;
use harness::generator::{Generator, Trajectory, MASK};
use image::RgbImage;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct ExtGenerator {
    worker: Pool,
    name: String,
    grid: (usize, usize),
    default_steps: usize,
    /// The guidance scale sent with every step (`None`: the worker's own choice).
    cfg_scale: Option<f64>,
    remask: bool,
    log_prob: bool,
    /// The worker speaks evalcot-ext/2 (options, opaque states, previews, `generate`).
    v2: bool,
    /// Candidates carry the worker's opaque `state` instead of tokens (ext/2 `"state": "opaque"`).
    opaque: bool,
    /// The worker has a `step` op (ext/2 `"stepwise": false`: whole images only, `generate`).
    stepwise: bool,
    /// Sampling options sent with every `step` and `generate` (ext/2).
    options: serde_json::Map<String, Value>,
}

impl ExtGenerator {
    pub fn start(command: &str, timeout: Duration) -> Result<ExtGenerator, String> {
        let (worker, hello) = Pool::start(command, "generator", timeout)?;
        let bad = |e: String| format!("{}: hello reply: {e}", worker.label());
        let v2 = hello.get("protocol").and_then(Value::as_str) == Some(PROTOCOL_2);
        let opaque = match (v2, hello.get("state").and_then(Value::as_str)) {
            (true, Some("opaque")) => true,
            (true, None | Some("tokens")) | (false, _) => false,
            (true, Some(other)) => {
                return Err(bad(format!(
                    "\"state\": {other:?}; expected \"tokens\" or \"opaque\""
                )))
            }
        };
        let stepwise = !v2 || hello.get("stepwise").and_then(Value::as_bool) != Some(false);
        let caps: Vec<String> = match hello.get("capabilities") {
            None => Vec::new(),
            Some(v) => serde_json::from_value(v.clone())
                .map_err(|_| bad("\"capabilities\": expected a list of names".into()))?,
        };
        let has = |c: &str| caps.iter().any(|x| x == c);
        if !stepwise && !has("generate") {
            return Err(bad(
                "\"stepwise\": false needs the \"generate\" capability (whole images)".into(),
            ));
        }
        // Token workers declare their grid; opaque and whole-image workers have none.
        let grid = if opaque || !stepwise {
            (0, 0)
        } else {
            field(&hello, "grid")
                .map_err(bad)?
                .as_array()
                .and_then(|g| match g.as_slice() {
                    [r, c] => Some((r.as_u64()? as usize, c.as_u64()? as usize)),
                    _ => None,
                })
                .filter(|&(r, c)| r > 0 && c > 0)
                .ok_or_else(|| bad("\"grid\": expected [rows, cols] of positive integers".into()))?
        };
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
        let name = hello_name(&hello).map_err(bad)?;
        Ok(ExtGenerator {
            name,
            grid,
            default_steps,
            cfg_scale,
            remask: has("remask") && !opaque,
            log_prob: has("log_prob") && !opaque,
            v2,
            opaque,
            stepwise,
            options: serde_json::Map::new(),
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

    /// Sampling options for every request (temperature, a sampler, any key the worker reads).
    /// An evalcot-ext/1 worker has no way to receive them: an error naming the first.
    pub fn set_options(
        &mut self,
        options: std::collections::BTreeMap<String, Value>,
    ) -> Result<(), String> {
        if let (false, Some(k)) = (self.v2, options.keys().next()) {
            return Err(format!(
                "{}: {k}: the worker speaks evalcot-ext/1, which carries no temperature or \
                 sampling options (an evalcot-ext/2 worker receives them as \"options\")",
                self.worker.label()
            ));
        }
        self.options = options.into_iter().collect();
        Ok(())
    }

    fn len(&self) -> usize {
        self.grid.0 * self.grid.1
    }

    fn bad(&self, op: &str, e: String) -> String {
        format!("{}: {op} reply: {e}", self.worker.label())
    }

    /// The fields every `step` and `generate` request carries.
    fn request_body(&self, items: Vec<Value>) -> Value {
        let mut body = json!({"cfg_scale": self.cfg_scale, "batch": items});
        if self.v2 {
            body["options"] = Value::Object(self.options.clone());
        }
        body
    }

    /// `generate`: whole images for fresh trajectories, each finished in one request.
    fn generate(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        let live: Vec<usize> = (0..batch.len()).filter(|&i| !batch[i].done()).collect();
        if live.is_empty() {
            return Ok(());
        }
        let items: Vec<Value> = live
            .iter()
            .map(|&i| {
                let t = &batch[i];
                json!({"prompt": t.prompt, "seed": t.seed, "steps": t.steps})
            })
            .collect();
        let reply = self.worker.request("generate", self.request_body(items))?;
        let out = list(&reply, "batch", live.len()).map_err(|e| self.bad("generate", e))?;
        for (k, (&i, r)) in live.iter().zip(out).enumerate() {
            let at = |e: String| self.bad("generate", format!("batch[{k}]: {e}"));
            let image = image_from_json(field(r, "image").map_err(at)?).map_err(at)?;
            let t = &mut batch[i];
            t.forwards = t.forwards.saturating_add(forwards(r).map_err(at)?);
            t.preview = Some(Arc::new(image));
            t.step = t.steps;
        }
        Ok(())
    }
}

/// A step or generate item's `forwards`.
fn forwards(r: &Value) -> Result<u64, String> {
    r.get("forwards")
        .and_then(Value::as_u64)
        .ok_or_else(|| "\"forwards\": expected a whole number".into())
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
        // One process answers one request at a time; `--workers K` starts K.
        self.worker.concurrent()
    }

    fn grid(&self) -> (usize, usize) {
        self.grid
    }

    fn default_steps(&self) -> usize {
        self.default_steps
    }

    fn opaque_state(&self) -> bool {
        self.opaque || !self.stepwise
    }

    fn run_to_end_is_stepping(&self) -> bool {
        self.stepwise
    }

    fn run_to_end(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        if !self.stepwise {
            return self.generate(batch);
        }
        while batch.iter().any(|t| !t.done()) {
            self.step(batch)?;
        }
        Ok(())
    }

    fn step(&self, batch: &mut [Trajectory]) -> Result<(), ModelFault> {
        let live: Vec<usize> = (0..batch.len()).filter(|&i| !batch[i].done()).collect();
        if live.is_empty() {
            return Ok(());
        }
        if !self.stepwise {
            return Err(format!(
                "{}: the worker makes whole images only (`generate`): strategies baseline, orm \
                 and oracle; prm, parm and parm++ judge intermediate steps",
                self.worker.label()
            )
            .into());
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
            let mut item = json!({
                "prompt": t.prompt,
                "seed": t.seed,
                "step": t.step,
                "steps": t.steps,
            });
            if self.opaque {
                item["state"] = t.state.as_ref().map_or(Value::Null, |s| bytes_to_json(s));
            } else {
                item["tokens"] = tokens_to_json(&t.tokens);
                item["schedule_masked"] = t.schedule_masked.into();
            }
            items.push(item);
        }
        let reply = self.worker.request("step", self.request_body(items))?;
        let out = list(&reply, "batch", live.len()).map_err(|e| self.bad("step", e))?;
        for (k, (&i, r)) in live.iter().zip(out).enumerate() {
            let at = |e: String| self.bad("step", format!("batch[{k}]: {e}"));
            let preview = match (self.v2, r.get("preview")) {
                (true, Some(v)) if !v.is_null() => Some(Arc::new(
                    image_from_json(v).map_err(|e| at(format!("preview: {e}")))?,
                )),
                _ => None,
            };
            let spent = forwards(r).map_err(at)?;
            let t = &mut batch[i];
            if self.opaque {
                let state = bytes_from_json(field(r, "state").map_err(at)?)
                    .map_err(|e| at(format!("\"state\": {e}")))?;
                t.state = Some(Arc::new(state));
            } else {
                let tokens =
                    tokens_from_json(r.get("tokens"), "tokens", self.len(), true).map_err(at)?;
                let prediction =
                    tokens_from_json(r.get("prediction"), "prediction", self.len(), false)
                        .map_err(at)?;
                let left = tokens.iter().filter(|&&x| x == MASK).count();
                if t.step + 1 >= t.steps && left > 0 {
                    return Err(at(format!(
                        "{left} positions still masked after the last step of the schedule"
                    ))
                    .into());
                }
                t.tokens = tokens;
                t.prediction = prediction;
            }
            t.preview = preview;
            t.step += 1;
            t.forwards = t.forwards.saturating_add(spent);
        }
        Ok(())
    }

    fn decode(&self, batch: &[Trajectory]) -> Result<Vec<RgbImage>, ModelFault> {
        // Previews (a diffusion model's x0, a generated image) need no request.
        let ask: Vec<usize> = (0..batch.len())
            .filter(|&i| batch[i].preview.is_none())
            .collect();
        let mut asked = Vec::new();
        if !ask.is_empty() {
            let items: Vec<Value> = ask
                .iter()
                .map(|&i| {
                    let t = &batch[i];
                    if self.opaque {
                        let state = t.state.as_ref().map_or(Value::Null, |s| bytes_to_json(s));
                        json!({"prompt": t.prompt, "state": state})
                    } else {
                        let tokens = if t.prediction.len() == t.tokens.len() {
                            &t.prediction
                        } else {
                            &t.tokens
                        };
                        json!({"prompt": t.prompt, "tokens": tokens_to_json(tokens)})
                    }
                })
                .collect();
            let reply = self.worker.request("decode", json!({ "batch": items }))?;
            asked = list(&reply, "images", ask.len())
                .map_err(|e| self.bad("decode", e))?
                .iter()
                .enumerate()
                .map(|(k, v)| {
                    image_from_json(v).map_err(|e| self.bad("decode", format!("images[{k}]: {e}")))
                })
                .collect::<Result<Vec<_>, String>>()?;
        }
        let mut asked = asked.into_iter();
        batch
            .iter()
            .map(|t| match &t.preview {
                Some(p) => Ok(p.as_ref().clone()),
                None => asked
                    .next()
                    .ok_or_else(|| ModelFault::from(self.bad("decode", "too few images".into()))),
            })
            .collect()
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
