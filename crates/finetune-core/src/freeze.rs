//! Freezing: which parameters train, chosen by name patterns (see [`crate::pattern`]).
//!
//! Rules apply in order on top of a starting state, so the usual recipes read naturally:
//! `--freeze '*' --unfreeze 'classifier.*'` trains only the head, `--freeze '!classifier.*'`
//! says the same in one pattern, and `--freeze 'bert.encoder.layer.{0..7}.*'` freezes the
//! bottom eight encoder layers. A frozen parameter is handed to the model detached (no
//! gradient, no optimizer update); re-applying a spec between steps is how gradual unfreezing
//! works.

use crate::error::{Error, Result};
use crate::params::ParamStore;
use crate::pattern::NamePattern;

/// One rule of a [`FreezeSpec`]: the parameters its pattern matches stop or start training.
#[derive(Debug, Clone)]
pub enum FreezeRule {
    /// Parameters matching the pattern are frozen (`--freeze`, `requires_grad_(False)`).
    Freeze(NamePattern),
    /// Parameters matching the pattern train again (`--unfreeze`); buffers never do.
    Unfreeze(NamePattern),
}

/// An ordered list of freeze/unfreeze rules.
#[derive(Debug, Clone, Default)]
pub struct FreezeSpec {
    rules: Vec<FreezeRule>,
}

impl FreezeSpec {
    /// An empty spec: applying it changes nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The CLI's shape: every `--freeze` pattern, then every `--unfreeze` pattern (which win).
    pub fn from_patterns<S: AsRef<str>>(freeze: &[S], unfreeze: &[S]) -> Result<Self> {
        let mut spec = Self::new();
        for p in freeze {
            spec = spec.freeze(p.as_ref())?;
        }
        for p in unfreeze {
            spec = spec.unfreeze(p.as_ref())?;
        }
        Ok(spec)
    }

    /// Appends a rule freezing every parameter that `pattern` matches. A malformed pattern is
    /// an [`Error::Pattern`] here; one that matches nothing fails when the spec is applied.
    pub fn freeze(mut self, pattern: &str) -> Result<Self> {
        self.rules
            .push(FreezeRule::Freeze(NamePattern::new(pattern)?));
        Ok(self)
    }

    /// Appends a rule unfreezing every parameter that `pattern` matches (errors as for
    /// [`FreezeSpec::freeze`]).
    pub fn unfreeze(mut self, pattern: &str) -> Result<Self> {
        self.rules
            .push(FreezeRule::Unfreeze(NamePattern::new(pattern)?));
        Ok(self)
    }

    /// Freezes everything except names matching any of `keep`.
    pub fn freeze_all_but<S: AsRef<str>>(keep: &[S]) -> Result<Self> {
        let mut spec = Self::new().freeze("*")?;
        for p in keep {
            spec = spec.unfreeze(p.as_ref())?;
        }
        Ok(spec)
    }

    /// Freezes layers `start..end` of a stack named `{prefix}.{i}.…` (e.g. `prefix =
    /// "bert.encoder.layer"`).
    pub fn freeze_layers(self, prefix: &str, range: std::ops::Range<usize>) -> Result<Self> {
        if range.is_empty() {
            return Ok(self);
        }
        self.freeze(&format!(
            "{prefix}.{{{}..{}}}.*",
            range.start,
            range.end - 1
        ))
    }

    /// Unfreezes layers `start..end` of a stack named `{prefix}.{i}.…`.
    pub fn unfreeze_layers(self, prefix: &str, range: std::ops::Range<usize>) -> Result<Self> {
        if range.is_empty() {
            return Ok(self);
        }
        self.unfreeze(&format!(
            "{prefix}.{{{}..{}}}.*",
            range.start,
            range.end - 1
        ))
    }

    /// This spec's rules followed by `other`'s (which win where both apply).
    pub fn then(mut self, other: &FreezeSpec) -> Self {
        self.rules.extend(other.rules.iter().cloned());
        self
    }

    /// The rules, in the order they apply.
    pub fn rules(&self) -> &[FreezeRule] {
        &self.rules
    }

    /// Whether the spec has no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Whether `name` trains under this spec, starting from `start`.
    pub fn trainable(&self, name: &str, start: bool) -> bool {
        self.trainable_where(start, |p| p.matches(name))
    }

    /// Whether a parameter trains, starting from `start`, when a rule's pattern applies to it
    /// as `applies` says (e.g. matching any of its names in several namings).
    pub fn trainable_where(&self, start: bool, applies: impl Fn(&NamePattern) -> bool) -> bool {
        self.rules.iter().fold(start, |t, r| match r {
            FreezeRule::Freeze(p) if applies(p) => false,
            FreezeRule::Unfreeze(p) if applies(p) => true,
            _ => t,
        })
    }

