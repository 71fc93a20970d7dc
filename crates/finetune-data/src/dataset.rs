//! Indexed samples: what an image pipeline ([`crate::image::ImageClassification`]) or a text
//! table offers the code that builds batches. `get` depends only on the index and the draws
//! it takes from the generator it is given ([`crate::seed::sample_rng`]`(seed, epoch, index)`
//! in training), so a batch is the same whichever thread builds which sample, and a resumed run
//! rebuilds its batches exactly.

use finetune_core::{Result, Rng};

/// Indexed samples. `get` must depend only on `index` and the draws it takes from `rng`.
pub trait Dataset: Send + Sync + 'static {
    /// One sample as the collate step receives it (e.g. a transformed image and its class id,
    /// or a text record); sent between the loader's threads.
    type Item: Send + 'static;
    /// The number of samples; valid indices are `0..len()`.
    fn len(&self) -> usize;
    /// Sample `index` (`< len()`), drawing any randomness (augmentation) from `rng` only.
    /// Errors name the file and row of a bad sample; the caller applies the skip policy.
    fn get(&self, index: usize, rng: &mut Rng) -> Result<Self::Item>;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
