//! Training checkpoints: model weights, optimizer state and loop state in ONE file, replaced
//! atomically, so a run killed at any moment resumes from the last complete checkpoint and
//! continues exactly as an uninterrupted run would (data depend on the step only).

use crate::store::ModelError;
use burn::module::AutodiffModule;
use burn::optim::Optimizer;
use burn::record::{BinBytesRecorder, FullPrecisionSettings, Recorder};
use burn::tensor::backend::AutodiffBackend;
use harness::fsutil;
use serde::{de::DeserializeOwned, Serialize};
use std::path::Path;

const MAGIC: &[u8; 8] = b"EVCTCKP1";

fn err(path: &Path, message: impl Into<String>) -> ModelError {
    ModelError::Weights {
        what: path.display().to_string(),
        message: message.into(),
    }
}

fn push_chunk(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(bytes);
}

fn take_chunk<'a>(data: &mut &'a [u8], path: &Path) -> Result<&'a [u8], ModelError> {
    if data.len() < 8 {
        return Err(err(path, "truncated checkpoint"));
    }
    let (len, rest) = data.split_at(8);
    let len = u64::from_le_bytes(len.try_into().map_err(|_| err(path, "bad length"))?) as usize;
    if rest.len() < len {
        return Err(err(path, "truncated checkpoint"));
    }
    let (chunk, rest) = rest.split_at(len);
    *data = rest;
    Ok(chunk)
}

/// Writes `state`, the model and the optimizer to `path` atomically.
pub fn save<B, M, O, S>(path: &Path, state: &S, model: &M, optim: &O) -> Result<(), ModelError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: Serialize,
{
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    let model_bytes = recorder
        .record(model.clone().into_record(), ())
        .map_err(|e| err(path, format!("cannot serialise the model: {e}")))?;
    let optim_bytes = recorder
        .record(optim.to_record(), ())
        .map_err(|e| err(path, format!("cannot serialise the optimizer: {e}")))?;
    let state_bytes = serde_json::to_vec(state).map_err(|e| err(path, e.to_string()))?;
    let mut out = MAGIC.to_vec();
    push_chunk(&mut out, &state_bytes);
    push_chunk(&mut out, &model_bytes);
    push_chunk(&mut out, &optim_bytes);
    fsutil::write_atomic(path, &out)?;
    Ok(())
}

/// Loads a checkpoint into a freshly initialised model and optimizer of the same configuration.
pub fn load<B, M, O, S>(
    path: &Path,
    model: M,
    optim: O,
    device: &B::Device,
) -> Result<(S, M, O), ModelError>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
    O: Optimizer<M, B>,
    S: DeserializeOwned,
{
    let bytes = std::fs::read(path).map_err(|e| harness::Error::io(path, e))?;
    let mut data = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| err(path, "not an evalcot checkpoint"))?;
    let state_bytes = take_chunk(&mut data, path)?;
    let model_bytes = take_chunk(&mut data, path)?.to_vec();
    let optim_bytes = take_chunk(&mut data, path)?.to_vec();
    let state: S = serde_json::from_slice(state_bytes)
        .map_err(|e| err(path, format!("bad checkpoint state: {e}")))?;
    let recorder = BinBytesRecorder::<FullPrecisionSettings>::default();
    // A record of another architecture can make the binary decoder panic; keep that an error.
    let model_record = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        recorder.load(model_bytes, device)
    }))
    .map_err(|_| err(path, "model record does not match this architecture"))?
    .map_err(|e| {
        err(
            path,
            format!("model record does not match this architecture: {e}"),
        )
    })?;
    let optim_record = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        recorder.load(optim_bytes, device)
    }))
    .map_err(|_| err(path, "optimizer record does not match this architecture"))?
    .map_err(|e| err(path, format!("optimizer record does not match: {e}")))?;
    Ok((
        state,
        model.load_record(model_record),
        optim.load_record(optim_record),
    ))
}
