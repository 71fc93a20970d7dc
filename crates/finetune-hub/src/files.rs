//! Which files make a model, decided from a repository's file list (the Hub's listing, our cached
//! copy of it, or the files in a folder):
//!
//! - `config.json` (required for Hub repositories);
//! - the weights: `model.safetensors`, else `model.safetensors.index.json` plus every shard its
//!   `weight_map` names; `pytorch_model.bin` (or its index) only when no safetensors exist and the
//!   caller allows pickles — it is then read by candle's pickle reader, never executed;
//! - tokenizer files and `preprocessor_config.json`, whichever exist.

use crate::error::{Error, Result};
use crate::safe_name::is_safe;
use crate::Origin;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The model's configuration (transformers' or timm's `config.json`).
pub const CONFIG: &str = "config.json";
/// Unsharded safetensors weights; preferred over every other weights file.
pub const SAFETENSORS: &str = "model.safetensors";
/// The index of sharded safetensors weights: its `weight_map` maps tensor names to shard files.
pub const SAFETENSORS_INDEX: &str = "model.safetensors.index.json";
/// PyTorch pickle weights (`torch.save` of a state dict); taken only with pickles allowed.
pub const PICKLE: &str = "pytorch_model.bin";
/// The index of sharded pickle weights.
pub const PICKLE_INDEX: &str = "pytorch_model.bin.index.json";
/// An image model's preprocessing (transformers' image processor config).
pub const PREPROCESSOR: &str = "preprocessor_config.json";
/// A PEFT adapter's configuration: a repository with it (and its weights) but no
/// [`CONFIG`] is an adapter, whose base model its configuration names.
pub const ADAPTER_CONFIG: &str = "adapter_config.json";
/// A PEFT adapter's weights.
pub const ADAPTER_WEIGHTS: &str = "adapter_model.safetensors";

/// Whether a listing is a PEFT adapter's rather than a model's.
pub fn is_adapter(listing: &[String]) -> bool {
    let has = |f: &str| listing.iter().any(|l| l == f);
    !has(CONFIG) && has(ADAPTER_CONFIG) && has(ADAPTER_WEIGHTS)
}

/// Fetched when present: what the text models' tokenizers need (`tokenizers`' JSON, WordPiece's
/// `vocab.txt`, byte-level BPE's `vocab.json` + `merges.txt`, SentencePiece's model, which
/// exports pass on to transformers).
pub const TOKENIZER_FILES: &[&str] = &[
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "special_tokens_map.json",
    "added_tokens.json",
];

/// The weights file a model uses (before shards are known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeightsChoice {
    /// `model.safetensors`, an index, or (allowed pickles only) `pytorch_model.bin`.
    pub file: String,
    /// `file` is an index listing shards.
    pub sharded: bool,
    /// `file` is `pytorch_model.bin` or its index (a Python pickle).
    pub pickle: bool,
}

/// The files to have for a model, from a file list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelPlan {
    /// `config.json` when the listing has it.
    pub config: Option<String>,
    /// The weights file (or index) to fetch.
    pub weights: WeightsChoice,
    /// Tokenizer files and the preprocessor config that the listing has.
    pub extras: Vec<String>,
}

impl ModelPlan {
    /// Small files first, weights last.
    pub fn files(&self) -> Vec<String> {
        let mut v: Vec<String> = self.config.iter().cloned().collect();
        v.extend(self.extras.iter().cloned());
        v.push(self.weights.file.clone());
        v
    }
}

