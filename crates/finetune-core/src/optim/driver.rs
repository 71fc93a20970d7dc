//! Runs an elementwise update rule over every parameter: in place on CPU f32 tensors (through
//! candle's `InplaceOp2`, the state in host buffers), otherwise on the parameter's own device
//! with candle tensor ops (the state kept there as tensors, `Var::set` writing the result): the
//! path a GPU takes, which `FINETUNE_OPS=generic` (or [`ElementwiseOptimizer::set_device_path`])
//! also runs on the CPU.

use super::state::{OptimizerState, SlotState};
use super::Optimizer;
use crate::error::{Error, Result};
use crate::grads::Grads;
use crate::groups::ParamGroup;
use crate::params::ParamStore;
use candle_core::{CpuStorage, DType, Layout, Tensor, Var};
use rayon::prelude::*;
use serde::{de::DeserializeOwned, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};

/// The scalars of one parameter's update.
#[derive(Debug, Clone, Copy)]
pub struct StepHyper {
    /// The lr γ of the parameter's group for this step.
    pub lr: f64,
    /// The weight decay λ of the parameter's group (the rule decides coupled or decoupled).
    pub weight_decay: f64,
    /// This parameter's step count, 1 on its first update (PyTorch's per-parameter `step`).
    pub step: u64,
}

/// An optimizer's per-element update.
pub trait UpdateRule: Clone + Send + Sync + Serialize + DeserializeOwned + 'static {
    /// The optimizer's name: its [`OptimizerKind`](super::OptimizerKind) spelling, and the
    /// `optimizer` field of its saved state.
    const NAME: &'static str;
    /// Names of the per-parameter state buffers, each shaped like the parameter
    /// (PyTorch's names: `exp_avg`, `exp_avg_sq`, `momentum_buffer`, …).
    fn slot_names(&self) -> Vec<&'static str>;
    /// Rejects invalid hyper-parameters as PyTorch's constructors do.
    fn validate(&self) -> Result<()>;
    /// Updates a chunk of parameter `p` given its gradient `g` and state `slots` (same length).
    fn update(&self, h: &StepHyper, p: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]);
    /// The same update on whole f32 tensors of any device, with candle ops: the new parameter
    /// and the new state slots (in [`UpdateRule::slot_names`]' order).
    fn update_tensors(
        &self,
        h: &StepHyper,
        p: &Tensor,
        g: &Tensor,
        slots: &[Tensor],
    ) -> Result<(Tensor, Vec<Tensor>)>;
}

struct ParamState {
    step: u64,
    shape: Vec<usize>,
    /// The state on the host (the in-place CPU path, and state just loaded).
    slots: Vec<Vec<f32>>,
    /// The state on the parameter's device, once the device path has run; then `slots` are
    /// empty.
    device: Option<Vec<Tensor>>,
}

impl ParamState {
    /// The state as host buffers (from the device when it lives there).
    fn host_slots(&self) -> Result<Vec<Vec<f32>>> {
        match &self.device {
            None => Ok(self.slots.clone()),
            Some(ts) => ts
                .iter()
                .map(|t| Ok(t.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?))
                .collect(),
        }
    }
}

/// An [`Optimizer`] made of an [`UpdateRule`] and param groups.
pub struct ElementwiseOptimizer<R: UpdateRule> {
    rule: R,
    groups: Vec<ParamGroup>,
    grouped: HashSet<String>,
    state: BTreeMap<String, ParamState>,
    device_path: bool,
}

impl<R: UpdateRule> ElementwiseOptimizer<R> {
    /// An optimizer with no state yet (each parameter's state is created at its first
    /// update). Fails on hyper-parameters the rule rejects, a group's negative lr or weight
    /// decay, or a parameter in two groups.
    pub fn new(rule: R, groups: Vec<ParamGroup>) -> Result<Self> {
        rule.validate()?;
        let mut grouped = HashSet::new();
        for g in &groups {
            if !crate::error::non_negative(g.lr) || !crate::error::non_negative(g.weight_decay) {
                return Err(Error::config(format!(
                    "param group `{}`: lr and weight decay must be >= 0 (got {}, {})",
                    g.name, g.lr, g.weight_decay
                )));
            }
            for p in &g.params {
                if !grouped.insert(p.clone()) {
                    return Err(Error::config(format!(
                        "parameter `{p}` is in two param groups"
                    )));
                }
            }
        }
        Ok(Self {
            rule,
            groups,
            grouped,
            state: BTreeMap::new(),
            device_path: finetune_kernels::ops::generic_requested(),
        })
    }

    /// Runs every update on the device path (candle tensor ops, state as tensors) even for CPU
    /// f32 parameters, as a GPU runs it; on by default under `FINETUNE_OPS=generic`.
    pub fn set_device_path(&mut self, on: bool) {
        self.device_path = on;
    }

