//! Which task each training batch comes from, and which of its rows. An epoch has as many
//! batch slots as the learner cuts from all tasks' rows together; each slot's task is drawn
//! with the tasks' probabilities (proportional to their rows, or tempered:
//! p_i ∝ n_i^(1/T)), seeded by `(seed, epoch)`. A task's slots read its rows in a permutation
//! seeded by `(seed, epoch, task)`, starting over (with the next permutation) when they run
//! out. Everything is a function of the seed, the epoch and the slot, so a batch is the same
//! whenever it is built.

use finetune_core::Rng;
use serde::{Deserialize, Serialize};

/// How a multi-task run draws each batch's task (`--task-sampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskSampling {
    /// In proportion to the tasks' training rows.
    #[default]
    Proportional,
    /// In proportion to rows^(1/T) (`--task-temperature T`).
    Temperature,
}

/// The temperature of `--task-sampling temperature` when `--task-temperature` is not given.
pub const DEFAULT_TEMPERATURE: f64 = 2.0;

/// Each task's probability for `sizes` rows at temperature `t` (`t = 1`: proportional):
/// n_i^(1/t) / Σ_j n_j^(1/t).
pub fn probabilities(sizes: &[usize], t: f64) -> Vec<f64> {
    let w: Vec<f64> = sizes.iter().map(|&n| (n as f64).powf(1.0 / t)).collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|x| x / total).collect()
}

/// A multi-task run's batch plan (see the module doc).
#[derive(Debug, Clone)]
pub struct TaskSampler {
    sizes: Vec<usize>,
    probs: Vec<f64>,
    batch_size: usize,
    seed: u64,
}

/// One epoch's slots: each one's task, and where it starts in its task's row stream.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochPlan {
    epoch: u64,
    tasks: Vec<usize>,
    starts: Vec<usize>,
}

impl EpochPlan {
    /// The task of slot `slot`.
    pub fn task(&self, slot: usize) -> usize {
        self.tasks[slot]
    }

    /// The epoch it plans.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// Number of slots.
    pub fn slots(&self) -> usize {
        self.tasks.len()
    }
}

impl TaskSampler {
    /// A plan for tasks of `sizes` rows (each at least one), batches of `batch_size` rows,
    /// drawing tasks with `probs` (see [`probabilities`]).
    pub fn new(sizes: Vec<usize>, probs: Vec<f64>, batch_size: usize, seed: u64) -> Self {
        Self {
            sizes,
            probs,
            batch_size: batch_size.max(1),
            seed,
        }
    }

    /// The tasks' probabilities.
    pub fn probabilities(&self) -> &[f64] {
        &self.probs
    }

    /// Rows over all tasks: the learner's samples per epoch.
    pub fn total(&self) -> usize {
        self.sizes.iter().sum()
    }

    /// The slots of `epoch`: one per batch the learner cuts from [`Self::total`] rows.
    pub fn epoch(&self, epoch: u64) -> EpochPlan {
        let slots = self.total().div_ceil(self.batch_size);
        let mut rng = Rng::seed_from_u64(self.mix(epoch, 0));
        let mut used = vec![0usize; self.sizes.len()];
        let (mut tasks, mut starts) = (Vec::with_capacity(slots), Vec::with_capacity(slots));
        for _ in 0..slots {
            let t = self.draw(rng.next_f64());
            tasks.push(t);
            starts.push(used[t] * self.batch_size);
            used[t] += 1;
        }
        EpochPlan {
            epoch,
            tasks,
            starts,
        }
    }

    /// Slot `slot`'s task and `count` rows of it (row indices within the task).
    pub fn rows(&self, plan: &EpochPlan, slot: usize, count: usize) -> (usize, Vec<usize>) {
        let t = plan.tasks[slot];
        let n = self.sizes[t];
        let start = plan.starts[slot];
        let mut pass = usize::MAX;
        let mut order = Vec::new();
        let rows = (start..start + count)
            .map(|k| {
                if k / n != pass {
                    pass = k / n;
                    order = self.permutation(plan.epoch, t, pass);
                }
                order[k % n]
            })
            .collect();
        (t, rows)
    }

