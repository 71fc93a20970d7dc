//! Parameter groups: which learning rate and weight decay each parameter trains with.
//!
//! Every parameter of the store (frozen ones too, so gradual unfreezing needs no regrouping)
//! lands in exactly one [`ParamGroup`]. The rules, in order:
//! 1. the first [`GroupSpec`] whose patterns match sets the lr (absolute, or a multiple of the
//!    base lr) and, optionally, the weight decay;
//! 2. otherwise layer-wise LR decay, when enabled, scales the base lr by
//!    `decay^(L + 1 − depth)` (depth 0 = embeddings, `1..=L` = layers, `L + 1` = head);
//! 3. weight decay is the base value, except for "no decay" parameters — by default 1-D tensors
//!    (biases and normalisation weights, as timm does) and names matching `*.bias`,
//!    `*LayerNorm*`, `*layer_norm*`, `*.bn*`, `bn*`, `*norm*` (as transformers' Trainer does) —
//!    unless a spec set the decay explicitly.
//!
//! Parameters sharing (lr, weight decay, spec) form one group, in store order.

use crate::error::{Error, Result};
use crate::params::{ParamStore, TensorKind};
use crate::pattern::PatternSet;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How a group's learning rate relates to the base lr.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum LrSpec {
    /// An absolute learning rate.
    Absolute(f64),
    /// A multiple of the base learning rate.
    Scale(f64),
}

/// A user-defined group: parameters matching `patterns`.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    /// The group's name, as [`ParamGroup::name`] and error messages show it.
    pub name: String,
    /// The parameters matching any of these belong to the group, unless an earlier spec took
    /// them (the first matching spec wins).
    pub patterns: PatternSet,
    /// The group's lr; `None`: the base lr, scaled by layer-wise decay when it is enabled.
    pub lr: Option<LrSpec>,
    /// The group's weight decay, applied to every parameter of the group, "no decay" ones
    /// included; `None`: the base weight decay, or 0 for "no decay" parameters.
    pub weight_decay: Option<f64>,
}

impl GroupSpec {
    /// A group named `name` over the parameters matching any of `patterns`, with the default
    /// lr and weight decay; a malformed pattern is an [`Error::Pattern`].
    pub fn new<S: AsRef<str>>(name: &str, patterns: &[S]) -> Result<Self> {
        Ok(Self {
            name: name.to_string(),
            patterns: PatternSet::new(patterns)?,
            lr: None,
            weight_decay: None,
        })
    }

    /// Sets the group's lr, absolute or as a multiple of the base lr (`--head-lr` style).
    pub fn lr(mut self, lr: LrSpec) -> Self {
        self.lr = Some(lr);
        self
    }

    /// Sets the group's weight decay explicitly: it then applies to every parameter of the
    /// group, biases and normalisation weights included.
    pub fn weight_decay(mut self, wd: f64) -> Self {
        self.weight_decay = Some(wd);
        self
    }
}

/// One optimizer parameter group, as PyTorch's `param_groups` entries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamGroup {
    /// The spec's name or `default`, then `.depth{d}` when layer-wise decay set the lr, then
    /// `.no_decay` for the parameters exempted from a non-zero weight decay.
    pub name: String,
    /// The group's parameter names, in store order (frozen parameters included, buffers not).
    pub params: Vec<String>,
    /// The group's peak lr, what schedules scale (PyTorch's `initial_lr`).
    pub base_lr: f64,
    /// The lr used by the next optimizer step.
    pub lr: f64,
    /// The weight decay λ; whether it is coupled (added to the gradient) or decoupled is the
    /// optimizer's choice.
    pub weight_decay: f64,
}

/// Depth of a parameter for layer-wise LR decay; `None` means "head" (depth `L + 1`).
pub type DepthFn = Arc<dyn Fn(&str) -> Option<usize> + Send + Sync>;

/// The name patterns exempt from weight decay unless [`GroupBuilder::no_decay`] replaces them:
/// biases and normalisation layers, as transformers' Trainer exempts them.
pub const DEFAULT_NO_DECAY: [&str; 6] = [
    "*.bias",
    "*LayerNorm*",
    "*layer_norm*",
    "*.bn*",
    "bn*",
    "*norm*",
];

/// Builds [`ParamGroup`]s from a store; see the module documentation for the rules.
#[derive(Clone)]
pub struct GroupBuilder {
    base_lr: f64,
    weight_decay: f64,
    specs: Vec<GroupSpec>,
    no_decay: PatternSet,
    no_decay_1d: bool,
    layer_decay: Option<(f64, usize, DepthFn)>,
}