    /// The update rule and its hyper-parameters (after [`Optimizer::load_state`], the saved
    /// ones).
    pub fn rule(&self) -> &R {
        &self.rule
    }
}

const CHUNK: usize = 1 << 14;

fn run_chunks<R: UpdateRule>(
    rule: &R,
    h: &StepHyper,
    p: &mut [f32],
    g: &[f32],
    slots: &mut [Vec<f32>],
) {
    if p.len() <= CHUNK {
        let mut s: Vec<&mut [f32]> = slots.iter_mut().map(|s| s.as_mut_slice()).collect();
        finetune_kernels::ops::simd::wide(
            #[inline(always)]
            || rule.update(h, p, g, &mut s),
        );
        return;
    }
    let mut slot_iters: Vec<_> = slots.iter_mut().map(|s| s.chunks_mut(CHUNK)).collect();
    type Job<'a> = (&'a mut [f32], &'a [f32], Vec<&'a mut [f32]>);
    let jobs: Vec<Job> = p
        .chunks_mut(CHUNK)
        .zip(g.chunks(CHUNK))
        .map(|(pc, gc)| {
            let sc = slot_iters
                .iter_mut()
                .map(|it| it.next().expect("state has the parameter's length"))
                .collect();
            (pc, gc, sc)
        })
        .collect();
    jobs.into_par_iter().for_each(|(pc, gc, mut sc)| {
        finetune_kernels::ops::simd::wide(
            #[inline(always)]
            || rule.update(h, pc, gc, &mut sc),
        )
    });
}

struct InPlaceStep<'a, R> {
    rule: &'a R,
    h: StepHyper,
    slots: RefCell<&'a mut [Vec<f32>]>,
}

impl<R: UpdateRule> candle_core::InplaceOp2 for InPlaceStep<'_, R> {
    fn name(&self) -> &'static str {
        "optimizer-step"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<()> {
        let (CpuStorage::F32(p), CpuStorage::F32(g)) = (s1, s2) else {
            candle_core::bail!("optimizer step: expected f32 parameter and gradient")
        };
        let (Some((p0, p1)), Some((g0, g1))) = (l1.contiguous_offsets(), l2.contiguous_offsets())
        else {
            candle_core::bail!("optimizer step: expected contiguous parameter and gradient")
        };
        let mut slots = self.slots.borrow_mut();
        run_chunks(self.rule, &self.h, &mut p[p0..p1], &g[g0..g1], &mut slots);
        Ok(())
    }
}

fn apply<R: UpdateRule>(
    rule: &R,
    h: StepHyper,
    var: &Var,
    grad: &Tensor,
    st: &mut ParamState,
    device_path: bool,
) -> Result<()> {
    let t = var.as_tensor();
    if !device_path
        && st.device.is_none()
        && t.device().is_cpu()
        && t.dtype() == DType::F32
        && t.is_contiguous()
    {
        let g = grad.to_dtype(DType::F32)?.contiguous()?;
        let op = InPlaceStep {
            rule,
            h,
            slots: RefCell::new(&mut st.slots),
        };
        t.inplace_op2(&g, &op)?;
        return Ok(());
    }
    // On the parameter's device: the state moves there once, then stays.
    let slots = match st.device.take() {
        Some(ts) => ts,
        None => std::mem::take(&mut st.slots)
            .into_iter()
            .map(|s| Ok(Tensor::from_vec(s, t.shape(), t.device())?))
            .collect::<Result<Vec<_>>>()?,
    };
    let p = t.to_dtype(DType::F32)?;
    let g = grad.to_dtype(DType::F32)?.to_device(t.device())?;
    let (new, slots) = rule.update_tensors(&h, &p, &g, &slots)?;
    var.set(&new.to_dtype(t.dtype())?)?;
    st.device = Some(slots);
    Ok(())
}

