//! The worker side of the protocol for any in-process model: `evalcot serve …` runs evalcot's own
//! generator, judge or detector as a worker. It is the reference implementation of PROTOCOL.md
//! and lets a model run in another process (or behind ssh on another machine).

use crate::wire::{image_from_json, image_to_json, tokens_from_json, tokens_to_json};
use crate::worker::{PROTOCOL, PROTOCOL_2};
use harness::detector::Detector;
use harness::error::ModelFault;
use harness::generator::{Generator, Trajectory, MASK};
use harness::judge::{Judge, JudgeRequest, JudgeTask};
use harness::Metadata;
use serde_json::{json, Value};
use std::io::{BufRead, Write};

/// What a served model answers, op by op.
trait Handler {
    fn role(&self) -> &'static str;
    fn hello(&self) -> Value;
    fn handle(&mut self, op: &str, request: &Value) -> Result<Value, ModelFault>;
}

/// Serves requests from `input` until it closes. Every request gets a reply; a malformed one gets
/// `ok: false` naming the problem.
fn serve(
    handler: &mut dyn Handler,
    input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<()> {
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let request: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                writeln!(
                    output,
                    "{}",
                    json!({"id": null, "ok": false, "error": format!("request is not JSON: {e}")})
                )?;
                output.flush()?;
                continue;
            }
        };
        let id = request.get("id").cloned().unwrap_or(Value::Null);
        let op = request.get("op").and_then(Value::as_str).unwrap_or("");
        let result = if op == "hello" {
            let protocol = request.get("protocol").and_then(Value::as_str);
            let role = request.get("role").and_then(Value::as_str);
            if protocol != Some(PROTOCOL) {
                Err(ModelFault::Failed(format!(
                    "this worker speaks {PROTOCOL}, not {protocol:?}"
                )))
            } else if role != Some(handler.role()) {
                Err(ModelFault::Failed(format!(
                    "this worker is a {}, not a {role:?}",
                    handler.role()
                )))
            } else {
                Ok(handler.hello())
            }
        } else {
            handler.handle(op, &request)
        };
        let mut reply = match result {
            Ok(Value::Object(fields)) => fields,
            Ok(other) => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), other);
                m
            }
            Err(e) => {
                let mut m = serde_json::Map::new();
                if e.is_non_finite() {
                    m.insert("non_finite".into(), true.into());
                }
                m.insert("error".into(), String::from(e).into());
                m.insert("ok".into(), false.into());
                m
            }
        };
        reply.entry("ok").or_insert(true.into());
        reply.insert("id".into(), id);
        writeln!(output, "{}", Value::Object(reply))?;
        output.flush()?;
    }
    Ok(())
}

fn items<'a>(request: &'a Value, name: &str) -> Result<&'a Vec<Value>, String> {
    request
        .get(name)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("\"{name}\": expected a list"))
}

fn uint(v: &Value, name: &str) -> Result<u64, String> {
    v.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| format!("\"{name}\": expected a whole number"))
}

fn text<'a>(v: &'a Value, name: &str) -> Result<&'a str, String> {
    v.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("\"{name}\": expected a string"))
}

/// How a served generator hands its candidates to evalcot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServeState {
    /// evalcot-ext/1: tokens (the reference).
    #[default]
    Tokens,
    /// evalcot-ext/2: an opaque state (here the tokens, packed) and a preview image with every
    /// step, as a diffusion worker sends its latents and decoded x0.
    Opaque,
    /// evalcot-ext/2 without steps: whole images from `generate`.
    Whole,
}

/// How the served generator is configured per request: its guidance scale, and one sampling
/// option (an error names an option it does not know).
pub struct Configure<'a, G> {
    pub cfg: &'a dyn Fn(&mut G, f64),
    pub option: &'a dyn Fn(&mut G, &str, &Value) -> Result<(), String>,
}

