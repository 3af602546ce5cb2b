//! Teacher-forced rows of the AR family, shared by training, DPO and `log_prob`.

use super::model::bos;
use crate::maskgit::data::HostBatch;
use crate::maskgit::MaskGitConfig;

/// One teacher-forced row: the input is BOS then the grid shifted by one, every position a
/// target (`masked` all ones, so `MaskGit::masked_log_prob` is the sequence log-probability).
pub(super) fn push_raster(host: &mut HostBatch, text: &[i64], grid: &[u32], net: &MaskGitConfig) {
    let n = net.image_tokens;
    host.text.extend_from_slice(text);
    host.input.push(bos(net) as i64);
    host.input.extend(grid[..n - 1].iter().map(|&v| v as i64));
    host.targets.extend(grid.iter().map(|&v| v as i64));
    host.masked.extend(std::iter::repeat_n(1.0, n));
}