    /// Applies the rules to the store's current mask. A pattern that matches no parameter at
    /// all is an error naming it (a typo would otherwise silently train everything).
    /// Returns how many parameters changed state.
    pub fn apply(&self, store: &ParamStore) -> Result<usize> {
        self.check_patterns_match(&store.names())?;
        let current: Vec<(String, bool)> = store
            .infos()
            .into_iter()
            .map(|i| (i.name, i.trainable))
            .collect();
        let map: std::collections::HashMap<String, bool> = current.into_iter().collect();
        Ok(store.update_mask(|name| Some(self.trainable(name, map[name]))))
    }

    /// Applies the rules to an all-trainable starting state (what a fresh run does).
    pub fn apply_fresh(&self, store: &ParamStore) -> Result<usize> {
        self.check_patterns_match(&store.names())?;
        Ok(store.update_mask(|name| Some(self.trainable(name, true))))
    }

    /// Fails, naming the pattern, if a rule matches none of `names`.
    pub fn check_patterns_match(&self, names: &[String]) -> Result<()> {
        for r in &self.rules {
            let p = match r {
                FreezeRule::Freeze(p) | FreezeRule::Unfreeze(p) => p,
            };
            if !names.iter().any(|n| p.matches(n)) {
                let hint = names
                    .iter()
                    .take(3)
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("`, `");
                return Err(Error::Pattern {
                    pattern: p.as_str().to_string(),
                    msg: format!(
                        "matches no parameter (names look like `{hint}`; `finetune inspect` lists them)"
                    ),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::TensorKind;
    use candle_core::{DType, Device, Tensor};

    fn store() -> ParamStore {
        let s = ParamStore::new();
        let dev = Device::Cpu;
        for name in [
            "bert.embeddings.word_embeddings.weight",
            "bert.encoder.layer.0.output.dense.weight",
            "bert.encoder.layer.0.output.dense.bias",
            "bert.encoder.layer.1.output.dense.weight",
            "bert.encoder.layer.10.output.dense.weight",
            "classifier.weight",
            "classifier.bias",
        ] {
            s.insert(
                name,
                &Tensor::zeros(2, DType::F32, &dev).unwrap(),
                TensorKind::Parameter,
            )
            .unwrap();
        }
        s
    }

    fn trainable(s: &ParamStore) -> Vec<String> {
        s.infos()
            .into_iter()
            .filter(|i| i.trainable)
            .map(|i| i.name)
            .collect()
    }

    #[test]
    fn head_only_recipes_agree() -> Result<()> {
        let a = store();
        FreezeSpec::from_patterns(&["*"], &["classifier.*"])?.apply_fresh(&a)?;
        let b = store();
        FreezeSpec::from_patterns(&["!classifier.*"], &[])?.apply_fresh(&b)?;
        let c = store();
        FreezeSpec::freeze_all_but(&["classifier.weight", "classifier.bias"])?.apply_fresh(&c)?;
        for s in [&a, &b, &c] {
            assert_eq!(trainable(s), vec!["classifier.weight", "classifier.bias"]);
        }
        Ok(())
    }

    #[test]
    fn layer_ranges_and_bias_patterns() -> Result<()> {
        let s = store();
        FreezeSpec::new()
            .freeze_layers("bert.encoder.layer", 0..2)?
            .apply_fresh(&s)?;
        assert!(!s.is_trainable("bert.encoder.layer.0.output.dense.weight")?);
        assert!(!s.is_trainable("bert.encoder.layer.1.output.dense.weight")?);
        assert!(s.is_trainable("bert.encoder.layer.10.output.dense.weight")?);
        // Gradual unfreezing: re-apply on top of the current mask.
        let changed = FreezeSpec::new()
            .unfreeze_layers("bert.encoder.layer", 1..2)?
            .apply(&s)?;
        assert_eq!(changed, 1);
        assert!(s.is_trainable("bert.encoder.layer.1.output.dense.weight")?);
        assert!(!s.is_trainable("bert.encoder.layer.0.output.dense.weight")?);
        FreezeSpec::new().freeze("*.bias")?.apply(&s)?;
        assert!(!s.is_trainable("classifier.bias")?);
        assert_eq!(s.counts().trainable, 2 * 4);
        Ok(())
    }

    #[test]
    fn a_pattern_matching_nothing_is_an_error() {
        let s = store();
        let e = FreezeSpec::new()
            .freeze("bert.encoder.layers.*")
            .unwrap()
            .apply_fresh(&s);
        let msg = e.unwrap_err().to_string();
        assert!(
            msg.contains("bert.encoder.layers.*") && msg.contains("matches no parameter"),
            "{msg}"
        );
    }
}