/// Chooses a model's files from `listing`. `label` names the repository or folder in errors.
pub fn plan(
    listing: &[String],
    allow_pickle: bool,
    require_config: bool,
    label: &str,
) -> Result<ModelPlan> {
    let has = |f: &str| listing.iter().any(|l| l == f);
    let choice = |file: &str, sharded, pickle| WeightsChoice {
        file: file.to_string(),
        sharded,
        pickle,
    };
    if is_adapter(listing) {
        return Ok(ModelPlan {
            config: None,
            weights: choice(ADAPTER_WEIGHTS, false, false),
            extras: vec![ADAPTER_CONFIG.to_string()],
        });
    }
    let weights = if has(SAFETENSORS) {
        choice(SAFETENSORS, false, false)
    } else if has(SAFETENSORS_INDEX) {
        choice(SAFETENSORS_INDEX, true, false)
    } else if has(PICKLE) || has(PICKLE_INDEX) {
        if !allow_pickle {
            return Err(Error::repo(
                label,
                format!("has no {SAFETENSORS} or {SAFETENSORS_INDEX}, only {PICKLE} (a Python pickle); pickles are refused unless you pass --allow-pickle (they are then read by candle's pickle reader, never executed)"),
            ));
        }
        if has(PICKLE) {
            choice(PICKLE, false, true)
        } else {
            choice(PICKLE_INDEX, true, true)
        }
    } else {
        return Err(Error::repo(
            label,
            format!("has no weights: no {SAFETENSORS}, {SAFETENSORS_INDEX} or {PICKLE}"),
        ));
    };
    let config = has(CONFIG).then(|| CONFIG.to_string());
    if require_config && config.is_none() {
        return Err(Error::repo(label, format!("has no {CONFIG}")));
    }
    let extras = TOKENIZER_FILES
        .iter()
        .chain([PREPROCESSOR].iter())
        .filter(|f| has(f))
        .map(|f| f.to_string())
        .collect();
    Ok(ModelPlan {
        config,
        weights,
        extras,
    })
}

/// The shard names an index's `weight_map` lists, once each, sorted. Each is checked to stay
/// inside the folder holding the index.
pub fn shards_of_index(index: &Path, label: &str) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(index).map_err(|e| Error::io(index, e))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::repo(label, format!("{}: not valid JSON: {e}", index.display())))?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| {
            Error::repo(
                label,
                format!("{}: no `weight_map` object", index.display()),
            )
        })?;
    let mut shards = BTreeSet::new();
    for (tensor, file) in map {
        let file = file.as_str().ok_or_else(|| {
            Error::repo(
                label,
                format!("{}: `{tensor}` maps to a non-string", index.display()),
            )
        })?;
        if !is_safe(file) {
            return Err(Error::UnsafePath {
                repo: label.to_string(),
                name: file.to_string(),
                origin: format!("the weight_map of {}", index.display()),
            });
        }
        shards.insert(file.to_string());
    }
    if shards.is_empty() {
        return Err(Error::repo(
            label,
            format!("{}: `weight_map` is empty", index.display()),
        ));
    }
    Ok(shards.into_iter().collect())
}

/// A model's weights on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights {
    /// One file, or every shard in name order.
    pub files: Vec<PathBuf>,
    /// The index, for sharded checkpoints.
    pub index: Option<PathBuf>,
    /// `pytorch_model.bin` files (only with pickles allowed): load with candle's pickle reader.
    pub pickle: bool,
}

/// A model as local files, wherever they came from.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    /// The folder holding the files: a snapshot folder in the cache, or the user's folder.
    pub dir: PathBuf,
    /// Where the files came from.
    pub origin: Origin,
    /// `config.json`; always there for a Hub repository, optional for a local folder.
    pub config: Option<PathBuf>,
    /// The weights file(s).
    pub weights: Weights,
    /// Those of [`TOKENIZER_FILES`] that exist.
    pub tokenizer: Vec<PathBuf>,
    /// `preprocessor_config.json`, when it exists.
    pub preprocessor: Option<PathBuf>,
}

impl ModelFiles {
    /// Puts a plan's files (and shards) found under `dir` together.
    pub(crate) fn assemble(
        dir: &Path,
        origin: Origin,
        plan: &ModelPlan,
        shards: &[String],
    ) -> Self {
        let at = |f: &str| dir.join(f);
        let weights = if plan.weights.sharded {
            Weights {
                files: shards.iter().map(|s| at(s)).collect(),
                index: Some(at(&plan.weights.file)),
                pickle: plan.weights.pickle,
            }
        } else {
            Weights {
                files: vec![at(&plan.weights.file)],
                index: None,
                pickle: plan.weights.pickle,
            }
        };
        ModelFiles {
            dir: dir.to_path_buf(),
            origin,
            config: plan.config.as_deref().map(at),
            weights,
            tokenizer: plan
                .extras
                .iter()
                .filter(|f| TOKENIZER_FILES.contains(&f.as_str()))
                .map(|f| at(f))
                .collect(),
            preprocessor: plan
                .extras
                .iter()
                .find(|f| *f == PREPROCESSOR)
                .map(|f| at(f)),
        }
    }
}

