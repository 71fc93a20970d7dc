//! `candle-finetune`: fine-tune pretrained Hub models with candle. This facade re-exports the
//! workspace's crates and hosts the `finetune` binary, the examples and the end-to-end tests.

pub mod bench;
pub use finetune_bert as bert;
pub use finetune_core as core;
pub use finetune_data as data;
pub use finetune_hub as hub;
pub use finetune_kernels as kernels;
pub use finetune_train as train;
pub mod tasks;
pub use finetune_resnet as resnet;

/// Tunes the process for training: the allocator keeps freed memory for the next step, and
/// candle's idle worker threads soon hand their cores back to rayon's (see
/// [`finetune_kernels::runtime`]). Call it once, first thing in `main`, before any thread or
/// candle op exists; the `finetune` binary and the examples do. Training works without it,
/// only slower. `FINETUNE_MALLOC=default` and a `CANDLE_BARRIER_POOL_SPIN_LIMIT` already in
/// the environment are respected.
pub fn init() -> finetune_kernels::runtime::Tuning {
    finetune_kernels::runtime::init()
}
