//! The loader: batches of indices from a [`Sampler`] (seeded shuffle per epoch, `drop_last`, or
//! length buckets), each sample produced by [`Dataset::get`] on a thread pool with its own RNG
//! from (seed, epoch, index), collated into a batch (tensors on the target device) by a closure,
//! and handed over through a bounded channel so the next batches are prepared while the model
//! works on this one. Batches come out in order and are identical whatever the thread count.
//!
//! A failing sample stops the epoch with its error (naming file and row), or under
//! [`OnBadSample::Skip`] is left out of its batch and recorded in the loader's [`SkipLog`].

use crate::bad::{OnBadSample, SkipLog};
use crate::seed::{epoch_rng, sample_rng};
use crossbeam_channel::{bounded, Receiver};
use finetune_core::{Error, Result, Rng};
use rayon::prelude::*;
use std::sync::Arc;
use std::thread::JoinHandle;

/// Indexed samples. `get` must depend only on `index` and the draws it takes from `rng`.
pub trait Dataset: Send + Sync + 'static {
    type Item: Send + 'static;
    fn len(&self) -> usize;
    fn get(&self, index: usize, rng: &mut Rng) -> Result<Self::Item>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The batches (lists of dataset indices) of each epoch.
pub trait Sampler: Send + Sync + 'static {
    fn batches(&self, epoch: u64) -> Vec<Vec<usize>>;
}

/// Consecutive batches of a (seeded, per-epoch) permutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSampler {
    pub len: usize,
    pub batch_size: usize,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
}

impl Sampler for BatchSampler {
    fn batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        let mut order: Vec<usize> = (0..self.len).collect();
        if self.shuffle {
            epoch_rng(self.seed, epoch).shuffle(&mut order);
        }
        let bs = self.batch_size.max(1);
        order
            .chunks(bs)
            .filter(|c| !(self.drop_last && c.len() < bs))
            .map(<[usize]>::to_vec)
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoaderConfig {
    /// Seeds the per-sample generators.
    pub seed: u64,
    /// Worker threads (0: one per core).
    pub threads: usize,
    /// Batches prepared ahead of the consumer (at least 1).
    pub prefetch: usize,
    pub on_bad: OnBadSample,
}

impl Default for LoaderConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            threads: 0,
            prefetch: 2,
            on_bad: OnBadSample::Error,
        }
    }
}

/// One batch: its epoch and position, the dataset indices it holds (skipped samples are not
/// among them), and the collated data.
#[derive(Debug)]
pub struct Batch<B> {
    pub epoch: u64,
    pub position: usize,
    pub indices: Vec<usize>,
    pub data: B,
}

type Collate<I, B> = dyn Fn(Vec<I>) -> Result<B> + Send + Sync;

pub struct Loader<D: Dataset, B> {
    dataset: Arc<D>,
    sampler: Arc<dyn Sampler>,
    collate: Arc<Collate<D::Item, B>>,
    cfg: LoaderConfig,
    pool: Arc<rayon::ThreadPool>,
    skipped: SkipLog,
}

impl<D: Dataset, B: Send + 'static> Loader<D, B> {
    pub fn new(
        dataset: D,
        sampler: impl Sampler,
        collate: impl Fn(Vec<D::Item>) -> Result<B> + Send + Sync + 'static,
        cfg: LoaderConfig,
    ) -> Result<Self> {
        let threads = if cfg.threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            cfg.threads
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .thread_name(|i| format!("data-loader-{i}"))
            .build()
            .map_err(|e| Error::config(format!("cannot start the loader's threads: {e}")))?;
        Ok(Self {
            dataset: Arc::new(dataset),
            sampler: Arc::new(sampler),
            collate: Arc::new(collate),
            cfg,
            pool: Arc::new(pool),
            skipped: SkipLog::new(),
        })
    }

    /// Records skipped samples into `log` (e.g. the one the readers used) instead of a new one.
    pub fn with_skip_log(mut self, log: SkipLog) -> Self {
        self.skipped = log;
        self
    }

    pub fn dataset(&self) -> &D {
        &self.dataset
    }

    pub fn skipped(&self) -> &SkipLog {
        &self.skipped
    }

    pub fn num_batches(&self, epoch: u64) -> usize {
        self.sampler.batches(epoch).len()
    }

    /// The batches of `epoch`, prepared in the background.
    pub fn epoch(&self, epoch: u64) -> EpochIter<B> {
        self.epoch_from(epoch, 0)
    }

    /// The batches of `epoch` from position `start` on (resuming mid-epoch).
    pub fn epoch_from(&self, epoch: u64, start: usize) -> EpochIter<B> {
        let plan: Vec<Vec<usize>> = self
            .sampler
            .batches(epoch)
            .into_iter()
            .skip(start)
            .collect();
        let (tx, rx) = bounded(self.cfg.prefetch.max(1));
        let (dataset, collate, pool) = (
            self.dataset.clone(),
            self.collate.clone(),
            self.pool.clone(),
        );
        let (cfg, skipped) = (self.cfg, self.skipped.clone());
        let handle = std::thread::Builder::new()
            .name("data-loader".into())
            .spawn(move || {
                for (k, idx) in plan.into_iter().enumerate() {
                    let results: Vec<Result<D::Item>> = pool.install(|| {
                        idx.par_iter()
                            .map(|&i| {
                                let mut rng = sample_rng(cfg.seed, epoch, i as u64);
                                dataset.get(i, &mut rng)
                            })
                            .collect()
                    });
                    let mut items = Vec::with_capacity(idx.len());
                    let mut kept = Vec::with_capacity(idx.len());
                    let mut failed = None;
                    for (r, &i) in results.into_iter().zip(&idx) {
                        match r {
                            Ok(item) => {
                                items.push(item);
                                kept.push(i);
                            }
                            Err(e) => {
                                if let Err(e) = skipped.handle(cfg.on_bad, e) {
                                    failed = Some(e);
                                    break;
                                }
                            }
                        }
                    }
                    let out = match failed {
                        Some(e) => Err(e),
                        None if items.is_empty() => continue,
                        None => collate(items).map(|data| Batch {
                            epoch,
                            position: start + k,
                            indices: kept,
                            data,
                        }),
                    };
                    let stop = out.is_err();
                    if tx.send(out).is_err() || stop {
                        break;
                    }
                }
            })
            .expect("spawning the loader thread");
        EpochIter {
            rx: Some(rx),
            handle: Some(handle),
        }
    }
}

/// The batches of one epoch, in order; dropping it stops the background work.
pub struct EpochIter<B> {
    rx: Option<Receiver<Result<Batch<B>>>>,
    handle: Option<JoinHandle<()>>,
}

impl<B> Iterator for EpochIter<B> {
    type Item = Result<Batch<B>>;

    fn next(&mut self) -> Option<Self::Item> {
        self.rx.as_ref()?.recv().ok()
    }
}

impl<B> Drop for EpochIter<B> {
    fn drop(&mut self) {
        // Closing the channel makes the producer's next send fail, so it stops.
        self.rx.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}
