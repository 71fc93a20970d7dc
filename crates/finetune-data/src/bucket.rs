//! Batches of similar lengths for text: dynamic padding pads each batch to its longest sequence,
//! so grouping similar lengths cuts wasted compute. As in HF's length-grouped sampler: shuffle,
//! cut into windows of `window` batches, sort each window by length (longest first), cut into
//! batches, shuffle the batches. Lengths are token counts from the model's tokenizer — given,
//! or computed in parallel by [`token_lengths`] from a closure.

use crate::loader::Sampler;
use crate::seed::epoch_rng;
use finetune_core::{Error, Result};
use rayon::prelude::*;

#[derive(Debug, Clone, PartialEq)]
pub struct BucketConfig {
    pub batch_size: usize,
    /// Sort within windows of this many batches; `None`: no bucketing (plain shuffled batches).
    pub window: Option<usize>,
    pub shuffle: bool,
    pub drop_last: bool,
    pub seed: u64,
}

/// The batches of epoch `epoch` for samples of the given lengths (indices into `lengths`).
pub fn plan_batches(lengths: &[usize], cfg: &BucketConfig, epoch: u64) -> Vec<Vec<usize>> {
    let bs = cfg.batch_size.max(1);
    let mut rng = epoch_rng(cfg.seed, epoch);
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    if cfg.shuffle {
        rng.shuffle(&mut order);
    }
    if let Some(w) = cfg.window {
        for chunk in order.chunks_mut(w.max(1) * bs) {
            // Stable: equal lengths keep their shuffled order.
            chunk.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        }
    }
    let mut batches: Vec<Vec<usize>> = order.chunks(bs).map(<[usize]>::to_vec).collect();
    if cfg.drop_last && batches.last().is_some_and(|b| b.len() < bs) {
        batches.pop();
    }
    if cfg.shuffle && cfg.window.is_some() {
        rng.shuffle(&mut batches);
    }
    batches
}

/// How much of a padded epoch is padding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PaddingStats {
    /// Real tokens in the batches.
    pub tokens: usize,
    /// Tokens after padding every batch to its longest sequence.
    pub padded: usize,
}

impl PaddingStats {
    /// Fraction of padded tokens that are padding, in `[0, 1)`.
    pub fn ratio(&self) -> f64 {
        if self.padded == 0 {
            0.0
        } else {
            (self.padded - self.tokens) as f64 / self.padded as f64
        }
    }
}

pub fn padding_stats(lengths: &[usize], batches: &[Vec<usize>]) -> PaddingStats {
    let mut s = PaddingStats {
        tokens: 0,
        padded: 0,
    };
    for b in batches {
        let max = b.iter().map(|&i| lengths[i]).max().unwrap_or(0);
        s.tokens += b.iter().map(|&i| lengths[i]).sum::<usize>();
        s.padded += max * b.len();
    }
    s
}

/// `f(item)` for every item, on the rayon pool (e.g. a tokenizer's token count).
pub fn token_lengths<T: Sync>(
    items: &[T],
    f: impl Fn(&T) -> Result<usize> + Sync,
) -> Result<Vec<usize>> {
    items.par_iter().map(&f).collect()
}

/// A [`Sampler`] that plans bucketed batches each epoch.
#[derive(Debug, Clone)]
pub struct BucketSampler {
    lengths: Vec<usize>,
    cfg: BucketConfig,
}

impl BucketSampler {
    pub fn new(lengths: Vec<usize>, cfg: BucketConfig) -> Result<Self> {
        if cfg.batch_size == 0 {
            return Err(Error::config("batch size must be at least 1"));
        }
        Ok(Self { lengths, cfg })
    }
}

impl Sampler for BucketSampler {
    fn batches(&self, epoch: u64) -> Vec<Vec<usize>> {
        plan_batches(&self.lengths, &self.cfg, epoch)
    }
}
