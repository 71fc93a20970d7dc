//! Gradual unfreezing (ULMFiT / fastai): from a given epoch on, parameters matching a pattern
//! train. Written `"EPOCH:PATTERN,EPOCH:PATTERN"`, e.g. `"1:bert.encoder.layer.5.*,2:bert.encoder.layer.4.*"`.
//! The trainable mask of an epoch is a pure function of the initial freeze rules and this
//! schedule, so a resumed run gets the same mask.

use finetune_core::{Error, FreezeSpec, NamePattern, Result};

/// From which epoch each pattern's parameters train (see the module doc), on top of the
/// initial freeze rules.
#[derive(Debug, Clone, PartialEq)]
pub struct UnfreezeSchedule {
    steps: Vec<(u64, String)>,
}

impl UnfreezeSchedule {
    /// Reads `EPOCH:PATTERN,EPOCH:PATTERN` (`--unfreeze-schedule`; epochs from 0, patterns as
    /// `--unfreeze` takes). An item that is not `EPOCH:PATTERN`, a bad pattern or an empty
    /// schedule is an error naming the item.
    pub fn parse(text: &str) -> Result<Self> {
        let mut steps = Vec::new();
        for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (epoch, pattern) = item.split_once(':').ok_or_else(|| {
                Error::config(format!(
                    "--unfreeze-schedule: `{item}` is not EPOCH:PATTERN (an epoch number, a colon, and a pattern as --unfreeze takes)"
                ))
            })?;
            let epoch: u64 = epoch.trim().parse().map_err(|_| {
                Error::config(format!(
                    "--unfreeze-schedule: `{epoch}` in `{item}` is not an epoch number"
                ))
            })?;
            NamePattern::new(pattern.trim())?;
            steps.push((epoch, pattern.trim().to_string()));
        }
        if steps.is_empty() {
            return Err(Error::config("--unfreeze-schedule is empty"));
        }
        Ok(Self { steps })
    }

    /// The schedule with each pattern replaced by the patterns `expand` gives for it (e.g. a
    /// pattern in the family's other naming, as the model's names).
    pub fn expand(self, expand: impl Fn(&str) -> Result<Vec<String>>) -> Result<Self> {
        let mut steps = Vec::new();
        for (epoch, p) in self.steps {
            steps.extend(expand(&p)?.into_iter().map(|q| (epoch, q)));
        }
        Ok(Self { steps })
    }

    /// One more group every `every` epochs, from the last group to the first (the top layers
    /// first): `groups[len-1]` at epoch `every`, `groups[len-2]` at `2 * every`, ...
    pub fn every(every: u64, groups: &[String]) -> Result<Self> {
        if every == 0 || groups.is_empty() {
            return Err(Error::config(
                "gradual unfreezing needs every >= 1 and a group",
            ));
        }
        let steps = groups
            .iter()
            .rev()
            .enumerate()
            .map(|(i, p)| (every * (i as u64 + 1), p.clone()))
            .collect();
        Ok(Self { steps })
    }

    /// ULMFiT-style gradual unfreezing over `names`: every `every` epochs the next layer down
    /// (by the model's `depth`: the top layer first, the embeddings or stem last) is
    /// unfrozen. Names without a depth (the head) are left to the freeze patterns.
    pub fn by_layer(
        every: u64,
        names: &[String],
        depth: &dyn Fn(&str) -> Option<usize>,
    ) -> Result<Self> {
        let depths: Vec<(usize, &String)> = names
            .iter()
            .filter_map(|n| depth(n).map(|d| (d, n)))
            .collect();
        let top = depths.iter().map(|(d, _)| *d).max().ok_or_else(|| {
            Error::config("--unfreeze-every: no parameter belongs to a numbered layer")
        })?;
        if every == 0 {
            return Err(Error::config("--unfreeze-every must be at least 1"));
        }
        let steps = depths
            .into_iter()
            .map(|(d, n)| (every * (top - d + 1) as u64, n.clone()))
            .collect();
        Ok(Self { steps })
    }

    /// The freeze rules in force during `epoch` (0-based).
    pub fn spec_at(&self, base: &FreezeSpec, epoch: u64) -> Result<FreezeSpec> {
        let mut spec = base.clone();
        for (e, p) in &self.steps {
            if *e <= epoch {
                spec = spec.unfreeze(p)?;
            }
        }
        Ok(spec)
    }

    /// Fails, naming the pattern, if one of the schedule's patterns matches none of `names`
    /// (checked up front: otherwise a typo would surface only when its epoch comes).
    pub fn check_patterns_match(&self, names: &[String]) -> Result<()> {
        let mut spec = FreezeSpec::new();
        for (_, p) in &self.steps {
            spec = spec.unfreeze(p)?;
        }
        spec.check_patterns_match(names)
    }

    /// Whether the mask changes at the start of `epoch`.
    pub fn changes_at(&self, epoch: u64) -> bool {
        self.steps.iter().any(|(e, _)| *e == epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unfreezes_from_the_given_epoch() -> Result<()> {
        let s = UnfreezeSchedule::parse("1:enc.layer.1.*, 2:enc.layer.0.*")?;
        let base = FreezeSpec::from_patterns(&["enc.*"], &[] as &[&str])?;
        let at = |e| s.spec_at(&base, e).unwrap();
        assert!(!at(0).trainable("enc.layer.1.w", true));
        assert!(at(1).trainable("enc.layer.1.w", true));
        assert!(!at(1).trainable("enc.layer.0.w", true));
        assert!(at(2).trainable("enc.layer.0.w", true));
        assert!(s.changes_at(2) && !s.changes_at(3));
        assert!(UnfreezeSchedule::parse("x:enc.*").is_err());
        assert!(UnfreezeSchedule::parse("1 enc.*").is_err());
        let e = UnfreezeSchedule::every(2, &["a.*".into(), "b.*".into()])?;
        assert_eq!(
            e.steps,
            vec![(2, "b.*".to_string()), (4, "a.*".to_string())]
        );
        Ok(())
    }
}
