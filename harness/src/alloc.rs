//! Allocator settings for the binaries (call [`tune`] first thing in `main`).

/// glibc's defaults return every large tensor buffer to the kernel when it is freed (mmap and
/// trim thresholds), so each generator step faults its buffers in again page by page, and two
/// threads doing so contend on the process's memory map: PARM's main job kept 1.3 of its 2
/// cores busy. Keeping freed memory in the heap (reused by the next step) removes both. The
/// values are glibc's largest mmap threshold (32 MiB) and a trim threshold no run reaches.
/// Allocation sizes only: no number changes. Other platforms keep their allocator's defaults.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
