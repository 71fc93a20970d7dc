//! [`NcclCollective`]: the [`Collective`] of one process driving one GPU in an NCCL
//! communicator.

use super::errors;
use super::id_file::{self, IdWait, NcclId, DEFAULT_ID_WAIT, ID_FILE_ENV};
use super::launch_env::Launch;
use crate::distributed::Collective;
use cudarc::driver::{CudaContext, CudaStream, DeviceRepr};
use cudarc::nccl::{Comm, Id, NcclType, ReduceOp};
use finetune_core::{Error, Result};
use std::sync::Arc;

/// One rank of an NCCL communicator: its CUDA stream on its GPU and the communicator. The
/// collectives take host buffers (see the module doc). Not `Send`: it stays on the thread that
/// made it, as NCCL's communicators should.
pub struct NcclCollective {
    comm: Comm,
    stream: Arc<CudaStream>,
}

impl std::fmt::Debug for NcclCollective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NcclCollective")
            .field("rank", &self.comm.rank())
            .field("world_size", &self.comm.world_size())
            .field("device", &self.comm.ordinal())
            .finish()
    }
}

impl NcclCollective {
    /// The launch from the environment ([`Launch::from_env`]: torchrun's or Open MPI's
    /// variables), GPU = local rank, and NCCL's id shared through the file named by
    /// `FINETUNE_NCCL_ID_FILE`: rank 0 writes it, the others wait for it up to 120 s, and rank
    /// 0 removes it once every rank has joined (or on a failure).
    pub fn from_env() -> Result<Self> {
        let launch = Launch::from_env()?;
        let path = id_file::id_file_from(std::env::var_os(ID_FILE_ENV))?;
        let wait = IdWait::new(DEFAULT_ID_WAIT);
        let nccl =
            Self::with_id_exchange(launch.rank, launch.world_size, launch.local_rank, |mine| {
                match mine {
                    Some(id) => id_file::write_id(&path, &id).map(|()| id),
                    None => id_file::wait_for_id(&path, launch.rank, &wait),
                }
            });
        // Every rank has read the id once the communicator exists; on a failure, the file is
        // of no use either.
        if launch.rank == 0 {
            id_file::remove_id(&path);
        }
        nccl
    }

    /// Rank `rank` of `world_size` on CUDA device `ordinal`. Rank 0 creates NCCL's unique id;
    /// `exchange` carries it: it receives `Some(id)` on rank 0 (to send) and `None` on the
    /// others, and returns rank 0's id on every rank (an MPI launcher broadcasts the bytes).
    /// Returns once every rank has joined (NCCL's communicator creation is collective).
    pub fn with_id_exchange(
        rank: usize,
        world_size: usize,
        ordinal: usize,
        exchange: impl FnOnce(Option<NcclId>) -> Result<NcclId>,
    ) -> Result<Self> {
        if rank >= world_size {
            return Err(Error::config(format!(
                "NCCL: rank {rank} is outside the world of {world_size} processes"
            )));
        }
        let on_gpu = format!("opening CUDA device {ordinal}");
        let stream = errors::no_panic(rank, &on_gpu, || {
            let ctx = CudaContext::new(ordinal).map_err(errors::cuda(rank, &on_gpu))?;
            ctx.new_stream().map_err(errors::cuda(rank, &on_gpu))
        })?;
        let mine = match rank {
            0 => Some(new_id()?),
            _ => None,
        };
        let id = exchange(mine)?;
        let id = Id::uninit(id.map(|b| b as std::ffi::c_char));
        let op = format!("communicator creation ({world_size} ranks)");
        let comm = errors::no_panic(rank, &op, || {
            // NCCL binds the communicator to the thread's current device: ours again, whatever
            // `exchange` did.
            let ctx = stream.context();
            ctx.bind_to_thread().map_err(errors::cuda(rank, &on_gpu))?;
            Comm::from_rank(stream.clone(), rank, world_size, id).map_err(errors::nccl(rank, &op))
        })?;
        Ok(NcclCollective { comm, stream })
    }

    /// The CUDA device ordinal this rank uses.
    pub fn device_ordinal(&self) -> usize {
        self.comm.ordinal()
    }

