//! Reading a family's `config.json`: JSON into the family's config type, validated, every error
//! one line naming the file (and the offending key where serde's message gives only a line and
//! column). Shared by every family built on this crate.

use finetune_core::{Error, Result};
use serde::de::DeserializeOwned;
use std::path::Path;

/// `key `KEY`: ` for the first top-level key of a JSON object that fails to deserialise into
/// `C` on its own; empty when there is none.
fn offending_key<C: DeserializeOwned>(text: &str) -> String {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
        return String::new();
    };
    map.into_iter()
        .find(|(k, v)| {
            let one = serde_json::Value::Object([(k.clone(), v.clone())].into_iter().collect());
            serde_json::from_value::<C>(one).is_err()
        })
        .map(|(k, _)| format!("key `{k}`: "))
        .unwrap_or_default()
}

/// Reads `path` as a `family` config and checks it with `validate`; errors name the file.
pub fn read_config<C: DeserializeOwned>(
    path: &Path,
    family: &str,
    validate: impl FnOnce(&C) -> Result<()>,
) -> Result<C> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let cfg: C = serde_json::from_str(&text).map_err(|e| Error::Record {
        path: path.to_path_buf(),
        msg: format!(
            "not a valid {family} config: {}{e}",
            offending_key::<C>(&text)
        ),
    })?;
    validate(&cfg).map_err(|e| Error::Record {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    Ok(cfg)
}

/// Refuses a `model_type` (in a config's other keys) that is not one of `accepted`.
pub fn check_model_type(
    extra: &std::collections::BTreeMap<String, serde_json::Value>,
    accepted: &[&str],
) -> Result<()> {
    match extra.get("model_type").and_then(|v| v.as_str()) {
        Some(mt) if !accepted.contains(&mt) => Err(Error::config(format!(
            "model_type `{mt}` is not supported (expected {})",
            accepted
                .iter()
                .map(|t| format!("`{t}`"))
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
        _ => Ok(()),
    }
}

/// Refuses a size of 0 or above its maximum: `(key, value, max)` triples.
pub fn check_sizes(sizes: &[(&str, usize, usize)]) -> Result<()> {
    for &(k, v, max) in sizes {
        if v == 0 || v > max {
            return Err(Error::config(format!("`{k}` is {v}: expected 1..={max}")));
        }
    }
    Ok(())
}

/// Refuses a dropout probability outside `[0, 1)`: `(key, value)` pairs, `None` for unset.
pub fn check_probabilities(probs: &[(&str, Option<f64>)]) -> Result<()> {
    for &(k, p) in probs {
        if let Some(p) = p {
            if !(0.0..1.0).contains(&p) {
                return Err(Error::config(format!(
                    "`{k}` is {p}: expected a probability in [0, 1)"
                )));
            }
        }
    }
    Ok(())
}

/// Refuses a hidden width not divisible by the number of heads.
pub fn check_heads(hidden: (&str, usize), heads: (&str, usize)) -> Result<()> {
    if !hidden.1.is_multiple_of(heads.1) {
        return Err(Error::config(format!(
            "`{}` {} is not divisible by `{}` {}",
            hidden.0, hidden.1, heads.0, heads.1
        )));
    }
    Ok(())
}

/// The largest layer count, width and vocabulary a config may ask for.
pub const MAX_LAYERS: usize = 256;
/// See [`MAX_LAYERS`].
pub const MAX_DIM: usize = 1 << 16;
/// See [`MAX_LAYERS`].
pub const MAX_VOCAB: usize = 10_000_000;

/// The `config.json` of an exported `architecture` of `model_type`: `config`'s keys (its
/// labels already written out, see [`crate::ClassifierConfig::for_export`]) with
/// `architectures` and `model_type` set and the source's `_name_or_path` dropped.
pub fn export_json(
    config: &impl serde::Serialize,
    architecture: &str,
    model_type: &str,
) -> serde_json::Value {
    let mut v = serde_json::to_value(config).expect("config serialises");
    let obj = v.as_object_mut().expect("a config is a JSON object");
    obj.remove("_name_or_path");
    obj.insert("architectures".into(), serde_json::json!([architecture]));
    obj.insert("model_type".into(), serde_json::json!(model_type));
    v
}
