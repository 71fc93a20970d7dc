//! Data-parallel training: the collective seam and what the learner builds on it.
//!
//! A [`Collective`] is the handful of operations data parallelism needs — this process's rank,
//! the world size, an in-place sum of `f32` buffers over every rank, a broadcast of bytes from
//! one rank, a barrier. [`Solo`] is the single-process one (every operation a no-op); the
//! engines behind features implement the same trait: `mpi` (Open MPI through `rsmpi`,
//! feature `mpi`) and `nccl` (NCCL through `cudarc`, feature `nccl`). [`threads`] runs ranks as
//! threads of one process, for tests.
//!
//! What the learner does with it (see [`crate::learner`]): every rank starts from rank 0's
//! weights ([`sync::broadcast_weights`], after [`sync::check_same_settings`]), takes its shard of every global micro-batch
//! ([`shard`]), sums its gradients weighted by the *global* step's sample count, and the
//! bucketed all-reduce ([`reduce`]) turns those into the gradient of the global mean loss,
//! identical on every rank, so every rank's optimizer makes the same update. Evaluation is
//! shared the same way (each rank a contiguous share of the batches, the predictions gathered),
//! so every rank feeds the same metrics to early stopping; an interrupt on any rank is
//! [`sync::any`]'s. Rank 0 alone logs, writes checkpoints and exports.
//!
//! It knows no model, no file format and no command line.

pub mod reduce;
pub mod shard;
pub mod sync;
pub mod threads;

#[cfg(feature = "mpi")]
pub mod mpi;

use finetune_core::Result;

#[cfg(any(test, feature = "nccl"))]
pub mod nccl;

/// The collective operations of data-parallel training over `world_size()` processes.
/// Every rank must call the same operations in the same order with buffers of the same
/// length; an operation returns only once every rank has joined it.
pub trait Collective {
    /// This process's rank, `0..world_size()`. Rank 0 is the one that writes.
    fn rank(&self) -> usize;
    /// How many processes train together.
    fn world_size(&self) -> usize;
    /// Replaces `buf` on every rank by the element-wise sum of every rank's `buf`.
    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()>;
    /// The element-wise sum of every rank's `send` into `recv` (the same length), on every
    /// rank; engines that can avoid the copy [`Collective::all_reduce_sum`] makes override it.
    fn all_reduce_sum_into(&self, send: &[f32], recv: &mut [f32]) -> Result<()> {
        recv.copy_from_slice(send);
        self.all_reduce_sum(recv)
    }
    /// Replaces `buf` on every rank by `root`'s (its length too).
    fn broadcast(&self, root: usize, buf: &mut Vec<u8>) -> Result<()>;
    /// Returns once every rank has called it.
    fn barrier(&self) -> Result<()>;
    /// The engine's name, for the logs and the summary: `solo`, `mpi`, `nccl`.
    fn backend(&self) -> &'static str;

    /// Whether this process writes the run's files (rank 0).
    fn is_writer(&self) -> bool {
        self.rank() == 0
    }

    /// Every rank's `mine`, in rank order, on every rank (one broadcast per rank).
    fn all_gather_bytes(&self, mine: &[u8]) -> Result<Vec<Vec<u8>>> {
        (0..self.world_size())
            .map(|root| {
                let mut buf = match root == self.rank() {
                    true => mine.to_vec(),
                    false => Vec::new(),
                };
                self.broadcast(root, &mut buf)?;
                Ok(buf)
            })
            .collect()
    }
}

/// One process training alone: rank 0 of 1, every collective a no-op.
#[derive(Debug, Default, Clone, Copy)]
pub struct Solo;

impl Collective for Solo {
    fn rank(&self) -> usize {
        0
    }
    fn world_size(&self) -> usize {
        1
    }
    fn all_reduce_sum(&self, _buf: &mut [f32]) -> Result<()> {
        Ok(())
    }
    fn broadcast(&self, _root: usize, _buf: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }
    fn barrier(&self) -> Result<()> {
        Ok(())
    }
    fn backend(&self) -> &'static str {
        "solo"
    }
}