    /// Copies `host` to the GPU, runs `op` on the device copy, copies it back and waits.
    fn on_device<T: DeviceRepr + NcclType>(
        &self,
        host: &mut [T],
        what: &str,
        op: impl FnOnce(&Comm, &mut cudarc::driver::CudaSlice<T>) -> Result<()>,
    ) -> Result<()> {
        let rank = self.rank();
        let to_gpu = format!("{what}: copy of {} elements to the GPU", host.len());
        let mut dev = self
            .stream
            .clone_htod(&*host)
            .map_err(errors::cuda(rank, &to_gpu))?;
        op(&self.comm, &mut dev)?;
        let back = format!("{what}: copy back from the GPU");
        self.stream
            .memcpy_dtoh(&dev, host)
            .and_then(|()| self.stream.synchronize())
            .map_err(errors::cuda(rank, &back))
    }

    /// Broadcasts `host` from `root` in place (its length must be the same on every rank).
    fn broadcast_slice<T: DeviceRepr + NcclType>(
        &self,
        root: usize,
        host: &mut [T],
        what: &str,
    ) -> Result<()> {
        let rank = self.rank();
        self.on_device(host, what, |comm, dev| {
            comm.broadcast_in_place(dev, root as i32)
                .map(drop)
                .map_err(errors::nccl(rank, what))
        })
    }
}

/// A fresh NCCL unique id (rank 0), as bytes.
fn new_id() -> Result<NcclId> {
    let op = "unique id creation";
    let id = errors::no_panic(0, op, || Id::new().map_err(errors::nccl(0, op)))?;
    Ok(id.internal().map(|c| c as u8))
}

impl Collective for NcclCollective {
    fn rank(&self) -> usize {
        self.comm.rank()
    }

    fn world_size(&self) -> usize {
        self.comm.world_size()
    }

    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        // Every rank passes the same length: an empty buffer is a no-op everywhere.
        if buf.is_empty() {
            return Ok(());
        }
        let what = format!("all-reduce of {} floats", buf.len());
        let rank = self.rank();
        self.on_device(buf, &what, |comm, dev| {
            comm.all_reduce_in_place(dev, &ReduceOp::Sum)
                .map(drop)
                .map_err(errors::nccl(rank, &what))
        })
    }

    fn broadcast(&self, root: usize, buf: &mut Vec<u8>) -> Result<()> {
        if root >= self.world_size() {
            return Err(Error::config(format!(
                "rank {}: broadcast from rank {root}, outside the world of {}",
                self.rank(),
                self.world_size()
            )));
        }
        let mut len = [buf.len() as u64];
        self.broadcast_slice(root, &mut len, "broadcast of the length")?;
        let len = usize::try_from(len[0]).map_err(|_| {
            Error::config(format!(
                "rank {}: broadcast of {} bytes: too large for this machine",
                self.rank(),
                len[0]
            ))
        })?;
        if self.rank() != root {
            buf.clear();
            buf.resize(len, 0);
        }
        if len == 0 {
            return Ok(());
        }
        let what = format!("broadcast of {len} bytes from rank {root}");
        self.broadcast_slice(root, buf.as_mut_slice(), &what)
    }

    fn barrier(&self) -> Result<()> {
        self.all_reduce_sum(&mut [0.0])
    }

    fn backend(&self) -> &'static str {
        "nccl"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rank_outside_the_world_is_refused_before_any_cuda_call() {
        let err = NcclCollective::with_id_exchange(2, 2, 0, |_| unreachable!()).unwrap_err();
        assert!(
            err.to_string().contains("rank 2 is outside the world of 2"),
            "{err}"
        );
    }

    /// A world of one on GPU 0: the real collectives where a GPU, its driver and NCCL are
    /// there; elsewhere, the one-line error that names the rank, the device and the missing
    /// library (not a crash).
    #[test]
    fn a_world_of_one_works_or_says_which_library_is_missing() {
        match NcclCollective::with_id_exchange(0, 1, 0, |mine| Ok(mine.unwrap())) {
            Ok(nccl) => {
                let mut xs = [1.5f32, -2.0, 3.25];
                nccl.all_reduce_sum(&mut xs).unwrap();
                assert_eq!(xs, [1.5, -2.0, 3.25]);
                let mut bytes = b"weights".to_vec();
                nccl.broadcast(0, &mut bytes).unwrap();
                assert_eq!(bytes, b"weights");
                nccl.barrier().unwrap();
                assert_eq!(
                    (nccl.rank(), nccl.world_size(), nccl.backend()),
                    (0, 1, "nccl")
                );
            }
            Err(e) => {
                let msg = e.to_string();
                assert!(
                    msg.starts_with("rank 0: opening CUDA device 0 failed: "),
                    "{msg}"
                );
                assert!(msg.contains("Unable to dynamically load"), "{msg}");
                assert_eq!(msg.lines().count(), 1, "{msg}");
            }
        }
    }
}
