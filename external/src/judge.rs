//! An external judge (a multimodal LLM behind a process) behind the [`Judge`] trait.

use crate::generator::hello_name;
use crate::wire::{excerpt, image_to_json, number};
use crate::worker::{list, Pool};
use harness::error::ModelFault;
use harness::judge::{check_verdicts, ClauseVerdict, Judge, JudgeRequest, JudgeTask, Verdict};
use serde_json::{json, Value};
use std::time::Duration;

pub struct ExtJudge {
    worker: Pool,
    name: String,
    tasks: Vec<JudgeTask>,
}

impl ExtJudge {
    pub fn start(command: &str, timeout: Duration) -> Result<ExtJudge, String> {
        let (worker, hello) = Pool::start(command, "judge", timeout)?;
        let bad = |e: String| format!("{}: hello reply: {e}", worker.label());
        let name = hello_name(&hello).map_err(bad)?;
        let tasks: Vec<JudgeTask> = hello
            .get("tasks")
            .map(|t| serde_json::from_value(t.clone()))
            .transpose()
            .map_err(|_| {
                bad(format!(
                    "\"tasks\": expected a list of {}",
                    JudgeTask::ALL
                        .map(|t| format!("\"{}\"", t.as_str()))
                        .join(", ")
                ))
            })?
            .unwrap_or_else(|| JudgeTask::ALL.to_vec());
        Ok(ExtJudge {
            worker,
            name,
            tasks,
        })
    }

    fn bad(&self, e: String) -> String {
        format!("{}: judge reply: {e}", self.worker.label())
    }
}

/// A probability field: NaN stays NaN (the caller's non-finite check fails that image); a
/// finite value outside [0, 1] breaks the protocol.
fn probability(v: &Value, name: &str) -> Result<f64, String> {
    let p = number(v, name)?;
    if p.is_finite() && !(0.0..=1.0).contains(&p) {
        return Err(format!("\"{name}\": {p} is not a probability"));
    }
    Ok(p)
}

fn clause(v: &Value) -> Result<ClauseVerdict, String> {
    let region = match v.get("region") {
        None | Some(Value::Null) => None,
        Some(r) => Some(
            serde_json::from_value::<[Option<f32>; 4]>(r.clone())
                .map_err(|_| format!("\"region\": expected [x1, y1, x2, y2], found {r}"))?
                .map(|x| x.unwrap_or(f32::NAN)),
        ),
    };
    Ok(ClauseVerdict {
        clause: v
            .get("clause")
            .and_then(Value::as_str)
            .ok_or("\"clause\": expected the clause name, e.g. \"include[0]\"")?
            .to_string(),
        p_pass: probability(v, "p_pass")?,
        explanation: v
            .get("explanation")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        region,
    })
}

impl Judge for ExtJudge {
    fn name(&self) -> &str {
        &self.name
    }

    fn concurrent(&self) -> bool {
        // One process answers one request at a time; `--workers K` starts K.
        self.worker.concurrent()
    }

    fn judge(&self, requests: &[JudgeRequest<'_>]) -> Result<Vec<Verdict>, ModelFault> {
        if requests.is_empty() {
            return Ok(Vec::new());
        }
        let mut items = Vec::with_capacity(requests.len());
        for r in requests {
            if !self.tasks.contains(&r.task) {
                return Err(format!(
                    "{}: the worker does not answer task \"{}\" (its tasks: {})",
                    self.worker.label(),
                    r.task.as_str(),
                    self.tasks
                        .iter()
                        .map(|t| t.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
                .into());
            }
            items.push(json!({
                "task": r.task.as_str(),
                "prompt": r.metadata.prompt,
                "metadata": r.metadata.raw(),
                "step": r.step.map(|(s, t)| [s, t]),
                "image": image_to_json(r.image)?,
            }));
        }
        let reply = self.worker.request("judge", json!({ "requests": items }))?;
        let verdicts = list(&reply, "verdicts", requests.len())
            .map_err(|e| self.bad(e))?
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let at = |e: String| {
                    self.bad(format!("verdicts[{k}]: {e}: {}", excerpt(&v.to_string())))
                };
                let clauses = match v.get("clauses") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(cs)) => cs
                        .iter()
                        .map(clause)
                        .collect::<Result<_, _>>()
                        .map_err(at)?,
                    Some(_) => return Err(at("\"clauses\" is not a list".into())),
                };
                Ok(Verdict {
                    p_yes: probability(v, "p_yes").map_err(at)?,
                    clauses,
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        check_verdicts(&self.name, requests, &verdicts)?;
        Ok(verdicts)
    }
}