    /// The task whose cumulative probability first exceeds `u` (in [0, 1)).
    fn draw(&self, u: f64) -> usize {
        let mut acc = 0.0;
        for (t, p) in self.probs.iter().enumerate() {
            acc += p;
            if u < acc {
                return t;
            }
        }
        self.probs.len() - 1
    }

    /// Task `task`'s rows in the order of its `pass`th reading in `epoch`.
    fn permutation(&self, epoch: u64, task: usize, pass: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.sizes[task]).collect();
        let stream = ((task as u64 + 1) << 32) ^ pass as u64;
        Rng::seed_from_u64(self.mix(epoch, stream)).shuffle(&mut order);
        order
    }

    /// The seed of one stream of `epoch`: 0 the tasks' draw, the others a task's permutations
    /// (apart from the learner's own order, which is seeded by the seed and epoch alone).
    fn mix(&self, epoch: u64, stream: u64) -> u64 {
        let e = (epoch + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let s = stream.wrapping_add(1).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        self.seed ^ e ^ s.rotate_left(17)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_follow_the_formula() {
        let sizes = [900, 100];
        let p = probabilities(&sizes, 1.0);
        assert!((p[0] - 0.9).abs() < 1e-12 && (p[1] - 0.1).abs() < 1e-12);
        // T = 2: √900 : √100 = 30 : 10.
        let p = probabilities(&sizes, 2.0);
        assert!(
            (p[0] - 0.75).abs() < 1e-12 && (p[1] - 0.25).abs() < 1e-12,
            "{p:?}"
        );
        // T = 3 against the formula written out.
        let p = probabilities(&[8, 27, 1], 3.0);
        let want = [2.0 / 6.0, 3.0 / 6.0, 1.0 / 6.0];
        for (a, b) in p.iter().zip(want) {
            assert!((a - b).abs() < 1e-12, "{p:?}");
        }
    }

    fn sampler(probs: Vec<f64>, seed: u64) -> TaskSampler {
        TaskSampler::new(vec![900, 100], probs, 10, seed)
    }

    #[test]
    fn slots_follow_the_probabilities() {
        for t in [1.0, 2.0] {
            let s = sampler(probabilities(&[900, 100], t), 3);
            let (mut small, mut slots) = (0, 0);
            for e in 0..40 {
                let plan = s.epoch(e);
                small += (0..plan.slots()).filter(|&i| plan.task(i) == 1).count();
                slots += plan.slots();
            }
            let share = small as f64 / slots as f64;
            let want = s.probabilities()[1];
            assert!((share - want).abs() < 0.03, "T={t}: {share} vs {want}");
        }
    }

    #[test]
    fn each_slot_reads_one_task_and_tasks_cover_their_rows() {
        let s = sampler(probabilities(&[900, 100], 1.0), 5);
        let plan = s.epoch(0);
        let mut seen = [vec![0usize; 900], vec![0usize; 100]];
        for slot in 0..plan.slots() {
            let (t, rows) = s.rows(&plan, slot, 10);
            assert_eq!(t, plan.task(slot));
            assert!(rows.iter().all(|&r| r < [900, 100][t]));
            for r in rows {
                seen[t][r] += 1;
            }
        }
        // Rows are read in permutations: no row twice before every row once.
        for counts in &seen {
            let (lo, hi) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(hi - lo <= 1, "{lo}..{hi}");
        }
    }

    #[test]
    fn the_plan_is_a_function_of_the_seed_and_epoch() {
        let p = probabilities(&[900, 100], 2.0);
        let (a, b) = (sampler(p.clone(), 1), sampler(p.clone(), 1));
        assert_eq!(a.epoch(4), b.epoch(4));
        assert_eq!(a.rows(&a.epoch(4), 7, 10), b.rows(&b.epoch(4), 7, 10));
        assert_ne!(a.epoch(4), a.epoch(5));
        assert_ne!(a.epoch(4), sampler(p, 2).epoch(4));
    }
}
