//! The NCCL backend of the collective seam (feature `nccl`): one process per GPU, each driving
//! the GPU of its local rank, joined in one NCCL communicator. [`NcclCollective::from_env`]
//! takes the launch from torchrun's variables (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`) or Open
//! MPI's, and shares NCCL's unique id through the file named by `FINETUNE_NCCL_ID_FILE`
//! ([`id_file`]); [`NcclCollective::with_id_exchange`] lets a launcher that already has a
//! channel between the processes (MPI) carry the id instead.
//!
//! Every operation works on host buffers: it copies them to the GPU, runs the NCCL collective
//! on the process's own CUDA stream, and copies the result back, so the learner's gradient
//! flattening stays the same for every backend.
//!
//! # The cudarc features
//!
//! The backend uses `cudarc` 0.19 directly (the copy candle-core 0.11 uses, so one build of
//! it) with `driver`, `nccl` and three features that only decide when nothing else does:
//!
//! - `fallback-dynamic-loading`: without candle's `cuda` the CUDA and NCCL libraries are
//!   loaded when the first communicator is made, so `--features nccl` builds, type-checks and
//!   runs its tests on a machine with no CUDA at all. Under `cuda`, candle asks for
//!   `dynamic-linking`; cudarc then links instead (`dynamic-loading` proper would clash with
//!   it: cudarc's build script refuses the pair).
//! - `cuda-version-from-build-system` + `fallback-latest`: the CUDA version of the bindings
//!   is nvcc's when there is one (as candle asks), else the newest cudarc knows. A fixed
//!   `cuda-1xxx0` feature would instead override nvcc's answer in a `cuda` build.
//!
//! So `nccl` alone builds anywhere, and `cuda,nccl` gives the feature set candle's own `nccl`
//! feature would, plus the two fallbacks, which do nothing there.

#![cfg_attr(not(feature = "nccl"), allow(dead_code))]

pub mod id_file;
mod launch_env;

#[cfg(feature = "nccl")]
mod collective;
#[cfg(feature = "nccl")]
mod errors;

#[cfg(feature = "nccl")]
pub use collective::NcclCollective;
pub use id_file::{NcclId, NCCL_ID_BYTES};
pub use launch_env::Launch;