struct GeneratorHandler<'a, G: Generator> {
    generator: &'a mut G,
    configure: Configure<'a, G>,
    default_cfg: Option<f64>,
    state: ServeState,
}

/// An opaque state: the tokens and the prediction, each as a count and little-endian u32s.
fn pack(t: &Trajectory) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + 4 * (t.tokens.len() + t.prediction.len()));
    for v in [&t.tokens, &t.prediction] {
        b.extend_from_slice(&(v.len() as u32).to_le_bytes());
        for x in v.iter() {
            b.extend_from_slice(&x.to_le_bytes());
        }
    }
    b
}

fn unpack(b: &[u8]) -> Result<(Vec<u32>, Vec<u32>), String> {
    let mut words = b
        .chunks(4)
        .map(|c| <[u8; 4]>::try_from(c).map(u32::from_le_bytes));
    let mut take = || -> Result<Vec<u32>, String> {
        let bad = || "\"state\": not a state this worker wrote".to_string();
        let n = words.next().ok_or_else(bad)?.map_err(|_| bad())? as usize;
        (0..n)
            .map(|_| words.next().ok_or_else(bad)?.map_err(|_| bad()))
            .collect()
    };
    let tokens = take()?;
    let prediction = take()?;
    Ok((tokens, prediction))
}

impl<G: Generator> GeneratorHandler<'_, G> {
    /// Applies a request's guidance scale and (ext/2) options.
    fn configure(&mut self, request: &Value) -> Result<(), String> {
        if let Some(s) = request.get("cfg_scale").and_then(Value::as_f64) {
            (self.configure.cfg)(self.generator, s);
        }
        if let Some(o) = request.get("options").and_then(Value::as_object) {
            for (k, v) in o {
                (self.configure.option)(self.generator, k, v)?;
            }
        }
        Ok(())
    }

    fn image(&self, t: &Trajectory) -> Result<Value, ModelFault> {
        let images = self.generator.decode(std::slice::from_ref(t))?;
        Ok(images
            .first()
            .map(image_to_json)
            .transpose()?
            .unwrap_or(Value::Null))
    }
}

