//! glibc's `malloc` set up for a training loop: freed memory is kept for the next step.
//!
//! Every step allocates and frees the same activations and gradients, many of them megabytes
//! each. With glibc's defaults a block above the mmap threshold (dynamic, at most 32 MiB) is
//! mapped for each allocation and unmapped when freed, and the heap is handed back to the
//! kernel whenever its free top exceeds the trim threshold; every step then touches fresh
//! pages, each one a page fault that the kernel zero-fills. On a ResNet-18 8×224² step that
//! was about 40 000 page faults (the README's Performance section has the figures).
//!
//! [`retain_freed_memory`] pins the mmap threshold at glibc's maximum (32 MiB) and moves the
//! trim threshold out of reach, so blocks up to 32 MiB come from the heap and what is freed
//! there stays mapped and is reused. The process keeps the heap it reached at its peak
//! instead of returning it between steps; peak RSS rose by about 5 % in the README's runs.
//!
//! The setting is process-wide, so nothing in the libraries turns it on: the `finetune` CLI
//! and the task runners the examples use call this once at start. It is a no-op outside
//! glibc, and `FINETUNE_MALLOC=default` in the environment leaves glibc's defaults alone.

/// The environment variable that opts out (`FINETUNE_MALLOC=default`).
pub const ENV: &str = "FINETUNE_MALLOC";

/// glibc's largest accepted `M_MMAP_THRESHOLD` on 64-bit targets (`HEAP_MAX_SIZE / 2`).
pub const MMAP_THRESHOLD: usize = 32 << 20;

/// What [`retain_freed_memory`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MallocTuning {
    /// The thresholds were set.
    Applied,
    /// `FINETUNE_MALLOC=default` asked for glibc's defaults.
    OptedOut,
    /// Not glibc: nothing to do.
    Unsupported,
    /// glibc refused a setting (the defaults stay in force).
    Refused,
}

/// Sets glibc's mmap and trim thresholds for a training process (see the module docs), unless
/// `FINETUNE_MALLOC=default`. Call it once, early in `main`.
pub fn retain_freed_memory() -> MallocTuning {
    if std::env::var(ENV).is_ok_and(|v| v == "default") {
        return MallocTuning::OptedOut;
    }
    set_thresholds()
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn set_thresholds() -> MallocTuning {
    let mmap = i32::try_from(MMAP_THRESHOLD).unwrap_or(i32::MAX);
    // SAFETY: mallopt only adjusts the allocator's parameters; it is thread-safe in glibc.
    // The trim threshold is an int: i32::MAX (2 GiB) is beyond any free heap top the
    // 32 MiB-bounded heap blocks leave behind in practice.
    let ok = unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, mmap) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) == 1
    };
    if ok {
        MallocTuning::Applied
    } else {
        MallocTuning::Refused
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn set_thresholds() -> MallocTuning {
    MallocTuning::Unsupported
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_on_glibc_unless_opted_out() {
        let opted_out = std::env::var(ENV).is_ok_and(|v| v == "default");
        let want = if opted_out {
            MallocTuning::OptedOut
        } else if cfg!(all(target_os = "linux", target_env = "gnu")) {
            MallocTuning::Applied
        } else {
            MallocTuning::Unsupported
        };
        assert_eq!(retain_freed_memory(), want);
        // Idempotent: a second call (the CLI and a task runner both call it) changes nothing.
        assert_eq!(retain_freed_memory(), want);
    }
}
