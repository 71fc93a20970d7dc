//! NCCL's and CUDA's failures as one line naming the rank and the operation.

use cudarc::driver::DriverError;
use cudarc::nccl::result::NcclError;
use finetune_core::{Error, Result};
use std::ffi::CStr;

/// `rank R: NCCL OP failed: ncclCode (NCCL's description)`.
pub(super) fn nccl(rank: usize, op: &str) -> impl FnOnce(NcclError) -> Error + '_ {
    move |e| {
        // SAFETY: ncclGetErrorString takes any result code and returns a static C string; the
        // library is loaded, since the failing call came from it.
        let text = unsafe { CStr::from_ptr(cudarc::nccl::sys::ncclGetErrorString(e.0)) };
        Error::config(format!(
            "rank {rank}: NCCL {op} failed: {:?} ({})",
            e.0,
            text.to_string_lossy().trim_end_matches('.')
        ))
    }
}

/// `rank R: OP failed: CUDA_ERROR_…`.
pub(super) fn cuda(rank: usize, op: &str) -> impl FnOnce(DriverError) -> Error + '_ {
    move |e| Error::config(format!("rank {rank}: {op} failed: {e}"))
}

/// Runs `f`, turning a panic into an error: with dynamically loaded libraries, cudarc panics
/// when it cannot find `libcuda` or `libnccl` (its message names the library and the paths
/// searched). The panic hook is silenced meanwhile, so the message is printed once, in the
/// error; only the communicator's creation runs through here, once per process.
pub(super) fn no_panic<T>(rank: usize, op: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(hook);
    caught.unwrap_or_else(|payload| {
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        Err(Error::config(format!("rank {rank}: {op} failed: {msg}")))
    })
}
