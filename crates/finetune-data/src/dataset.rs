//! Indexed samples: what an image pipeline ([`crate::image::ImageClassification`]) or a text
//! table offers the code that builds batches. `get` depends only on the index and the draws
//! it takes from the generator it is given ([`crate::seed::sample_rng`]`(seed, epoch, index)`
//! in training), so a batch is the same whichever thread builds which sample, and a resumed run
//! rebuilds its batches exactly.

use finetune_core::{Result, Rng};

/// Indexed samples. `get` must depend only on `index` and the draws it takes from `rng`.
pub trait Dataset: Send + Sync + 'static {
    type Item: Send + 'static;
    fn len(&self) -> usize;
    fn get(&self, index: usize, rng: &mut Rng) -> Result<Self::Item>;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
