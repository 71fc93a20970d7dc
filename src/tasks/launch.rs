//! A run's place among processes: alone, or one rank of a data-parallel job started by
//! `mpirun` (`--distributed`, or found in the launcher's environment). Rank 0 resolves the
//! model first (one download) and owns the output folder; every other rank trains into a
//! scratch folder of its own, removed when it ends, and reports nothing.

use crate::settings::JobSettings;
use anyhow::Result;
use finetune_train::distributed::{Collective, Solo};
use finetune_train::OutputDir;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::OnceLock;

/// The environment variables by which launchers tell a process its rank, the number of
/// processes, and how many of them share its machine: Open MPI's, MPICH/Hydra's (PMI).
const LAUNCHERS: [(&str, &str, &str); 2] = [
    (
        "OMPI_COMM_WORLD_RANK",
        "OMPI_COMM_WORLD_SIZE",
        "OMPI_COMM_WORLD_LOCAL_SIZE",
    ),
    ("PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"),
];

/// `(rank, world size, ranks on this machine)` when an MPI launcher started this process
/// with more than one rank.
pub fn launched_by_mpi() -> Option<(usize, usize, usize)> {
    let get = |k: &str| std::env::var(k).ok()?.parse::<usize>().ok();
    LAUNCHERS.iter().find_map(|(rank, size, local)| {
        let (r, n) = (get(rank)?, get(size)?);
        (n > 1).then(|| (r, n, get(local).unwrap_or(n)))
    })
}

/// Gives each of several ranks on one machine its share of the cores (rayon's pool, which
/// the kernels and candle use), unless `RAYON_NUM_THREADS` says otherwise: two ranks on two
/// cores train with one thread each instead of four threads fighting for two cores. Call it
/// before any thread exists (the `finetune` binary does, first thing in `main`).
pub fn share_cores_between_ranks() {
    let Some((_, _, local)) = launched_by_mpi() else {
        return;
    };
    if local <= 1 || std::env::var_os("RAYON_NUM_THREADS").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Sound here: no other thread exists yet to read the environment concurrently.
    std::env::set_var("RAYON_NUM_THREADS", (cores / local).max(1).to_string());
}

/// Where a run writes and the ranks it trains with.
pub struct RunOutput {
    /// The folder this process writes into: the output folder, or a rank's scratch folder.
    pub dir: OutputDir,
    /// The output folder the user named (where rank 0 writes; checkpoints resolve there).
    pub path: PathBuf,
    /// The ranks of the run ([`Solo`] alone).
    pub world: Rc<dyn Collective>,
    /// A rank's scratch folder, removed when this drops (after `dir`'s lock is released).
    pub scratch: Option<Scratch>,
}

/// A scratch folder, removed with what it holds when dropped.
pub struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Joins the run's ranks (none: alone) and opens its output: rank 0 locks `output` (applying
/// `--resume` / `--overwrite`), the others a fresh scratch folder.
pub fn open(output: &Path, job: &JobSettings) -> Result<RunOutput> {
    let world = join(job)?;
    if world.world_size() > 1 {
        if !world.is_writer() {
            keep_stderr_for_errors();
        }
        say_why_when_ended(world.rank(), world.world_size(), output);
    }
    let (dir, scratch) = match world.is_writer() {
        true => (super::output::open_for_training(output, job)?, None),
        false => {
            let s = std::env::temp_dir().join(format!(
                "candle-finetune-rank{}-{}",
                world.rank(),
                std::process::id()
            ));
            (OutputDir::lock(&s)?, Some(Scratch(s)))
        }
    };
    Ok(RunOutput {
        dir,
        path: output.to_path_buf(),
        world,
        scratch,
    })
}

/// The collective of a distributed run, or [`Solo`]: NCCL for a CUDA run in a build with the
/// `nccl` feature, else MPI.
fn join(job: &JobSettings) -> Result<Rc<dyn Collective>> {
    let launched = launched_by_mpi();
    if !job.distributed && launched.is_none() {
        return Ok(Rc::new(Solo));
    }
    #[cfg(feature = "nccl")]
    if job.device.starts_with("cuda") {
        use finetune_train::distributed::nccl::NcclCollective;
        let nccl = NcclCollective::from_env()?;
        finetune_core::device::set_default_ordinal(nccl.device_ordinal());
        return Ok(Rc::new(nccl));
    }
    mpi_world(launched)
}

