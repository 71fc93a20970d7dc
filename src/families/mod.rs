//! The model families `finetune` trains: the one place a family is registered ([`FAMILIES`]).
//! A model named on the command line (or in a library call) is resolved once per run into a
//! [`ModelSource`]: its files (a local folder, the Hugging Face cache or a download) and the
//! family its `config.json` names — transformers' `model_type`, or timm's `architecture` — or,
//! for an architecture name such as `resnet18`, a network to initialise at random. Tasks and
//! commands then load through the family's [`Loader`] rather than matching on family names.
//!
//! Adding a family: a model crate under `models/` (its names, its `TrainModel` impl, load and
//! export), a glue file here mapping the task's load options onto it, and one entry in
//! [`FAMILIES`].

mod adapter;
mod bert;
mod distilbert;
mod encoder;
mod resnet;
mod roberta;
mod vit;

pub use adapter::{adapter_labels, load_with_adapter, with_adapter, HeadLabels};

use crate::settings::Task;
use crate::tasks::image::{ImageClassifier, ImageModelOptions};
use crate::tasks::labels::CheckpointLabels;
use crate::tasks::text::{TextClassifier, TextModelOptions};
use crate::tasks::token::TokenTagger;
use anyhow::{bail, Context, Result};
use candle_core::Device;
use finetune_core::lora::peft as lora;
use finetune_hub::{resolve_model, HubConfig, ModelFiles, ModelOptions};
use std::path::{Path, PathBuf};

/// How a family's models are built for their task.
#[derive(Clone, Copy)]
pub enum Loader {
    /// A text-classification family: builds a model and its tokenizer.
    Text(fn(&ModelSource, &TextModelOptions, &Device) -> Result<TextClassifier>),
    /// An image-classification family: builds a model (or a fresh network) and its
    /// preprocessing.
    Image(fn(&ModelSource, &ImageModelOptions, &Device) -> Result<ImageClassifier>),
}

/// How a text family's models are built for token classification (its encoder with a
/// `classifier` on every token) and their tokenizer.
pub type TokenLoader = fn(&ModelSource, &TextModelOptions, &Device) -> Result<TokenTagger>;

/// A model family and how to recognise, read and build its checkpoints.
pub struct Family {
    /// The family's name in messages (`BERT`).
    pub name: &'static str,
    /// transformers' `model_type` values its checkpoints carry.
    pub model_types: &'static [&'static str],
    /// timm's `architecture` values its checkpoints carry.
    pub timm_architectures: &'static [&'static str],
    /// Names that build a randomly initialised network (trained from scratch).
    pub fresh: &'static [&'static str],
    /// The classes a checkpoint's head was trained for, and whether its config names them
    /// (not placeholders such as transformers' `LABEL_0`).
    pub labels: fn(&ModelFiles) -> Result<CheckpointLabels>,
    /// How its models are built, which also says their task ([`Family::task`]).
    pub loader: Loader,
    /// How its token classifiers are built, for families that have them.
    pub token: Option<TokenLoader>,
    /// A checkpoint tensor's name as training, freeze patterns and exports use it (`None`:
    /// a tensor the model does not use).
    pub training_name: fn(&str) -> Option<String>,
    /// The Python library that loads its exports (`transformers`, `timm`): the model card's
    /// `library_name`.
    pub library: &'static str,
    /// The model's parameter layout (head, depths, the other naming), as its `TrainModel`
    /// declares it.
    pub layout: fn() -> finetune_core::ParamLayout,
}

impl Family {
    /// The task its models do.
    pub fn task(&self) -> Task {
        match self.loader {
            Loader::Text(_) => Task::TextClassification,
            Loader::Image(_) => Task::ImageClassification,
        }
    }
}

/// Every family, in the order `config.json` is matched against them.
pub static FAMILIES: [&Family; 5] = [
    &bert::FAMILY,
    &distilbert::FAMILY,
    &roberta::FAMILY,
    &resnet::FAMILY,
    &vit::FAMILY,
];

/// A model as a run uses it: what the user named, its family, and its files (`None` for an
/// architecture name: a fresh network).
pub struct ModelSource {
    /// What the user named: a folder, a Hub id or an architecture name.
    pub name: String,
    /// The family the model belongs to.
    pub family: &'static Family,
    /// The checkpoint's resolved files; `None` for an architecture name (a fresh network).
    pub files: Option<ModelFiles>,
    /// A PEFT LoRA adapter folder to apply on top (`--adapter`, or an adapter folder named
    /// as the model: `files` are then its base model's).
    pub adapter: Option<PathBuf>,
}

impl ModelSource {
    /// The checkpoint's files; an error for a fresh network.
    pub fn files(&self) -> Result<&ModelFiles> {
        self.files
            .as_ref()
            .with_context(|| format!("{} names an architecture, not a checkpoint", self.name))
    }

    /// The classes the checkpoint's head was trained for (see [`Family::labels`]); `None` for
    /// a fresh network.
    pub fn labels(&self) -> Result<Option<CheckpointLabels>> {
        self.files
            .as_ref()
            .map(|files| (self.family.labels)(files))
            .transpose()
    }

    /// The task the checkpoint was fine-tuned for: token classification when its family has
    /// token classifiers and its `config.json` names a `…ForTokenClassification` (or its
    /// adapter is PEFT's `TOKEN_CLS`), else the family's.
    pub fn task(&self) -> Task {
        if self.family.token.is_some() && self.is_token_classifier() {
            Task::TokenClassification
        } else {
            self.family.task()
        }
    }

