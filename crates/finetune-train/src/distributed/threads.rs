//! Ranks as threads of one process: a [`Collective`] for tests and examples that checks the
//! data-parallel logic without an MPI job. Each rank's buffer is posted in its own slot and
//! every rank sums the slots in rank order, so the result is the same on every rank and from
//! run to run.

use super::Collective;
use finetune_core::Result;
use std::sync::{Arc, Barrier, Mutex};

struct Shared {
    barrier: Barrier,
    floats: Mutex<Vec<Vec<f32>>>,
    bytes: Mutex<Vec<u8>>,
}

/// One rank of a [`thread_world`].
pub struct ThreadRank {
    rank: usize,
    size: usize,
    shared: Arc<Shared>,
}

/// `size` connected ranks, to be moved each into a thread of its own.
pub fn thread_world(size: usize) -> Vec<ThreadRank> {
    let shared = Arc::new(Shared {
        barrier: Barrier::new(size),
        floats: Mutex::new(vec![Vec::new(); size]),
        bytes: Mutex::new(Vec::new()),
    });
    (0..size)
        .map(|rank| ThreadRank {
            rank,
            size,
            shared: shared.clone(),
        })
        .collect()
}

impl Collective for ThreadRank {
    fn rank(&self) -> usize {
        self.rank
    }

    fn world_size(&self) -> usize {
        self.size
    }

    fn all_reduce_sum(&self, buf: &mut [f32]) -> Result<()> {
        let floats = || self.shared.floats.lock().unwrap_or_else(|e| e.into_inner());
        floats()[self.rank] = buf.to_vec();
        self.shared.barrier.wait();
        {
            let slots = floats();
            for (i, v) in buf.iter_mut().enumerate() {
                *v = slots.iter().fold(0.0, |acc, s| acc + s[i]);
            }
        }
        self.shared.barrier.wait();
        Ok(())
    }

    fn broadcast(&self, root: usize, buf: &mut Vec<u8>) -> Result<()> {
        if self.rank == root {
            *self.shared.bytes.lock().unwrap_or_else(|e| e.into_inner()) = buf.clone();
        }
        self.shared.barrier.wait();
        if self.rank != root {
            *buf = self
                .shared
                .bytes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
        }
        self.shared.barrier.wait();
        Ok(())
    }

    fn barrier(&self) -> Result<()> {
        self.shared.barrier.wait();
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "threads"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a rank saw: its sum, the broadcast, the gathered bytes.
    type Seen = (Vec<f32>, Vec<u8>, Vec<Vec<u8>>);

    #[test]
    fn sums_and_broadcasts_reach_every_rank() {
        let out: Vec<Seen> = std::thread::scope(|s| {
            let handles: Vec<_> = thread_world(3)
                .into_iter()
                .map(|r| {
                    s.spawn(move || {
                        let mut v = vec![r.rank() as f32, 1.0];
                        r.all_reduce_sum(&mut v).unwrap();
                        let mut b = vec![r.rank() as u8; r.rank() + 1];
                        r.broadcast(2, &mut b).unwrap();
                        let all = r.all_gather_bytes(&[r.rank() as u8]).unwrap();
                        (v, b, all)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for (v, b, all) in out {
            assert_eq!(v, vec![3.0, 3.0]);
            assert_eq!(b, vec![2, 2, 2]);
            assert_eq!(all, vec![vec![0], vec![1], vec![2]]);
        }
    }
}
