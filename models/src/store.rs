//! Weights on disk: burnpack files (burn-store) written atomically, optionally in half precision,
//! and loaded with a strict architecture check — every missing, unused or mis-shaped tensor is
//! named, so a weights file of another architecture never loads silently.

use burn::module::Module;
use burn::prelude::Backend;
use burn_store::{BurnpackStore, HalfPrecisionAdapter, ModuleSnapshot};
use harness::fsutil;
use std::path::Path;

/// Errors of model loading and saving; each names the model and the file.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("{what}: {message}")]
    Weights { what: String, message: String },
    #[error("{0}")]
    Harness(#[from] harness::Error),
    #[error("{what}: config {message}")]
    Config { what: String, message: String },
    /// A run setting this model cannot honour (`field` names the setting).
    #[error("{field}: {message}")]
    Refused { field: String, message: String },
    /// A step of a longer job that failed, said in full by its message.
    #[error("{0}")]
    Failed(String),
    /// A device the backend cannot use here (not built in, or it failed to start).
    #[error("device {device}: {message}")]
    Device { device: String, message: String },
}

impl ModelError {
    /// A configuration problem of `what`.
    pub fn config(what: impl Into<String>, message: impl Into<String>) -> Self {
        ModelError::Config {
            what: what.into(),
            message: message.into(),
        }
    }
}

/// Serialises a module's parameters (f16 for conv/linear/embedding/norm weights when `half`;
/// BatchNorm statistics stay f32 because running variances underflow in f16).
pub fn module_to_bytes<B: Backend, M: Module<B>>(
    module: &M,
    half: bool,
    what: &str,
) -> Result<Vec<u8>, ModelError> {
    let mut store = BurnpackStore::from_bytes(None).metadata("producer_app", "evalcot");
    if half {
        store = store.with_to_adapter(HalfPrecisionAdapter::new());
    }
    module
        .save_into(&mut store)
        .map_err(|e| ModelError::Weights {
            what: what.into(),
            message: format!("cannot serialise weights: {e}"),
        })?;
    let bytes = store.get_bytes().map_err(|e| ModelError::Weights {
        what: what.into(),
        message: format!("cannot serialise weights: {e}"),
    })?;
    Ok(bytes.to_vec())
}

/// Writes a module's weights atomically.
pub fn save_module<B: Backend, M: Module<B>>(
    module: &M,
    path: &Path,
    half: bool,
) -> Result<(), ModelError> {
    let bytes = module_to_bytes(module, half, &path.display().to_string())?;
    fsutil::write_atomic(path, &bytes)?;
    Ok(())
}

/// Loads weights into a freshly initialised module of the expected architecture. Any tensor that
/// is missing, left over or of another shape is an error listing them.
pub fn module_from_bytes<B: Backend, M: Module<B>>(
    mut module: M,
    bytes: Vec<u8>,
    what: &str,
) -> Result<M, ModelError> {
    let err = |message: String| ModelError::Weights {
        what: what.into(),
        message,
    };
    let mut store = BurnpackStore::from_bytes(Some(burn::tensor::Bytes::from_bytes_vec(bytes)))
        .with_from_adapter(HalfPrecisionAdapter::new());
    let result = module
        .load_from(&mut store)
        .map_err(|e| err(format!("not a weights file for this architecture: {e}")))?;
    let mut problems = Vec::new();
    if !result.errors.is_empty() {
        problems.push(format!(
            "{} tensors do not fit: {:?}",
            result.errors.len(),
            result.errors
        ));
    }
    if !result.missing.is_empty() {
        let names: Vec<&str> = result.missing.iter().map(|(p, _)| p.as_str()).collect();
        problems.push(format!("missing tensors: {}", names.join(", ")));
    }
    if !result.unused.is_empty() {
        problems.push(format!(
            "tensors of another architecture: {}",
            result.unused.join(", ")
        ));
    }
    if !problems.is_empty() {
        return Err(err(format!(
            "architecture mismatch: {}",
            problems.join("; ")
        )));
    }
    Ok(in_backend_precision(module))
}

