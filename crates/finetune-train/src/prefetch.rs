//! The training batches of a run, built one step ahead on a thread of their own and handed
//! over in order: while the model trains on a step, the next step's micro-batches are read,
//! tokenised or decoded and augmented. The plan of each step is the [`StepOrder`]'s, a
//! function of the step, so a resumed run rebuilds exactly the batches it would have seen.

use crate::feature_cache::{Fed, Feed};
use crate::order::StepOrder;
use crate::source::Batch;
use finetune_core::{Error, Result};
use std::sync::mpsc::{sync_channel, Receiver};

/// One step's micro-batches (this rank's pieces of them, in a distributed run).
pub(crate) struct StepBatches<I> {
    /// The epoch the step belongs to.
    pub(crate) epoch: u64,
    /// This rank's micro-batches; a rank may have none of an epoch's last, short step.
    pub(crate) batches: Vec<Batch<Fed<I>>>,
    /// The samples of the whole step over every rank: each micro-batch's loss is weighted by
    /// its share of them.
    pub(crate) samples: usize,
}

/// The receiving end: [`Prefetched::next`] gives the steps in order. Dropping it stops the
/// producer (at its next hand-over).
pub(crate) struct Prefetched<I> {
    rx: Receiver<Result<StepBatches<I>>>,
}

impl<I> Prefetched<I> {
    /// The next step's batches, or the error that stopped the producer.
    pub(crate) fn next(&self) -> Result<StepBatches<I>> {
        self.rx
            .recv()
            .map_err(|_| Error::config("the batch producer stopped"))?
    }
}

/// Starts building the batches of `steps` from `train` on a thread of `scope`: rank
/// `shard.0`'s pieces of each micro-batch out of `shard.1` ranks ([`crate::distributed::shard`]).
pub(crate) fn spawn<'scope, 'a: 'scope, I: Send + 'a>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    train: &'a Feed<'a, I>,
    order: StepOrder,
    steps: std::ops::Range<u64>,
    shard: (usize, usize),
) -> Prefetched<I> {
    let (tx, rx) = sync_channel::<Result<StepBatches<I>>>(1);
    scope.spawn(move || {
        for step in steps {
            let plan = order.plan(step);
            let samples = plan.batches.iter().map(Vec::len).sum();
            let built: Result<Vec<_>> = plan
                .batches
                .iter()
                .map(|idx| crate::distributed::shard::shard(idx, shard.0, shard.1))
                .filter(|idx| !idx.is_empty())
                .map(|idx| train.batch(idx, plan.epoch, true))
                .collect();
            let failed = built.is_err();
            let built = built.map(|batches| StepBatches {
                epoch: plan.epoch,
                batches,
                samples,
            });
            if tx.send(built).is_err() || failed {
                return;
            }
        }
    });
    Prefetched { rx }
}