impl<R: UpdateRule> Optimizer for ElementwiseOptimizer<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn groups(&self) -> &[ParamGroup] {
        &self.groups
    }

    fn set_lr(&mut self, group: usize, lr: f64) {
        self.groups[group].lr = lr;
    }

    fn step(&mut self, store: &ParamStore, grads: &Grads) -> Result<()> {
        if let Some((name, _)) = grads.iter().find(|(n, _)| !self.grouped.contains(*n)) {
            return Err(Error::config(format!(
                "parameter `{name}` has a gradient but is in no param group of the optimizer"
            )));
        }
        let n_slots = self.rule.slot_names().len();
        for group in &self.groups {
            for name in &group.params {
                let Some(grad) = grads.get(name) else {
                    continue;
                };
                if !store.is_trainable(name)? {
                    continue;
                }
                let var = store.var(name)?;
                if grad.dims() != var.dims() {
                    return Err(Error::Shape {
                        name: format!("gradient of {name}"),
                        expected: var.dims().to_vec(),
                        got: grad.dims().to_vec(),
                    });
                }
                let numel = var.elem_count();
                let st = self
                    .state
                    .entry(name.clone())
                    .or_insert_with(|| ParamState {
                        step: 0,
                        shape: var.dims().to_vec(),
                        slots: vec![vec![0f32; numel]; n_slots],
                        device: None,
                    });
                let wrong = match &st.device {
                    None => st.slots.iter().any(|s| s.len() != numel),
                    Some(ts) => ts.iter().any(|t| t.dims() != var.dims()),
                };
                if wrong {
                    return Err(Error::Shape {
                        name: format!("optimizer state of {name}"),
                        expected: var.dims().to_vec(),
                        got: st.shape.clone(),
                    });
                }
                st.step += 1;
                let h = StepHyper {
                    lr: group.lr,
                    weight_decay: group.weight_decay,
                    step: st.step,
                };
                apply(&self.rule, h, &var, grad, st, self.device_path)?;
            }
        }
        Ok(())
    }

    fn state(&self) -> Result<OptimizerState> {
        let names = self.rule.slot_names();
        let host = self
            .state
            .iter()
            .map(|(n, s)| Ok((n, s.host_slots()?)))
            .collect::<Result<BTreeMap<&String, Vec<Vec<f32>>>>>()?;
        Ok(OptimizerState {
            optimizer: R::NAME.to_string(),
            hyper: serde_json::to_value(&self.rule).unwrap_or(serde_json::Value::Null),
            groups: self.groups.clone(),
            steps: self
                .state
                .iter()
                .map(|(n, s)| (n.clone(), s.step))
                .collect(),
            slots: self
                .state
                .iter()
                .flat_map(|(n, s)| {
                    names
                        .iter()
                        .zip(&host[n])
                        .map(move |(slot, data)| SlotState {
                            param: n.clone(),
                            slot: slot.to_string(),
                            shape: s.shape.clone(),
                            data: data.clone(),
                        })
                })
                .collect(),
        })
    }

    fn load_state(&mut self, st: OptimizerState) -> Result<()> {
        if st.optimizer != R::NAME {
            return Err(Error::config(format!(
                "optimizer state is for `{}`, not `{}`",
                st.optimizer,
                R::NAME
            )));
        }
        let rule: R = serde_json::from_value(st.hyper.clone())
            .map_err(|e| Error::config(format!("optimizer state: bad hyper-parameters: {e}")))?;
        rule.validate()?;
        let names = rule.slot_names();
        let mut state: BTreeMap<String, ParamState> = BTreeMap::new();
        for (param, step) in &st.steps {
            if !self.grouped.contains(param) {
                return Err(Error::config(format!(
                    "optimizer state names parameter `{param}`, which is in no param group"
                )));
            }
            state.insert(
                param.clone(),
                ParamState {
                    step: *step,
                    shape: Vec::new(),
                    slots: vec![Vec::new(); names.len()],
                    device: None,
                },
            );
        }
        for s in st.slots {
            let ps = state.get_mut(&s.param).ok_or_else(|| {
                Error::config(format!(
                    "optimizer state: slot for unknown parameter `{}`",
                    s.param
                ))
            })?;
            let k = names.iter().position(|n| *n == s.slot).ok_or_else(|| {
                Error::config(format!(
                    "optimizer state: unknown slot `{}` of `{}`",
                    s.slot, s.param
                ))
            })?;
            if s.data.len() != s.shape.iter().product::<usize>() {
                return Err(Error::config(format!(
                    "optimizer state: slot `{}` of `{}` has {} values for shape {:?}",
                    s.slot,
                    s.param,
                    s.data.len(),
                    s.shape
                )));
            }
            ps.shape = s.shape;
            ps.slots[k] = s.data;
        }
        for (param, ps) in &state {
            let numel: usize = ps.shape.iter().product();
            if ps.slots.iter().any(|s| s.len() != numel) {
                return Err(Error::config(format!(
                    "optimizer state: missing slots for `{param}`"
                )));
            }
        }
        if st.groups.len() != self.groups.len()
            || st
                .groups
                .iter()
                .zip(&self.groups)
                .any(|(a, b)| a.params != b.params)
        {
            return Err(Error::config(
                "optimizer state: its param groups differ from this run's (same freezing and group flags are needed to resume)",
            ));
        }
        self.rule = rule;
        self.groups = st.groups;
        self.state = state;
        Ok(())
    }
}
