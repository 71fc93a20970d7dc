//! The training batches of a run, built one step ahead on a thread of their own and handed
//! over in order: while the model trains on a step, the next step's micro-batches are read,
//! tokenised or decoded and augmented. The plan of each step is the [`StepOrder`]'s, a
//! function of the step, so a resumed run rebuilds exactly the batches it would have seen.

use crate::feature_cache::{Fed, Feed};
use crate::order::StepOrder;
use crate::source::Batch;
use finetune_core::{Error, Result};
use std::sync::mpsc::{sync_channel, Receiver};

/// One step's epoch and micro-batches.
pub(crate) type StepBatches<I> = (u64, Vec<Batch<Fed<I>>>);

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

/// Starts building the batches of `steps` from `train` on a thread of `scope`.
pub(crate) fn spawn<'scope, 'a: 'scope, I: Send + 'a>(
    scope: &'scope std::thread::Scope<'scope, '_>,
    train: &'a Feed<'a, I>,
    order: StepOrder,
    steps: std::ops::Range<u64>,
) -> Prefetched<I> {
    let (tx, rx) = sync_channel::<Result<StepBatches<I>>>(1);
    scope.spawn(move || {
        for step in steps {
            let plan = order.plan(step);
            let built: Result<Vec<_>> = plan
                .batches
                .iter()
                .map(|idx| train.batch(idx, plan.epoch, true))
                .collect();
            let failed = built.is_err();
            if tx.send(built.map(|b| (plan.epoch, b))).is_err() || failed {
                return;
            }
        }
    });
    Prefetched { rx }
}
