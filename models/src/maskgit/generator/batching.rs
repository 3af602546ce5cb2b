//! How a sampling step groups its work (speed and memory only, never a number).

/// How a sampling step groups its work. Every trajectory's step depends on itself only, so no
/// setting changes a number (`batched_steps_equal_single_steps`); they trade memory for fewer,
/// larger kernels and fewer waits for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    /// Trajectories per forward pass (each a CFG pair of rows).
    pub trajectories_per_forward: usize,
    /// Masked tokens whose logits are computed at once.
    pub rows_per_slice: usize,
}

impl Batching {
    /// For the CPU: forwards of 32 trajectories bound a step's memory (PARM batches 160
    /// candidates: peak 0.53 → 0.31 GB at the same speed); 256 rows of the CFG pair over 8,192
    /// codes is a 16 MiB buffer, small enough for the allocator to reuse.
    pub const CPU: Batching = Batching {
        trajectories_per_forward: 32,
        rows_per_slice: 256,
    };

    /// For a GPU: PARM at 553 × 4 on an H200 with device draws took 181 s at 512 trajectories
    /// per forward against 222 s (host draws) at the CPU's 32; wider slices (32,768 rows) and
    /// 2–16 worker threads changed little (docs/performance.md).
    pub const GPU: Batching = Batching {
        trajectories_per_forward: 512,
        rows_per_slice: 4096,
    };

    /// The batching for a device, with a run's choices applied: a forward width without a slice
    /// size keeps 8 rows per trajectory.
    pub fn resolve(gpu: bool, choice: BatchingChoice) -> Batching {
        let base = if gpu { Batching::GPU } else { Batching::CPU };
        let Some(t) = choice.forward_batch else {
            return Batching {
                rows_per_slice: choice.slice_rows.unwrap_or(base.rows_per_slice),
                ..base
            };
        };
        let t = t.max(1);
        Batching {
            trajectories_per_forward: t,
            rows_per_slice: choice.slice_rows.unwrap_or(t.saturating_mul(8)),
        }
    }
}

/// A run's batching choices (`run --forward-batch`, `--slice-rows`); absent ones take the
/// device's [`Batching`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchingChoice {
    pub forward_batch: Option<usize>,
    pub slice_rows: Option<usize>,
}

impl BatchingChoice {
    /// Whether any choice was made.
    pub fn is_set(&self) -> bool {
        self.forward_batch.is_some() || self.slice_rows.is_some()
    }
}

impl Default for Batching {
    fn default() -> Self {
        Batching::CPU
    }
}