/// The module with every float parameter in its backend's float type. Loading widens the stored
/// half-precision weights to f32, and burn 0.21 tensors keep their own dtype whatever the
/// backend's element type: without this cast a half-precision backend (`--device cuda-f16`)
/// would run f32 weights against f16 inputs (measured: NaN detector scores) or compute the
/// generator in f32 throughout. A no-op on f32 backends.
fn in_backend_precision<B: Backend, M: Module<B>>(module: M) -> M {
    use burn::tensor::Element;
    let dtype = <B::FloatElem as Element>::dtype();
    if dtype == burn::tensor::DType::F32 {
        return module;
    }
    cast_floats(module, dtype)
}

/// The module with every float parameter cast to `dtype`.
fn cast_floats<B: Backend, M: Module<B>>(module: M, dtype: burn::tensor::DType) -> M {
    struct Cast(burn::tensor::DType);
    impl<B: Backend> burn::module::ModuleMapper<B> for Cast {
        fn map_float<const D: usize>(
            &mut self,
            param: burn::module::Param<burn::tensor::Tensor<B, D>>,
        ) -> burn::module::Param<burn::tensor::Tensor<B, D>> {
            let dtype = self.0;
            if param.val().dtype() == dtype {
                return param;
            }
            param.map(|t| t.cast(dtype))
        }
    }
    module.map(&mut Cast(dtype))
}

/// Reads weights from a file into `module` (see [`module_from_bytes`]).
pub fn load_module<B: Backend, M: Module<B>>(module: M, path: &Path) -> Result<M, ModelError> {
    let bytes = std::fs::read(path).map_err(|e| harness::Error::io(path, e))?;
    module_from_bytes(module, bytes, &path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Cpu;
    use burn::module::{ModuleVisitor, Param};
    use burn::tensor::{DType, Tensor};

    /// The dtypes of a module's float parameters, with how many of each.
    fn float_dtypes<M: Module<Cpu>>(module: &M) -> Vec<(DType, usize)> {
        struct Dtypes(Vec<(DType, usize)>);
        impl ModuleVisitor<Cpu> for Dtypes {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<Cpu, D>>) {
                let dtype = param.val().dtype();
                match self.0.iter_mut().find(|(d, _)| *d == dtype) {
                    Some((_, n)) => *n += 1,
                    None => self.0.push((dtype, 1)),
                }
            }
        }
        let mut v = Dtypes(Vec::new());
        module.visit(&mut v);
        v.0
    }

    /// Loading leaves an f32 backend's weights in f32 (half-precision files are widened), and
    /// the cast a half-precision backend gets turns every float parameter into its type — the
    /// fix for the NaN scores of `--device cuda-f16` (docs/performance.md) — with
    /// values kept to f16 precision.
    #[test]
    fn loaded_weights_take_the_backends_float_type() {
        let (cfg, bytes, _) = crate::testutil::tiny_net(false, 1, 3, 1);
        let device = Default::default();
        let net = module_from_bytes(cfg.init::<Cpu>(&device), bytes, "tiny").unwrap();
        let f32s = float_dtypes(&net);
        assert_eq!(f32s.len(), 1, "{f32s:?}");
        assert_eq!(f32s[0].0, DType::F32);
        let half = cast_floats(net.clone(), DType::F16);
        assert_eq!(float_dtypes(&half), vec![(DType::F16, f32s[0].1)]);
        let back = cast_floats(half, DType::F32);
        let (a, b) = (net.pos.val(), back.pos.val());
        let err: f32 = (a.clone() - b).abs().max().into_scalar();
        let scale: f32 = a.abs().max().into_scalar();
        assert!(err <= scale * 1e-3, "{err} against {scale}");
    }
}
