//! candle's own CPU worker pool, set up for a process whose kernels run on rayon's threads.
//!
//! candle 0.11.1 runs its large element-wise ops (64 Ki elements and up) on a pool of its own
//! threads, one fewer than the CPU threads, besides rayon's. After each job those workers
//! spin for `CANDLE_BARRIER_POOL_SPIN_LIMIT` rounds (25 000 by default) before they sleep.
//! A training step calls such ops often: autograd adds every gradient it computes into an
//! accumulator with candle's `add`. In between, this project's kernels and the GEMMs run on
//! rayon's threads, and a still-spinning candle worker takes a core from them. On the
//! README's 2-core machine, the spinning showed as 14 % of a ResNet-18 32×32² step's profile;
//! with 1 000 rounds the step went from 0.080–0.110 s to 0.073–0.096 s, MiniLM's from
//! 0.70–0.80 s to 0.64–0.69 s.
//!
//! candle reads the variable once, when its pool starts (its first large element-wise op), and
//! setting an environment variable is only sound while no other thread runs. So nothing in the
//! libraries calls [`limit_spinning`]: the `finetune` CLI and the examples call it first thing
//! in `main`. A value already in the environment is left as it is.

/// candle's environment variable: how many rounds an idle pool worker spins before it sleeps.
pub const ENV: &str = "CANDLE_BARRIER_POOL_SPIN_LIMIT";

/// The rounds [`limit_spinning`] sets: long enough to catch the next op of a run of small
/// ones (about 10 µs), short enough to hand the core back to rayon's threads.
pub const SPIN_LIMIT: u32 = 1000;

/// What [`limit_spinning`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpinSetting {
    /// [`ENV`] was unset and is now [`SPIN_LIMIT`].
    Applied,
    /// [`ENV`] was already set; its value stays.
    Kept,
}

/// Sets [`ENV`] to [`SPIN_LIMIT`] unless it is set already (see the module docs).
///
/// Call it first thing in `main`, while the process has a single thread and before any candle
/// op: the environment must not change while other threads may read it, and candle reads
/// this variable only once.
pub fn limit_spinning() -> SpinSetting {
    if std::env::var_os(ENV).is_some() {
        return SpinSetting::Kept;
    }
    std::env::set_var(ENV, SPIN_LIMIT.to_string());
    SpinSetting::Applied
}