impl<G: Generator> Handler for GeneratorHandler<'_, G> {
    fn role(&self) -> &'static str {
        "generator"
    }

    fn hello(&self) -> Value {
        let (r, c) = self.generator.grid();
        let common = json!({
            "name": self.generator.name(),
            "default_steps": self.generator.default_steps(),
            "default_cfg_scale": self.default_cfg,
        });
        let mut h = match self.state {
            ServeState::Tokens => {
                json!({"grid": [r, c], "capabilities": ["remask", "log_prob"]})
            }
            ServeState::Opaque => json!({"protocol": PROTOCOL_2, "state": "opaque"}),
            ServeState::Whole => json!({
                "protocol": PROTOCOL_2, "stepwise": false, "capabilities": ["generate"],
            }),
        };
        if let (Some(h), Value::Object(c)) = (h.as_object_mut(), common) {
            h.extend(c);
        }
        h
    }

    fn handle(&mut self, op: &str, request: &Value) -> Result<Value, ModelFault> {
        let (r, c) = self.generator.grid();
        let len = r * c;
        match (op, self.state) {
            ("step", ServeState::Opaque) => {
                self.configure(request)?;
                let mut batch = items(request, "batch")?
                    .iter()
                    .map(|t| {
                        let mut traj = Trajectory::new(
                            text(t, "prompt")?,
                            uint(t, "seed")?,
                            uint(t, "steps")? as usize,
                            len,
                        );
                        traj.step = uint(t, "step")? as usize;
                        match t.get("state") {
                            None | Some(Value::Null) => {}
                            Some(v) => {
                                let bytes = crate::wire::bytes_from_json(v)?;
                                (traj.tokens, traj.prediction) = unpack(&bytes)?;
                            }
                        }
                        Ok(traj)
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                self.generator.step(&mut batch)?;
                let out = batch
                    .iter()
                    .map(|t| {
                        Ok(json!({
                            "state": crate::wire::bytes_to_json(&pack(t)),
                            "preview": self.image(t)?,
                            "forwards": t.forwards,
                        }))
                    })
                    .collect::<Result<Vec<_>, ModelFault>>()?;
                Ok(json!({ "batch": out }))
            }
            ("decode", ServeState::Opaque) => {
                let images = items(request, "batch")?
                    .iter()
                    .map(|t| {
                        let mut traj = Trajectory::new(text(t, "prompt")?, 0, 1, len);
                        if let Some(v) = t.get("state").filter(|v| !v.is_null()) {
                            (traj.tokens, traj.prediction) =
                                unpack(&crate::wire::bytes_from_json(v)?)?;
                        }
                        self.image(&traj)
                    })
                    .collect::<Result<Vec<_>, ModelFault>>()?;
                Ok(json!({ "images": images }))
            }
            ("generate", ServeState::Whole) => {
                self.configure(request)?;
                let mut batch = items(request, "batch")?
                    .iter()
                    .map(|t| {
                        Ok(Trajectory::new(
                            text(t, "prompt")?,
                            uint(t, "seed")?,
                            uint(t, "steps")? as usize,
                            len,
                        ))
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                self.generator.run_to_end(&mut batch)?;
                let out = batch
                    .iter()
                    .map(|t| Ok(json!({"image": self.image(t)?, "forwards": t.forwards})))
                    .collect::<Result<Vec<_>, ModelFault>>()?;
                Ok(json!({ "batch": out }))
            }
            (_, ServeState::Opaque | ServeState::Whole) => Err(format!(
                "unknown op {op:?} for this generator ({})",
                if self.state == ServeState::Whole {
                    "generate"
                } else {
                    "step, decode"
                }
            )
            .into()),
            ("step", ServeState::Tokens) => {
                self.configure(request)?;
                let mut batch = items(request, "batch")?
                    .iter()
                    .map(|t| {
                        let tokens = tokens_from_json(t.get("tokens"), "tokens", len, true)?;
                        let prompt = text(t, "prompt")?;
                        Ok(Trajectory {
                            prompt: prompt.to_string(),
                            seed: uint(t, "seed")?,
                            step: uint(t, "step")? as usize,
                            steps: uint(t, "steps")? as usize,
                            schedule_masked: uint(t, "schedule_masked")? as usize,
                            tokens,
                            prediction: Vec::new(),
                            forwards: 0,
                            state: None,
                            preview: None,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                self.generator.step(&mut batch)?;
                Ok(json!({"batch": batch.iter().map(|t| json!({
                    "tokens": tokens_to_json(&t.tokens),
                    "prediction": tokens_to_json(&t.prediction),
                    "forwards": t.forwards,
                })).collect::<Vec<_>>()}))
            }
            ("decode", ServeState::Tokens) => {
                let batch = items(request, "batch")?
                    .iter()
                    .map(|t| {
                        let tokens = tokens_from_json(t.get("tokens"), "tokens", len, true)?;
                        let mut traj = Trajectory::new(text(t, "prompt")?, 0, 1, len);
                        if !tokens.contains(&MASK) {
                            traj.prediction.clone_from(&tokens);
                        }
                        traj.tokens = tokens;
                        Ok(traj)
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                let images = self.generator.decode(&batch)?;
                Ok(
                    json!({"images": images.iter().map(image_to_json).collect::<Result<Vec<_>, _>>()?}),
                )
            }
            ("log_prob", ServeState::Tokens) => {
                let tokens = tokens_from_json(request.get("tokens"), "tokens", len, false)?;
                let lp = self.generator.log_prob(
                    text(request, "prompt")?,
                    &tokens,
                    uint(request, "seed")?,
                )?;
                Ok(json!({ "log_prob": lp }))
            }
            (other, ServeState::Tokens) => {
                Err(format!("unknown op {other:?} for a generator (step, decode, log_prob)").into())
            }
        }
    }
}

/// Serves `generator`, handing candidates over as `state` says; `configure` applies a
/// request's guidance scale and sampling options.
pub fn serve_generator<G: Generator>(
    generator: &mut G,
    default_cfg: Option<f64>,
    configure: Configure<'_, G>,
    state: ServeState,
    input: impl BufRead,
    output: impl Write,
) -> std::io::Result<()> {
    let mut h = GeneratorHandler {
        generator,
        configure,
        default_cfg,
        state,
    };
    serve(&mut h, input, output)
}

struct JudgeHandler<'a>(&'a dyn Judge);

impl Handler for JudgeHandler<'_> {
    fn role(&self) -> &'static str {
        "judge"
    }

    fn hello(&self) -> Value {
        json!({"name": self.0.name(), "tasks": JudgeTask::ALL.map(|t| t.as_str())})
    }

    fn handle(&mut self, op: &str, request: &Value) -> Result<Value, ModelFault> {
        if op != "judge" {
            return Err(format!("unknown op {op:?} for a judge (judge)").into());
        }
        let parsed = items(request, "requests")?
            .iter()
            .map(|r| {
                let task: JudgeTask = serde_json::from_value(
                    r.get("task").cloned().unwrap_or(Value::Null),
                )
                .map_err(|_| {
                    "\"task\": expected final, step, clarity, potential or reflect".to_string()
                })?;
                let metadata = Metadata::from_value(r.get("metadata").unwrap_or(&Value::Null))
                    .map_err(|e| format!("\"metadata\": {e}"))?;
                let step = match r.get("step") {
                    None | Some(Value::Null) => None,
                    Some(s) => Some(
                        serde_json::from_value::<(usize, usize)>(s.clone())
                            .map_err(|_| "\"step\": expected [step, steps] or null".to_string())?,
                    ),
                };
                let image = image_from_json(r.get("image").unwrap_or(&Value::Null))?;
                Ok((task, metadata, step, image))
            })
            .collect::<Result<Vec<_>, String>>()?;
        let requests: Vec<JudgeRequest<'_>> = parsed
            .iter()
            .map(|(task, metadata, step, image)| JudgeRequest {
                task: *task,
                image,
                metadata,
                step: *step,
            })
            .collect();
        let verdicts = self.0.judge(&requests)?;
        Ok(json!({ "verdicts": verdicts }))
    }
}

pub fn serve_judge(
    judge: &dyn Judge,
    input: impl BufRead,
    output: impl Write,
) -> std::io::Result<()> {
    serve(&mut JudgeHandler(judge), input, output)
}

struct DetectorHandler<'a>(&'a dyn Detector);

impl Handler for DetectorHandler<'_> {
    fn role(&self) -> &'static str {
        "detector"
    }

    fn hello(&self) -> Value {
        json!({"name": self.0.name(), "input_size": self.0.input_size()})
    }

    fn handle(&mut self, op: &str, request: &Value) -> Result<Value, ModelFault> {
        if op != "detect" {
            return Err(format!("unknown op {op:?} for a detector (detect)").into());
        }
        let images = items(request, "images")?
            .iter()
            .map(image_from_json)
            .collect::<Result<Vec<_>, String>>()?;
        let detections = self.0.detect(&images)?;
        // Full colour probabilities, so that a served detector scores exactly as in process.
        Ok(
            json!({"detections": detections.iter().map(|objs| objs.iter().map(|o| json!({
            "class": o.class.name(),
            "score": o.score,
            "box": o.bbox,
            "color_probs": o.color_probs,
        })).collect::<Vec<_>>()).collect::<Vec<_>>()}),
        )
    }
}

pub fn serve_detector(
    detector: &dyn Detector,
    input: impl BufRead,
    output: impl Write,
) -> std::io::Result<()> {
    serve(&mut DetectorHandler(detector), input, output)
}
