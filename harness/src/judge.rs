//! The verifier interface. The paper's judges are a multimodal LLM asked yes/no questions about
//! (image, prompt); a verdict's score is the first-token P(yes). evalcot's judges (burn networks,
//! or external processes) answer the same questions through this trait, batched.

use crate::error::ModelFault;
use crate::Metadata;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Which question is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JudgeTask {
    /// ORM: does this final image show the prompt?
    Final,
    /// PRM: does this intermediate image (full current prediction) show the prompt?
    Step,
    /// PARM: is this step clear enough to judge?
    Clarity,
    /// PARM: will this path end in an image that shows the prompt?
    Potential,
    /// PARM++: which clause fails (per-clause verdicts and the region to blame)?
    Reflect,
}

impl JudgeTask {
    pub const ALL: [JudgeTask; 5] = [
        JudgeTask::Final,
        JudgeTask::Step,
        JudgeTask::Clarity,
        JudgeTask::Potential,
        JudgeTask::Reflect,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JudgeTask::Final => "final",
            JudgeTask::Step => "step",
            JudgeTask::Clarity => "clarity",
            JudgeTask::Potential => "potential",
            JudgeTask::Reflect => "reflect",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// One question about one image.
#[derive(Debug, Clone)]
pub struct JudgeRequest<'a> {
    pub task: JudgeTask,
    pub image: &'a RgbImage,
    pub metadata: &'a Metadata,
    /// `(step, steps)` for intermediate images; `None` for final images.
    pub step: Option<(usize, usize)>,
}

/// A reflection on one clause of the prompt.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClauseVerdict {
    /// `include[i]` or `exclude[i]`.
    pub clause: String,
    /// P(the clause holds).
    pub p_pass: f64,
    /// What the judge sees, e.g. "expected 3 dog, found 2".
    pub explanation: String,
    /// Box `[x1, y1, x2, y2]` in image pixels to blame, when the judge can localise the failure.
    pub region: Option<[f32; 4]>,
}

/// A judge's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// P(yes) — for `Potential`, P(no) = 1 − p_yes is what PARM ranks fallbacks by.
    pub p_yes: f64,
    /// Per-clause reflection (only for `Reflect`).
    pub clauses: Vec<ClauseVerdict>,
}

/// Checks a judge's answer to `requests`: one verdict per request, and every P(yes), clause
/// P(pass) and blamed region finite. A NaN or an infinity is an error naming the judge, the task
/// and the input (prompt and step), never a verdict.
pub fn check_verdicts(
    judge: &str,
    requests: &[JudgeRequest<'_>],
    verdicts: &[Verdict],
) -> Result<(), ModelFault> {
    if verdicts.len() != requests.len() {
        return Err(ModelFault::Failed(format!(
            "judge {judge} returned {} verdicts for {} requests",
            verdicts.len(),
            requests.len()
        )));
    }
    for (r, v) in requests.iter().zip(verdicts) {
        let bad = if !v.p_yes.is_finite() {
            Some(format!("P(yes) {}", v.p_yes))
        } else {
            v.clauses.iter().find_map(|c| {
                if !c.p_pass.is_finite() {
                    Some(format!("P(pass) {} of clause {}", c.p_pass, c.clause))
                } else if c.region.is_some_and(|b| b.iter().any(|x| !x.is_finite())) {
                    Some(format!("region {:?} of clause {}", c.region, c.clause))
                } else {
                    None
                }
            })
        };
        if let Some(what) = bad {
            let step = r
                .step
                .map_or(String::new(), |(s, t)| format!(" at step {s}/{t}"));
            return Err(ModelFault::non_finite(format!(
                "judge {judge} returned a {} {what} for task {} on prompt {:?}{step}",
                crate::error::NON_FINITE,
                r.task.as_str(),
                r.metadata.prompt
            )));
        }
    }
    Ok(())
}

/// A yes/no verifier.
pub trait Judge: Send + Sync {
    fn name(&self) -> &str;
    /// Whether requests may come from several threads at once (see
    /// [`crate::generator::Generator::concurrent`]).
    fn concurrent(&self) -> bool {
        true
    }
    /// One verdict per request, in order. A non-finite score is an error naming the judge.
    fn judge(&self, requests: &[JudgeRequest<'_>]) -> Result<Vec<Verdict>, ModelFault>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_verdicts_name_judge_task_and_prompt() {
        let suite = crate::Suite::official();
        let image = RgbImage::new(4, 4);
        let request = JudgeRequest {
            task: JudgeTask::Reflect,
            image: &image,
            metadata: &suite.prompts[0].metadata,
            step: Some((2, 6)),
        };
        let clause = |p_pass: f64, region: Option<[f32; 4]>| ClauseVerdict {
            clause: "include[0]".into(),
            p_pass,
            explanation: String::new(),
            region,
        };
        let ok = Verdict {
            p_yes: 0.5,
            clauses: vec![clause(0.9, Some([0.0, 0.0, 1.0, 1.0]))],
        };
        check_verdicts(
            "j",
            std::slice::from_ref(&request),
            std::slice::from_ref(&ok),
        )
        .unwrap();
        for (bad, want) in [
            (
                Verdict {
                    p_yes: f64::NAN,
                    ..ok.clone()
                },
                "P(yes) NaN",
            ),
            (
                Verdict {
                    p_yes: 0.5,
                    clauses: vec![clause(f64::INFINITY, None)],
                },
                "P(pass) inf of clause include[0]",
            ),
            (
                Verdict {
                    p_yes: 0.5,
                    clauses: vec![clause(0.2, Some([0.0, f32::NAN, 1.0, 1.0]))],
                },
                "region",
            ),
        ] {
            let fault = check_verdicts("j", std::slice::from_ref(&request), &[bad]).unwrap_err();
            let e = fault.message();
            assert!(
                e.contains("judge j returned a non-finite")
                    && e.contains(want)
                    && e.contains("task reflect on prompt \"a photo of a bench\" at step 2/6"),
                "{e}"
            );
            assert!(fault.is_non_finite(), "{fault:?}");
        }
        let fault = check_verdicts("j", std::slice::from_ref(&request), &[]).unwrap_err();
        assert!(!fault.is_non_finite() && fault.message().contains("0 verdicts for 1 requests"));
    }
}
