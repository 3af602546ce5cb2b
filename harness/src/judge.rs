//! The verifier interface. The paper's judges are a multimodal LLM asked yes/no questions about
//! (image, prompt); a verdict's score is the first-token P(yes). evalcot's judges (burn networks,
//! or external processes) answer the same questions through this trait, batched.

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

/// A yes/no verifier.
pub trait Judge: Send + Sync {
    fn name(&self) -> &str;
    /// One verdict per request, in order. A non-finite score is an error naming the judge.
    fn judge(&self, requests: &[JudgeRequest<'_>]) -> Result<Vec<Verdict>, String>;
}
