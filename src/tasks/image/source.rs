//! An image dataset as model batches.

use candle_core::{Device, Tensor};
use finetune_data::image::{collate, ImageClassification};
use finetune_data::seed::sample_rng;
use finetune_data::Dataset;
use finetune_data::{OnBadSample, SkipLog};
use finetune_train::{Batch, BatchSource};
use rayon::prelude::*;

/// An image dataset as model batches: decoded and transformed on the rayon pool, each sample
/// with the generator of (seed, epoch, index), so batches do not depend on thread scheduling
/// and a resumed run rebuilds them exactly.
pub struct ImageBatches {
    /// The dataset through the training pipeline (augmentation): batches with `train` true.
    pub train: ImageClassification,
    /// The same dataset through the eval pipeline: batches with `train` false. Its length is
    /// the source's.
    pub eval: ImageClassification,
    /// Whether the training pipeline draws at random (augmentation).
    pub random_train: bool,
    /// Seeds each sample's generator, with the epoch and the sample's index.
    pub seed: u64,
    /// Where the batches' tensors go.
    pub device: Device,
    /// What a sample that fails (unreadable, undecodable) does: stop with its error, or be
    /// skipped and recorded in `skipped`.
    pub on_bad: OnBadSample,
    /// Where bad samples skipped under [`OnBadSample::Skip`] are recorded.
    pub skipped: SkipLog,
}

impl BatchSource<Tensor> for ImageBatches {
    fn len(&self) -> usize {
        self.eval.data.len()
    }

    fn deterministic_train(&self) -> bool {
        !self.random_train
    }

    fn batch(
        &self,
        indices: &[usize],
        epoch: u64,
        train: bool,
    ) -> finetune_core::Result<Batch<Tensor>> {
        let pipeline = if train { &self.train } else { &self.eval };
        let results: Vec<_> = indices
            .par_iter()
            .map(|&i| pipeline.get(i, &mut sample_rng(self.seed, epoch, i as u64)))
            .collect();
        let mut items = Vec::with_capacity(results.len());
        for r in results {
            match r {
                Ok(item) => items.push(item),
                Err(e) => self.skipped.handle(self.on_bad, e)?,
            }
        }
        if items.is_empty() {
            return Err(finetune_core::Error::config(format!(
                "every sample of a batch was bad ({})",
                self.skipped.summary()
            )));
        }
        let b = collate(items, &self.device)?;
        Ok(Batch {
            inputs: b.images,
            targets: b.labels,
        })
    }
}
