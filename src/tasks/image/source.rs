//! An image dataset as model batches: class ids `[B]` (u32), multi-hot label sets `[B, L]`
//! (f32) for multi-label data, or mixup's class distributions `[B, C]`.

use candle_core::{Device, Tensor};
use finetune_data::image::mixup::Mixup;
use finetune_data::image::{collate, ImageClassification};
use finetune_data::seed::{batch_rng, sample_rng};
use finetune_data::target::Target;
use finetune_data::transforms::{RandomErasing, TensorImage};
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
    /// Mixup / cutmix over each training batch (its draws from the batch's generator of
    /// (seed, epoch, indices)); its targets are then class distributions `[N, C]` (f32).
    pub mixup: Option<Mixup>,
}

impl ImageBatches {
    /// The source with timm's recipes on its training batches: `mixup` over each batch,
    /// `erasing` after the training pipeline's normalisation.
    pub fn with_recipes(mut self, mixup: Option<Mixup>, erasing: Option<RandomErasing>) -> Self {
        if let Some(e) = erasing {
            self.train.transform = self.train.transform.clone().then(e);
            self.random_train = true;
        }
        self.random_train |= mixup.is_some();
        self.mixup = mixup;
        self
    }
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
        let mut kept = Vec::with_capacity(results.len());
        for (r, &i) in results.into_iter().zip(indices) {
            match r {
                Ok(item) => {
                    items.push(item);
                    kept.push(i);
                }
                Err(e) => self.skipped.handle(self.on_bad, e)?,
            }
        }
        if items.is_empty() {
            return Err(finetune_core::Error::config(format!(
                "every sample of a batch was bad ({})",
                self.skipped.summary()
            )));
        }
        let soft = match self.mixup.as_ref().filter(|_| train) {
            Some(m) => Some(self.mix(m, &mut items, indices, epoch)?),
            None => None,
        };
        let b = collate(items, &self.device)?;
        let targets = match soft {
            Some(t) => t,
            None if pipeline.data.is_multi_label() => {
                let t: Vec<Target> = kept.iter().map(|&i| pipeline.data.target(i)).collect();
                let refs: Vec<&Target> = t.iter().collect();
                Target::collate(&refs, pipeline.data.num_classes(), &self.device)?
            }
            None => b.labels,
        };
        Ok(Batch {
            inputs: b.images,
            targets,
            teacher: None,
        })
    }
}

impl ImageBatches {
    /// Mixes a training batch's images in place; gives its soft targets `[N, C]`.
    fn mix(
        &self,
        m: &Mixup,
        items: &mut [(TensorImage, usize)],
        indices: &[usize],
        epoch: u64,
    ) -> finetune_core::Result<Tensor> {
        let first = &items[0].0;
        let chw = (first.channels, first.height, first.width);
        if let Some((t, _)) = items
            .iter()
            .find(|(t, _)| (t.channels, t.height, t.width) != chw)
        {
            return Err(finetune_core::Error::config(format!(
                "images of one batch differ in size ({}x{}x{} and {}x{}x{}): mixup needs a \
                 fixed-size crop or resize",
                chw.0, chw.1, chw.2, t.channels, t.height, t.width
            )));
        }
        let labels: Vec<usize> = items.iter().map(|(_, l)| *l).collect();
        let mut images: Vec<Vec<f32>> = items
            .iter_mut()
            .map(|(t, _)| std::mem::take(&mut t.data))
            .collect();
        let mut rng = batch_rng(self.seed, epoch, indices);
        let targets = m.apply_in_epoch(&mut images, chw, &labels, epoch, &mut rng);
        for ((t, _), data) in items.iter_mut().zip(images) {
            t.data = data;
        }
        let n = labels.len();
        Ok(Tensor::from_vec(targets, (n, m.num_classes), &self.device)?)
    }
}
