//! The training batches of a multi-task run: the learner cuts each epoch's permutation of all
//! tasks' rows into batches as it does for one task; each of its batches is a slot of the
//! [`TaskSampler`]'s plan, which decides the task and the rows. Since the learner's order and
//! the plan are both functions of the seed and the epoch, so is every batch.

use super::model::TaskInputs;
use super::sampler::{EpochPlan, TaskSampler};
use crate::tasks::text::TextBatches;
use finetune_train::order::StepOrder;
use finetune_train::{Batch, BatchSource};
use std::sync::Mutex;

/// Each task's training batches, sampled across tasks.
pub struct TaskBatches<'a> {
    tasks: Vec<TextBatches<'a>>,
    sampler: TaskSampler,
    order: StepOrder,
    /// The current epoch's plan and, per learner sample index, its position in the epoch.
    epoch: Mutex<Option<(EpochPlan, Vec<usize>)>>,
}

impl<'a> TaskBatches<'a> {
    /// Batches of `tasks` as `sampler` plans them; `batch_size` and `seed` must be the
    /// learner's (its order says which slot a batch is).
    pub fn new(
        tasks: Vec<TextBatches<'a>>,
        sampler: TaskSampler,
        batch_size: usize,
        seed: u64,
    ) -> Self {
        let order = StepOrder {
            samples: sampler.total(),
            batch_size,
            grad_accum: 1,
            drop_last: false,
            seed,
        };
        Self {
            tasks,
            sampler,
            order,
            epoch: Mutex::new(None),
        }
    }

    /// The slot a learner batch starting with sample `first` fills in `epoch`, with the task
    /// and rows the plan gives it.
    fn slot_rows(&self, first: usize, epoch: u64, count: usize) -> (usize, Vec<usize>) {
        let mut cache = self.epoch.lock().unwrap_or_else(|p| p.into_inner());
        if cache.as_ref().is_some_and(|(p, _)| p.epoch() != epoch) {
            *cache = None;
        }
        let (plan, position) = cache.get_or_insert_with(|| {
            let mut position = vec![0; self.order.samples];
            for (at, i) in self.order.epoch_order(epoch).into_iter().enumerate() {
                position[i] = at;
            }
            (self.sampler.epoch(epoch), position)
        });
        let slot = position[first] / self.order.batch_size;
        self.sampler.rows(plan, slot, count)
    }
}

impl BatchSource<TaskInputs> for TaskBatches<'_> {
    fn len(&self) -> usize {
        self.sampler.total()
    }

    fn batch(
        &self,
        indices: &[usize],
        epoch: u64,
        train: bool,
    ) -> finetune_core::Result<Batch<TaskInputs>> {
        let Some(&first) = indices.first() else {
            return Err(finetune_core::Error::config("an empty batch"));
        };
        let (task, rows) = self.slot_rows(first, epoch, indices.len());
        let b = self.tasks[task].batch(&rows, epoch, train)?;
        Ok(Batch::new(
            TaskInputs {
                task,
                inputs: b.inputs,
            },
            b.targets,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tasks::text::multitask::probabilities;

    #[test]
    fn the_learners_batches_fill_the_plans_slots_in_order() {
        let (sizes, bs, seed) = (vec![30, 7, 12], 4, 9);
        let sampler = TaskSampler::new(sizes.clone(), probabilities(&sizes, 2.0), bs, seed);
        let batches = TaskBatches::new(Vec::new(), sampler.clone(), bs, seed);
        // The learner's own order, as it cuts an epoch into batches.
        let learner = StepOrder {
            samples: 49,
            batch_size: bs,
            grad_accum: 3,
            drop_last: false,
            seed,
        };
        for epoch in 0..2 {
            let plan = sampler.epoch(epoch);
            let mut slot = 0;
            for step in epoch * learner.steps_per_epoch()..(epoch + 1) * learner.steps_per_epoch() {
                for indices in learner.plan(step).batches {
                    let got = batches.slot_rows(indices[0], epoch, indices.len());
                    assert_eq!(got, sampler.rows(&plan, slot, indices.len()), "slot {slot}");
                    assert!(got.1.iter().all(|&r| r < sizes[got.0]), "one task's rows");
                    slot += 1;
                }
            }
            assert_eq!(slot, plan.slots(), "every slot once");
        }
    }
}
