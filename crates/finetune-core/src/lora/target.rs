//! Which modules a `lora_target` list selects, PEFT-style.

use super::ModuleKind;
use crate::error::{Error, Result};
use crate::model::ParamLayout;
use crate::pattern::{NamePattern, PatternSet};

/// The target that selects every linear layer but the head (PEFT's `all-linear`).
pub const ALL_LINEAR: &str = "all-linear";

/// Whether a target is a glob (matched against the whole module path) rather than a name.
fn is_glob(t: &str) -> bool {
    t.contains(['*', '?', '[', '{', '!'])
}

/// Whether a target is a name as PEFT's `target_modules` lists them (a module path equal to
/// it or ending with `.name`), not a glob nor [`ALL_LINEAR`].
pub(super) fn is_name(t: &str) -> bool {
    !is_glob(t) && t != ALL_LINEAR
}

/// The modules of `modules` that `targets` select, in build order. A target is
/// [`ALL_LINEAR`], a glob over the module path (`layer4.*.conv*`; in the model's other naming
/// too, through `layout`'s alias: `encoder.*` for `bert.encoder.*`), or a name that a module
/// equals or ends with after a dot (`query` selects `bert.encoder.layer.0.attention.self.query`,
/// as PEFT's list). The head (modules whose weight the layout's head matches) is never
/// adapted: it trains whole. A target selecting no module is an error naming it.
pub fn select_modules(
    targets: &[String],
    modules: &[(String, ModuleKind)],
    layout: &ParamLayout,
) -> Result<Vec<String>> {
    let head = PatternSet::new(&layout.head)?;
    let other = |m: &str| -> Option<String> {
        let alias = layout.alias.as_ref()?(&format!("{m}.weight"))?;
        alias.strip_suffix(".weight").map(String::from)
    };
    let body: Vec<&(String, ModuleKind)> = modules
        .iter()
        .filter(|(m, _)| !head.matches(&format!("{m}.weight")))
        .collect();
    let mut chosen = vec![false; body.len()];
    for t in targets.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        let hits: Vec<usize> = if t == ALL_LINEAR {
            (0..body.len()).filter(|&i| body[i].1.is_linear()).collect()
        } else if is_glob(t) {
            let p = NamePattern::new(t)?;
            (0..body.len())
                .filter(|&i| {
                    let m = &body[i].0;
                    p.matches(m) || other(m).is_some_and(|a| p.matches(&a))
                })
                .collect()
        } else {
            let suffix = format!(".{t}");
            (0..body.len())
                .filter(|&i| body[i].0 == t || body[i].0.ends_with(&suffix))
                .collect()
        };
        if hits.is_empty() {
            let example = body
                .iter()
                .map(|(m, _)| m.as_str())
                .find(|m| m.contains('.'))
                .unwrap_or("");
            return Err(Error::config(format!(
                "LoRA target `{t}` matches no linear or conv layer of the model below its head \
                 (layers are named like `{example}`; `finetune inspect` lists them)"
            )));
        }
        for i in hits {
            chosen[i] = true;
        }
    }
    Ok(body
        .iter()
        .zip(chosen)
        .filter(|(_, c)| *c)
        .map(|((m, _), _)| m.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn modules() -> Vec<(String, ModuleKind)> {
        let lin = ModuleKind::Linear {
            in_features: 4,
            out_features: 4,
        };
        let conv = ModuleKind::Conv2d {
            in_channels: 2,
            out_channels: 2,
            kernel: 3,
            stride: 1,
            padding: 1,
        };
        [
            ("bert.encoder.layer.0.attention.self.query", lin),
            ("bert.encoder.layer.0.attention.self.value", lin),
            ("bert.encoder.layer.0.attention.output.dense", lin),
            ("bert.pooler.dense", lin),
            ("layer4.0.conv1", conv),
            ("classifier", lin),
        ]
        .map(|(n, k)| (n.to_string(), k))
        .to_vec()
    }

    fn select(t: &[&str]) -> Result<Vec<String>> {
        let t: Vec<String> = t.iter().map(|s| s.to_string()).collect();
        let bare = |n: &str| n.strip_prefix("bert.").map(String::from);
        let layout = ParamLayout::new(["classifier.*"], |_| None).with_alias(bare);
        select_modules(&t, &modules(), &layout)
    }

    #[test]
    fn names_match_whole_path_segments_globs_the_path_and_the_head_is_left_out() {
        assert_eq!(
            select(&["query", "value"]).unwrap(),
            [
                "bert.encoder.layer.0.attention.self.query",
                "bert.encoder.layer.0.attention.self.value"
            ]
        );
        // `dense` ends two module paths after a dot; `ense` ends none.
        assert_eq!(select(&["dense"]).unwrap().len(), 2);
        assert!(select(&["ense"]).is_err());
        assert_eq!(select(&["layer4.*.conv*"]).unwrap(), ["layer4.0.conv1"]);
        // A glob in the other naming (`encoder.*` for `bert.encoder.*`).
        assert_eq!(select(&["encoder.*.self.*"]).unwrap().len(), 2);
        // all-linear: every linear layer but the head; no conv.
        assert_eq!(select(&[ALL_LINEAR]).unwrap().len(), 4);
        let err = select(&["classifier"]).unwrap_err().to_string();
        assert!(err.contains("`classifier` matches no"), "{err}");
    }
}
