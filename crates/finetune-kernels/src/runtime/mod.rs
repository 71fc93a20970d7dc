//! Process tuning for a training process: the allocator keeps freed memory ([`malloc`]) and
//! candle's worker pool hands its cores back to rayon quickly ([`candle_pool`]).
//!
//! Both settings are process-wide and must be made while only one thread runs, so no library
//! function applies them: a program calls [`init`] once, first thing in `main` (the `finetune`
//! binary and the examples do, through `candle_finetune::init`).

pub mod candle_pool;
pub mod malloc;

pub use candle_pool::{limit_spinning, SpinSetting};
pub use malloc::{retain_freed_memory, MallocTuning};

/// What [`init`] set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// What [`limit_spinning`] did to candle's worker pool.
    pub candle_pool: SpinSetting,
    /// What [`retain_freed_memory`] did to glibc's allocator.
    pub malloc: MallocTuning,
}

/// Applies both settings; call it once, first thing in `main`, before any other thread or
/// candle op exists. Calling it again changes nothing.
pub fn init() -> Tuning {
    Tuning {
        candle_pool: limit_spinning(),
        malloc: retain_freed_memory(),
    }
}