/// A local folder or file given as the model.
pub(crate) fn local_model(path: &Path, allow_pickle: bool) -> Result<ModelFiles> {
    let label = path.display().to_string();
    if path.is_file() {
        let dir = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let sharded = name.ends_with(".index.json");
        let pickle = [".bin", ".pt", ".pth"].iter().any(|x| name.ends_with(x))
            || name.ends_with(".bin.index.json");
        if pickle && !allow_pickle {
            return Err(Error::repo(
                &label,
                "is a Python pickle; pickles are refused unless you pass --allow-pickle",
            ));
        }
        let mut listing = crate::cache::list_files(&dir);
        listing
            .retain(|f| f == CONFIG || f == PREPROCESSOR || TOKENIZER_FILES.contains(&f.as_str()));
        let plan = ModelPlan {
            config: listing.iter().find(|f| *f == CONFIG).cloned(),
            weights: WeightsChoice {
                file: name,
                sharded,
                pickle,
            },
            extras: listing.into_iter().filter(|f| f != CONFIG).collect(),
        };
        let shards = local_shards(&dir, &plan, &label)?;
        return Ok(ModelFiles::assemble(&dir, Origin::Local, &plan, &shards));
    }
    let listing = crate::cache::list_files(path);
    let plan = plan(&listing, allow_pickle, false, &label)?;
    let shards = local_shards(path, &plan, &label)?;
    Ok(ModelFiles::assemble(path, Origin::Local, &plan, &shards))
}

fn local_shards(dir: &Path, plan: &ModelPlan, label: &str) -> Result<Vec<String>> {
    if !plan.weights.sharded {
        return Ok(Vec::new());
    }
    let shards = shards_of_index(&dir.join(&plan.weights.file), label)?;
    if let Some(missing) = shards.iter().find(|s| !dir.join(s).is_file()) {
        return Err(Error::repo(
            label,
            format!(
                "{} lists shard `{missing}`, which is not in {}",
                plan.weights.file,
                dir.display()
            ),
        ));
    }
    Ok(shards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(files: &[&str]) -> Vec<String> {
        files.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn prefers_safetensors_and_takes_extras_present() {
        let p = plan(
            &l(&[
                "config.json",
                "model.safetensors",
                "pytorch_model.bin",
                "vocab.txt",
                "README.md",
                "onnx/model.onnx",
            ]),
            false,
            true,
            "r",
        )
        .unwrap();
        assert_eq!(p.weights.file, SAFETENSORS);
        assert!(!p.weights.pickle);
        assert_eq!(
            p.files(),
            l(&["config.json", "vocab.txt", "model.safetensors"])
        );
        let p = plan(
            &l(&["config.json", SAFETENSORS_INDEX, "preprocessor_config.json"]),
            false,
            true,
            "r",
        )
        .unwrap();
        assert!(p.weights.sharded);
        assert_eq!(p.extras, l(&["preprocessor_config.json"]));
    }

    #[test]
    fn pickles_only_when_allowed_and_nothing_else_exists() {
        let only_bin = l(&["config.json", "pytorch_model.bin"]);
        let e = plan(&only_bin, false, true, "org/x@main")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--allow-pickle") && e.contains("org/x@main"),
            "{e}"
        );
        let p = plan(&only_bin, true, true, "r").unwrap();
        assert_eq!(p.weights.file, PICKLE);
        assert!(p.weights.pickle);
        let e = plan(&l(&["config.json"]), true, true, "r")
            .unwrap_err()
            .to_string();
        assert!(e.contains("has no weights"), "{e}");
        let e = plan(&l(&["model.safetensors"]), false, true, "r")
            .unwrap_err()
            .to_string();
        assert!(e.contains("config.json"), "{e}");
    }
}
