//! Which samples each optimizer step sees: a permutation per epoch seeded by `(seed, epoch)`,
//! cut into batches, grouped `grad_accum` batches to a step (the last group of an epoch may be
//! shorter). A pure function of the global step, which is what makes resume exact.

use finetune_core::Rng;

/// The data order of a run: which samples each optimizer step sees (see the module doc).
/// `batch_size` and `grad_accum` must be at least 1.
#[derive(Debug, Clone, Copy)]
pub struct StepOrder {
    /// Samples in the training set.
    pub samples: usize,
    /// Samples per micro-batch (`--batch-size`).
    pub batch_size: usize,
    /// Micro-batches per optimizer step (`--grad-accum`).
    pub grad_accum: usize,
    /// Whether each epoch's last, incomplete batch is left out (`--drop-last`).
    pub drop_last: bool,
    /// Seeds each epoch's permutation (`--seed`).
    pub seed: u64,
}

/// One optimizer step's micro-batches: the epoch and the sample indices of each.
pub struct StepPlan {
    /// The epoch the step belongs to, from 0.
    pub epoch: u64,
    /// Each micro-batch's sample indices, in order: `batch_size` of them, but for the epoch's
    /// last batch, which holds the remainder.
    pub batches: Vec<Vec<usize>>,
}

impl StepOrder {
    /// Micro-batches per epoch: samples over `batch_size`, rounded up (down under
    /// `drop_last`).
    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.samples / self.batch_size
        } else {
            self.samples.div_ceil(self.batch_size)
        }
    }

    /// Optimizer steps per epoch: micro-batches over `grad_accum`, rounded up, so an epoch's
    /// last step may have fewer micro-batches.
    pub fn steps_per_epoch(&self) -> u64 {
        self.batches_per_epoch().div_ceil(self.grad_accum) as u64
    }

    /// The permutation of `0..samples` that `epoch` reads, seeded by `(seed, epoch)` (the part
    /// a seeded `RandomSampler` plays in PyTorch; not the same permutation).
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.samples).collect();
        let mut rng =
            Rng::seed_from_u64(self.seed ^ (epoch + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        rng.shuffle(&mut order);
        order
    }

    /// The micro-batches of optimizer step `step`, counted from 0 over the whole run.
    pub fn plan(&self, step: u64) -> StepPlan {
        let spe = self.steps_per_epoch().max(1);
        let epoch = step / spe;
        let within = (step % spe) as usize;
        let order = self.epoch_order(epoch);
        let (bs, n) = (self.batch_size, self.samples);
        let first = within * self.grad_accum;
        let last = (first + self.grad_accum).min(self.batches_per_epoch());
        let batches = (first..last)
            .map(|b| order[b * bs..((b + 1) * bs).min(n)].to_vec())
            .collect();
        StepPlan { epoch, batches }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_once_per_epoch_and_steps_group_batches() {
        let o = StepOrder {
            samples: 10,
            batch_size: 3,
            grad_accum: 2,
            drop_last: false,
            seed: 7,
        };
        assert_eq!((o.batches_per_epoch(), o.steps_per_epoch()), (4, 2));
        let mut seen: Vec<usize> = (0..2).flat_map(|s| o.plan(s).batches.concat()).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(o.plan(1).batches.len(), 2);
        assert_eq!(
            o.plan(1).batches[1].len(),
            1,
            "last batch holds the remainder"
        );
        assert_eq!(o.plan(2).epoch, 1);
        assert_ne!(o.epoch_order(0), o.epoch_order(1));
        assert_eq!(o.plan(3).batches, o.plan(3).batches);
        let d = StepOrder {
            drop_last: true,
            ..o
        };
        assert_eq!(d.batches_per_epoch(), 3);
    }
}