    fn is_token_classifier(&self) -> bool {
        let read = |path: PathBuf| -> Option<serde_json::Value> {
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
        };
        if let Some(dir) = &self.adapter {
            let config = read(dir.join("adapter_config.json"));
            return config.is_some_and(|c| c["task_type"] == "TOKEN_CLS");
        }
        let Some(files) = &self.files else {
            return false;
        };
        read(files.dir.join("config.json")).is_some_and(|c| {
            c["architectures"][0]
                .as_str()
                .is_some_and(|a| a.ends_with("ForTokenClassification"))
        })
    }

    /// Fails unless the model can be trained for `task` (a text family's checkpoints for
    /// token classification too).
    pub fn check_task(&self, task: Task) -> Result<()> {
        let token = task == Task::TokenClassification && self.family.token.is_some();
        if self.family.task() != task && !token {
            bail!(
                "{} is a {} model ({}); {} needs a {} model",
                self.name,
                self.family.task().describe(),
                self.family.name,
                task.describe(),
                task.describe()
            );
        }
        Ok(())
    }
}

/// Resolves `model` (a folder, a Hub id or an architecture name) once: its files and family.
/// With a `task`, a `config.json` that names no family (or is not JSON: the family's own
/// reader then says what is wrong with it) is taken for that task's family.
pub fn resolve(model: &str, allow_pickle: bool, task: Option<Task>) -> Result<ModelSource> {
    let folder = Path::new(model);
    if lora::is_adapter_dir(folder) && !folder.join("config.json").is_file() {
        return adapter::resolve_adapter_folder(folder, allow_pickle, task);
    }
    if !folder.exists() {
        if let Some(family) = FAMILIES.iter().find(|f| f.fresh.contains(&model)) {
            return Ok(ModelSource {
                name: model.to_string(),
                family,
                files: None,
                adapter: None,
            });
        }
    }
    let files = resolve_model(
        model,
        &HubConfig::from_env(),
        &ModelOptions { allow_pickle },
    )?;
    if files.config.is_none() && lora::is_adapter_dir(&files.dir) {
        // A PEFT adapter repository on the Hub.
        return adapter::resolve_adapter_folder(&files.dir, allow_pickle, task);
    }
    let family = family_of(&files, task)?;
    Ok(ModelSource {
        name: model.to_string(),
        family,
        files: Some(files),
        adapter: None,
    })
}

/// The family a checkpoint's `config.json` names (or `task`'s, see [`resolve`]).
fn family_of(files: &ModelFiles, task: Option<Task>) -> Result<&'static Family> {
    let path = files.dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let of_task = task.and_then(|t| FAMILIES.iter().copied().find(|f| f.task() == t));
    let config: serde_json::Value = match (serde_json::from_str(&text), of_task) {
        (Ok(c), _) => c,
        (Err(_), Some(family)) => return Ok(family),
        (Err(e), None) => bail!("{} is not valid JSON: {e}", path.display()),
    };
    let found = match (config.get("model_type"), config.get("architecture")) {
        (Some(t), _) => {
            let t = t.as_str().unwrap_or_default();
            FAMILIES
                .iter()
                .copied()
                .find(|f| f.model_types.contains(&t))
        }
        (None, Some(a)) => {
            let a = a.as_str().unwrap_or_default();
            FAMILIES
                .iter()
                .copied()
                .find(|f| f.timm_architectures.contains(&a))
        }
        (None, None) => of_task,
    };
    found.with_context(|| {
        let what = config
            .get("model_type")
            .map(|t| format!("model_type {t}"))
            .or(config
                .get("architecture")
                .map(|a| format!("architecture {a}")))
            .unwrap_or_else(|| "neither model_type nor architecture".into());
        let known: Vec<String> = FAMILIES
            .iter()
            .flat_map(|f| f.model_types.iter().chain(f.timm_architectures))
            .map(|s| s.to_string())
            .collect();
        format!(
            "{}: {what} is not a supported model (supported: {})",
            path.display(),
            known.join(", ")
        )
    })
}

/// A model-loading error, naming the file it concerns when its message names none: a tensor's
/// shape or dtype → the weights file (shapes: and the `config.json` they were checked against),
/// anything else → the model folder.
pub(crate) fn in_model_files(e: finetune_core::Error, files: &ModelFiles) -> anyhow::Error {
    let msg = e.to_string();
    let dir = files.dir.display().to_string();
    if msg.contains(&dir) {
        return e.into();
    }
    let weights = files
        .weights
        .index
        .clone()
        .or_else(|| files.weights.files.first().cloned())
        .unwrap_or_else(|| files.dir.clone());
    let config = files
        .config
        .clone()
        .unwrap_or_else(|| files.dir.join("config.json"));
    match e {
        finetune_core::Error::Shape { .. } => anyhow::anyhow!(
            "{} does not match {}: {msg}",
            weights.display(),
            config.display()
        ),
        _ if msg.contains("lacks tensor") => anyhow::anyhow!(
            "{} does not match {}: {msg}",
            weights.display(),
            config.display()
        ),
        _ if msg.contains("tensor") => anyhow::anyhow!("{}: {msg}", weights.display()),
        _ => anyhow::anyhow!("{dir}: {msg}"),
    }
}