impl GroupBuilder {
    /// A builder with this base (peak) lr and weight decay, no group spec, the default "no
    /// decay" rules ([`DEFAULT_NO_DECAY`] and every 1-D tensor) and no layer-wise decay. The
    /// values are checked by [`GroupBuilder::build`].
    pub fn new(base_lr: f64, weight_decay: f64) -> Self {
        Self {
            base_lr,
            weight_decay,
            specs: Vec::new(),
            no_decay: PatternSet::new(&DEFAULT_NO_DECAY).expect("default patterns are valid"),
            no_decay_1d: true,
            layer_decay: None,
        }
    }

    /// Adds a user-defined group; specs are tried in the order they were added.
    pub fn spec(mut self, spec: GroupSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// Replaces the "no weight decay" name patterns and whether 1-D tensors are exempt.
    pub fn no_decay<S: AsRef<str>>(mut self, patterns: &[S], one_d: bool) -> Result<Self> {
        self.no_decay = PatternSet::new(patterns)?;
        self.no_decay_1d = one_d;
        Ok(self)
    }

    /// Layer-wise LR decay over `num_layers` layers, depths given by `depth`.
    pub fn layer_decay(mut self, decay: f64, num_layers: usize, depth: DepthFn) -> Self {
        self.layer_decay = Some((decay, num_layers, depth));
        self
    }

    /// Sorts every parameter of `store` (buffers excluded) into groups by the rules of the
    /// module documentation; each group's `lr` starts at its `base_lr`. Fails on a base lr
    /// that is negative or not finite, a negative weight decay, a layer-wise decay outside
    /// `(0, 1]`, a spec's negative or non-finite lr, or a spec that matches no parameter.
    pub fn build(&self, store: &ParamStore) -> Result<Vec<ParamGroup>> {
        if !crate::error::non_negative(self.base_lr) || !self.base_lr.is_finite() {
            return Err(Error::config(format!(
                "learning rate must be >= 0, got {}",
                self.base_lr
            )));
        }
        if !crate::error::non_negative(self.weight_decay) {
            return Err(Error::config(format!(
                "weight decay must be >= 0, got {}",
                self.weight_decay
            )));
        }
        if let Some((d, _, _)) = &self.layer_decay {
            if !(*d > 0.0 && *d <= 1.0) {
                return Err(Error::config(format!(
                    "layer-wise lr decay must be in (0, 1], got {d}"
                )));
            }
        }
        for s in &self.specs {
            if let Some(LrSpec::Absolute(v) | LrSpec::Scale(v)) = s.lr {
                if !crate::error::non_negative(v) || !v.is_finite() {
                    return Err(Error::config(format!(
                        "param group `{}`: lr must be >= 0",
                        s.name
                    )));
                }
            }
        }
        let mut groups: Vec<ParamGroup> = Vec::new();
        let mut used = vec![false; self.specs.len()];
        for info in store.infos() {
            if info.kind != TensorKind::Parameter {
                continue;
            }
            let name = &info.name;
            let spec = self.specs.iter().position(|s| s.patterns.matches(name));
            let mut depth_suffix = String::new();
            let (mut group_name, lr, wd_explicit) = match spec {
                Some(i) => {
                    used[i] = true;
                    let s = &self.specs[i];
                    let lr = match s.lr {
                        Some(LrSpec::Absolute(v)) => v,
                        Some(LrSpec::Scale(f)) => self.base_lr * f,
                        None => self.layer_scaled(name, &mut depth_suffix),
                    };
                    (s.name.clone(), lr, s.weight_decay)
                }
                None => (
                    "default".to_string(),
                    self.layer_scaled(name, &mut depth_suffix),
                    None,
                ),
            };
            let no_decay =
                (self.no_decay_1d && info.shape.len() <= 1) || self.no_decay.matches(name);
            let wd = match wd_explicit {
                Some(w) => w,
                None if no_decay => 0.0,
                None => self.weight_decay,
            };
            group_name.push_str(&depth_suffix);
            if wd == 0.0 && self.weight_decay > 0.0 && wd_explicit.is_none() {
                group_name.push_str(".no_decay");
            }
            match groups
                .iter_mut()
                .find(|g| g.name == group_name && g.base_lr == lr && g.weight_decay == wd)
            {
                Some(g) => g.params.push(name.clone()),
                None => groups.push(ParamGroup {
                    name: group_name,
                    params: vec![name.clone()],
                    base_lr: lr,
                    lr,
                    weight_decay: wd,
                }),
            }
        }
        if let Some(i) = used.iter().position(|u| !u) {
            return Err(Error::Pattern {
                pattern: self.specs[i]
                    .patterns
                    .patterns()
                    .iter()
                    .map(|p| p.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                msg: format!("param group `{}` matches no parameter", self.specs[i].name),
            });
        }
        Ok(groups)
    }

    fn layer_scaled(&self, name: &str, suffix: &mut String) -> f64 {
        match &self.layer_decay {
            Some((decay, layers, depth)) => {
                let d = depth(name).unwrap_or(layers + 1).min(layers + 1);
                *suffix = format!(".depth{d}");
                self.base_lr * decay.powi((layers + 1 - d) as i32)
            }
            None => self.base_lr,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};

    fn bert_like(layers: usize) -> ParamStore {
        let s = ParamStore::new();
        let dev = Device::Cpu;
        let add = |n: &str, shape: &[usize]| {
            s.insert(
                n,
                &Tensor::zeros(shape, DType::F32, &dev).unwrap(),
                TensorKind::Parameter,
            )
            .unwrap();
        };
        add("bert.embeddings.word_embeddings.weight", &[10, 4]);
        add("bert.embeddings.LayerNorm.weight", &[4]);
        for l in 0..layers {
            add(
                &format!("bert.encoder.layer.{l}.output.dense.weight"),
                &[4, 4],
            );
            add(&format!("bert.encoder.layer.{l}.output.dense.bias"), &[4]);
        }
        add("bert.pooler.dense.weight", &[4, 4]);
        add("classifier.weight", &[2, 4]);
        add("classifier.bias", &[2]);
        s
    }

    fn lookup<'a>(groups: &'a [ParamGroup], name: &str) -> &'a ParamGroup {
        let found: Vec<&ParamGroup> = groups
            .iter()
            .filter(|g| g.params.iter().any(|p| p == name))
            .collect();
        assert_eq!(found.len(), 1, "{name} must be in exactly one group");
        found[0]
    }

    #[test]
    fn no_decay_for_biases_and_norms() -> Result<()> {
        let s = bert_like(2);
        let groups = GroupBuilder::new(1e-3, 0.01).build(&s)?;
        assert_eq!(
            lookup(&groups, "bert.encoder.layer.0.output.dense.weight").weight_decay,
            0.01
        );
        assert_eq!(
            lookup(&groups, "bert.encoder.layer.0.output.dense.bias").weight_decay,
            0.0
        );
        assert_eq!(
            lookup(&groups, "bert.embeddings.LayerNorm.weight").weight_decay,
            0.0
        );
        assert_eq!(
            groups.iter().map(|g| g.params.len()).sum::<usize>(),
            s.len()
        );
        Ok(())
    }

    /// `bert_like`'s depths: embeddings 0, `layer.N` N + 1, the rest the head.
    fn bert_depth(name: &str) -> Option<usize> {
        if name.contains("embeddings") {
            return Some(0);
        }
        let rest = name.strip_prefix("bert.encoder.layer.")?;
        rest.split('.').next()?.parse::<usize>().ok().map(|n| n + 1)
    }

    #[test]
    fn layer_wise_decay_and_head_lr() -> Result<()> {
        let layers = 3;
        let s = bert_like(layers);
        let base = 1e-3;
        let d = 0.8;
        let groups = GroupBuilder::new(base, 0.0)
            .layer_decay(d, layers, Arc::new(bert_depth))
            .spec(GroupSpec::new("head", &["classifier.*"])?.lr(LrSpec::Scale(10.0)))
            .build(&s)?;
        let lr = |n: &str| lookup(&groups, n).base_lr;
        let close = |a: f64, b: f64| assert!((a - b).abs() <= 1e-15 * b.abs(), "{a} vs {b}");
        close(
            lr("bert.embeddings.word_embeddings.weight"),
            base * d.powi(4),
        );
        close(
            lr("bert.encoder.layer.0.output.dense.weight"),
            base * d.powi(3),
        );
        close(lr("bert.encoder.layer.2.output.dense.bias"), base * d);
        close(lr("bert.pooler.dense.weight"), base);
        close(lr("classifier.weight"), base * 10.0);
        Ok(())
    }

    #[test]
    fn explicit_group_weight_decay_and_unmatched_spec() -> Result<()> {
        let s = bert_like(1);
        let groups = GroupBuilder::new(1e-3, 0.01)
            .spec(
                GroupSpec::new("bias", &["*.bias"])?
                    .lr(LrSpec::Absolute(5e-3))
                    .weight_decay(0.5),
            )
            .build(&s)?;
        let g = lookup(&groups, "classifier.bias");
        assert_eq!(
            (g.name.as_str(), g.base_lr, g.weight_decay),
            ("bias", 5e-3, 0.5)
        );
        let e = GroupBuilder::new(1e-3, 0.0)
            .spec(GroupSpec::new("typo", &["clasifier.*"])?)
            .build(&s)
            .unwrap_err()
            .to_string();
        assert!(e.contains("clasifier.*") && e.contains("typo"), "{e}");
        assert!(GroupBuilder::new(-1.0, 0.0).build(&s).is_err());
        Ok(())
    }
}