#[cfg(feature = "mpi")]
fn mpi_world(_launched: Option<(usize, usize, usize)>) -> Result<Rc<dyn Collective>> {
    Ok(Rc::new(
        finetune_train::distributed::mpi::MpiCollective::init()?,
    ))
}

#[cfg(not(feature = "mpi"))]
fn mpi_world(launched: Option<(usize, usize, usize)>) -> Result<Rc<dyn Collective>> {
    let how = match launched {
        Some((rank, size, _)) => format!("this process is rank {rank} of {size} of an MPI job"),
        None => "--distributed was given".to_string(),
    };
    anyhow::bail!(
        "{how}, but this build has no MPI: build with `cargo build --release --features mpi` \
         (Debian: apt install libopenmpi-dev libclang-dev)"
    )
}

/// Runs `f` on rank 0 first and on the other ranks once it is done (rank 0's download of the
/// model fills the cache the others read); alone, just runs it.
pub fn rank_zero_first<T>(world: &dyn Collective, f: impl FnOnce() -> Result<T>) -> Result<T> {
    if world.world_size() == 1 {
        return f();
    }
    if !world.is_writer() {
        world.barrier()?;
    }
    let out = f();
    if world.is_writer() {
        world.barrier()?;
    }
    out
}

/// A rank other than 0's real stderr, once its ordinary output goes to `/dev/null` (rank 0
/// says it all once): errors still reach it, through [`print_error`] and the SIGTERM line.
static ERRORS_FD: OnceLock<i32> = OnceLock::new();

/// Sends this process's stderr to `/dev/null`, keeping the real one for errors.
fn keep_stderr_for_errors() {
    #[cfg(unix)]
    // SAFETY: plain descriptor calls; fd 2 is replaced only when /dev/null opened and the
    // copy of the real stderr exists.
    unsafe {
        let saved = libc::dup(2);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY);
        if saved >= 0 && null >= 0 && ERRORS_FD.set(saved).is_ok() {
            libc::dup2(null, 2);
        }
        if null >= 0 {
            libc::close(null);
        }
    }
}

/// Prints `error: MSG` on the process's real stderr (a quiet rank's too).
pub fn print_error(msg: &str) {
    write_errors(format!("error: {msg}\n").as_bytes());
}

/// Writes `bytes` to the real stderr (async-signal-safe: write(2) only).
fn write_errors(bytes: &[u8]) {
    let fd = ERRORS_FD.get().copied().unwrap_or(2);
    #[cfg(unix)]
    // SAFETY: a valid buffer of `bytes.len()` bytes; `fd` is stderr or its copy.
    unsafe {
        libc::write(fd, bytes.as_ptr().cast(), bytes.len());
    }
    #[cfg(not(unix))]
    {
        let _ = fd;
        use std::io::Write;
        let _ = std::io::stderr().write_all(bytes);
    }
}

/// The line a rank prints when the launcher ends it (SIGTERM: `mpirun` ends every rank when
/// one is lost, and names that one), instead of vanishing silently.
static ENDED_LINE: OnceLock<Vec<u8>> = OnceLock::new();

/// Installs the handler that prints [`ENDED_LINE`] and exits on SIGTERM.
fn say_why_when_ended(rank: usize, size: usize, output: &Path) {
    let line = format!(
        "error: rank {rank} of {size}: the job was ended by its launcher (a rank was lost, see \
         mpirun's message, or the job was cancelled); the newest complete checkpoint in {} \
         stays valid: continue with --resume\n",
        output.display()
    );
    if ENDED_LINE.set(line.into_bytes()).is_err() {
        return;
    }
    #[cfg(unix)]
    // SAFETY: the handler only reads the finished static and calls write(2) and _exit(2),
    // both async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, on_sigterm as *const () as libc::sighandler_t);
    }
}

#[cfg(unix)]
extern "C" fn on_sigterm(_: libc::c_int) {
    if let Some(line) = ENDED_LINE.get() {
        write_errors(line);
    }
    // SAFETY: ends the process at once, without running destructors.
    unsafe { libc::_exit(143) }
}
