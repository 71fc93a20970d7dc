//! One encoder, several heads: each task's classifier, loaded by its family as a single-task
//! run loads it, with its encoder tensors replaced by the first task's (the same variables,
//! so one update trains them for every task). The learner trains one store holding the
//! shared encoder under the family's names and each task's head under `<task>.<name>`; which
//! tensors make a head is the family's layout's say, not this file's.

use super::export;
use crate::tasks::text::TextClassifier;
use anyhow::{bail, Result};
use candle_core::Tensor;
use finetune_bert::BertBatch;
use finetune_core::{NamePattern, ParamLayout, ParamStore, Problem, Rng, TrainModel};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A batch of one task.
pub struct TaskInputs {
    /// The task's index, in the task file's order.
    pub task: usize,
    /// Its token ids and masks.
    pub inputs: BertBatch,
}

/// A task's classifier in a multi-task model.
pub struct TaskHead {
    /// The task's name.
    pub name: String,
    /// Its classifier: the shared encoder and its own head, with its labels and problem.
    pub clf: TextClassifier,
    /// The factor of its loss.
    pub weight: f64,
    /// Its tensors' names in the shared store, by their names in its own.
    shared_names: HashMap<String, String>,
}

/// The heads on one encoder, trained as one model (see the module doc).
pub struct MultiTaskModel {
    heads: Vec<TaskHead>,
    store: ParamStore,
    layout: ParamLayout,
    /// The task of the batch last run forward, whose loss and problem the learner asks next.
    current: AtomicUsize,
}

impl MultiTaskModel {
    /// The model of `tasks` (name, classifier, loss weight), all of one checkpoint: the first
    /// task's encoder becomes every task's.
    pub fn new(tasks: Vec<(String, TextClassifier, f64)>) -> Result<Self> {
        let Some((_, first, _)) = tasks.first() else {
            bail!("a multi-task run needs at least one task");
        };
        let family = first.model().layout();
        let heads = family
            .head
            .iter()
            .map(|g| NamePattern::new(g))
            .collect::<finetune_core::Result<Vec<_>>>()?;
        let is_head = |n: &str| heads.iter().any(|p| p.matches(n));
        let encoder = first.model().store().clone();
        let store = ParamStore::new();
        for info in encoder.infos().into_iter().filter(|i| !is_head(&i.name)) {
            store.insert_shared(&info.name, &encoder.var(&info.name)?, info.kind)?;
        }
        let mut out = Vec::with_capacity(tasks.len());
        for (name, clf, weight) in tasks {
            if let Some(n) = store
                .names()
                .into_iter()
                .find(|n| n.starts_with(&format!("{name}.")))
            {
                bail!("task name \"{name}\" is taken by the model's parameters ({n})");
            }
            let own = clf.model().store().clone();
            let mut shared_names = HashMap::new();
            for info in own.infos() {
                let shared = if is_head(&info.name) {
                    let shared = format!("{name}.{}", info.name);
                    store.insert_shared(&shared, &own.var(&info.name)?, info.kind)?;
                    shared
                } else {
                    own.share(&info.name, &store.var(&info.name)?)?;
                    info.name.clone()
                };
                shared_names.insert(info.name, shared);
            }
            out.push(TaskHead {
                name,
                clf,
                weight,
                shared_names,
            });
        }
        let layout = layout(family, &out);
        Ok(Self {
            heads: out,
            store,
            layout,
            current: AtomicUsize::new(0),
        })
    }

    /// The tasks' heads, in the task file's order.
    pub fn heads(&self) -> &[TaskHead] {
        &self.heads
    }

    fn current(&self) -> &TaskHead {
        &self.heads[self.current.load(Ordering::SeqCst)]
    }
}

/// The family's layout over the shared store: every task's head globs under its prefix, the
/// family's depths for the encoder, none for the heads.
fn layout(family: ParamLayout, heads: &[TaskHead]) -> ParamLayout {
    let prefixes: Vec<String> = heads.iter().map(|h| format!("{}.", h.name)).collect();
    let mut out = family.clone();
    out.head = heads
        .iter()
        .flat_map(|h| family.head.iter().map(move |g| format!("{}.{g}", h.name)))
        .collect();
    let depth = family.depth.clone();
    out.depth = Arc::new(move |n: &str| {
        if prefixes.iter().any(|p| n.starts_with(p.as_str())) {
            None
        } else {
            depth(n)
        }
    });
    out
}

impl TrainModel for MultiTaskModel {
    type Inputs = TaskInputs;

    fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The task's classifier on the batch, its trainable mask first made the shared store's.
    fn forward_t(&self, inputs: &TaskInputs, train: bool) -> finetune_core::Result<Tensor> {
        self.current.store(inputs.task, Ordering::SeqCst);
        let head = self.current();
        head.clf.model().store().update_mask(|own| {
            let shared = head.shared_names.get(own)?;
            Some(self.store.is_trainable(shared).unwrap_or(false))
        });
        head.clf.model().forward_t(&inputs.inputs, train)
    }

    /// The task's loss times its weight.
    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> finetune_core::Result<Tensor> {
        let head = self.current();
        let loss = head.clf.model().loss(logits, targets, ls)?;
        Ok(loss.affine(head.weight, 0.0)?)
    }

    fn problem(&self) -> Problem {
        self.current().clf.model().problem()
    }

    fn layout(&self) -> ParamLayout {
        self.layout.clone()
    }

    fn rng_state(&self) -> Option<Rng> {
        self.heads[0].clf.model().rng_state()
    }

    fn set_rng_state(&self, rng: Rng) {
        self.heads[0].clf.model().set_rng_state(rng)
    }

    /// A folder per task (`<task>/`, a complete sequence classifier) and the shared encoder
    /// (`backbone/`, the family's base model).
    fn export(&self, dir: &Path) -> finetune_core::Result<()> {
        export::write(&self.heads, dir).map_err(|e| finetune_core::Error::config(format!("{e:#}")))
    }
}
