//! The MPI engine (feature `mpi`): the [`Collective`] over `MPI_COMM_WORLD` of the MPI library
//! the program was linked with (Open MPI on Debian: `libopenmpi-dev`, launched by `mpirun`).
//!
//! Errors come back as values, not as MPI's default abort: the world's error handler is
//! `MPI_ERRORS_RETURN`, and every call's return code becomes one error line naming this rank
//! and the operation. Only the thread that initialised MPI calls it (`MPI_THREAD_FUNNELED`).

use super::Collective;
use finetune_core::{Error, Result};
use mpi::ffi;
use mpi::raw::AsRaw;
use mpi::topology::{Communicator, SimpleCommunicator};
use mpi::Threading;
use std::os::raw::{c_char, c_int, c_void};

/// This process's place in an MPI job: MPI stays initialised while it lives
/// (`MPI_Finalize` when it drops).
pub struct MpiCollective {
    _universe: mpi::environment::Universe,
    world: SimpleCommunicator,
    rank: usize,
    size: usize,
}

impl MpiCollective {
    /// Initialises MPI (once per process) and joins `MPI_COMM_WORLD`.
    pub fn init() -> Result<Self> {
        let (universe, _) =
            mpi::initialize_with_threading(Threading::Funneled).ok_or_else(|| {
                Error::config("MPI could not be initialised (or was initialised already)")
            })?;
        let world = universe.world();
        // SAFETY: a valid communicator and one of MPI's predefined error handlers.
        let rc = unsafe { ffi::MPI_Comm_set_errhandler(world.as_raw(), ffi::RSMPI_ERRORS_RETURN) };
        let (rank, size) = (world.rank() as usize, world.size() as usize);
        check(rc, rank, "setting the error handler")?;
        Ok(Self {
            _universe: universe,
            world,
            rank,
            size,
        })
    }

    fn comm(&self) -> ffi::MPI_Comm {
        self.world.as_raw()
    }
}

impl Collective for MpiCollective {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        // (MPI_IN_PLACE is a macro the bindings do not carry.)
        let send = buf.to_vec();
        self.all_reduce_sum_into(&send, buf)
    }

    fn all_reduce_sum_into(&self, send: &[f32], recv: &mut [f32]) -> Result<()> {
        if send.len() != recv.len() {
            return Err(Error::config(format!(
                "rank {}: all-reduce of {} values into {}",
                self.rank,
                send.len(),
                recv.len()
            )));
        }
        let count = count_of(send.len(), self.rank)?;
        // SAFETY: both buffers hold `count` f32s; every rank passes the same count.
        let rc = unsafe {
            ffi::MPI_Allreduce(
                send.as_ptr() as *const c_void,
                recv.as_mut_ptr() as *mut c_void,
                count,
                ffi::RSMPI_FLOAT,
                ffi::RSMPI_SUM,
                self.comm(),
            )
        };
        check(rc, self.rank, "all-reducing the gradients")
    }

    fn broadcast(&self, root: usize, buf: &mut Vec<u8>) -> Result<()> {
        let mut len = [buf.len() as u64];
        // SAFETY: one u64 on every rank.
        let rc = unsafe {
            ffi::MPI_Bcast(
                len.as_mut_ptr() as *mut c_void,
                1,
                ffi::RSMPI_UINT64_T,
                root as c_int,
                self.comm(),
            )
        };
        check(rc, self.rank, "broadcasting a length")?;
        buf.resize(len[0] as usize, 0);
        let count = count_of(buf.len(), self.rank)?;
        // SAFETY: `buf` holds `count` bytes on every rank (resized to root's length above).
        let rc = unsafe {
            ffi::MPI_Bcast(
                buf.as_mut_ptr() as *mut c_void,
                count,
                ffi::RSMPI_UINT8_T,
                root as c_int,
                self.comm(),
            )
        };
        check(rc, self.rank, "broadcasting")
    }

    fn barrier(&self) -> Result<()> {
        // SAFETY: a valid communicator.
        let rc = unsafe { ffi::MPI_Barrier(self.comm()) };
        check(rc, self.rank, "waiting at a barrier")
    }

    fn backend(&self) -> &'static str {
        "mpi"
    }
}

/// A buffer length as MPI's `int` count.
fn count_of(len: usize, rank: usize) -> Result<c_int> {
    c_int::try_from(len).map_err(|_| {
        Error::config(format!(
            "rank {rank}: a buffer of {len} elements is more than one MPI call carries"
        ))
    })
}

/// An MPI return code as a result naming the rank and what it was doing.
fn check(rc: c_int, rank: usize, what: &str) -> Result<()> {
    if rc == ffi::MPI_SUCCESS as c_int {
        return Ok(());
    }
    let mut text = vec![0 as c_char; ffi::MPI_MAX_ERROR_STRING as usize + 1];
    let mut len: c_int = 0;
    // SAFETY: `text` holds MPI_MAX_ERROR_STRING characters and a terminator.
    unsafe { ffi::MPI_Error_string(rc, text.as_mut_ptr(), &mut len) };
    let bytes: Vec<u8> = text[..len.max(0) as usize]
        .iter()
        .map(|c| *c as u8)
        .collect();
    Err(Error::config(format!(
        "rank {rank}: MPI failed {what}: {} (a rank was lost or the job is ending)",
        String::from_utf8_lossy(&bytes)
    )))
}
