//! What the text families built on `finetune-bert`'s [`SequenceClassifier`] and
//! [`TokenClassifier`] share in the registry: their checkpoint's labels, loading with the
//! task's options, the tokenizer from the checkpoint's files, and what the text and token
//! tasks need of the model beyond training ([`TextModel`], [`TokenModel`]). Each family's file names its types and its `model_type`s.

use super::{in_model_files, Family, Loader, ModelSource};
use crate::tasks::labels::CheckpointLabels;
use crate::tasks::text::{TextClassifier, TextModel, TextModelOptions, DEFAULT_MAX_LENGTH};
use crate::tasks::token::{TokenModel, TokenTagger};
use anyhow::Result;
use candle_core::{DType, Device};
use finetune_bert::{
    Architecture, BertTokenizer, EncoderConfig, LoadOptions, SequenceClassifier, TokenClassifier,
};
use finetune_hub::ModelFiles;
use std::path::Path;

/// The registry entry of a text family built on `finetune-bert`: architecture `A`, its name in
/// messages and the `model_type`s its checkpoints carry.
pub(super) const fn text_family<A: Architecture>(
    name: &'static str,
    model_types: &'static [&'static str],
) -> Family {
    Family {
        name,
        model_types,
        timm_architectures: &[],
        fresh: &[],
        labels: labels::<A>,
        training_name: A::Config::canonical_name,
        layout: A::Config::layout,
        library: "transformers",
        loader: Loader::Text(load::<A>),
        token: Some(load_tokens::<A>),
    }
}

/// The `id2label` names of a checkpoint; transformers' `LABEL_i` placeholders are no names.
fn labels<A: Architecture>(files: &ModelFiles) -> Result<CheckpointLabels> {
    let config = A::Config::from_file(&files.dir.join("config.json"))?;
    Ok(CheckpointLabels::from_config(config.labels()))
}

/// The model of architecture `A` with its tokenizer.
fn load<A: Architecture>(
    src: &ModelSource,
    opts: &TextModelOptions,
    device: &Device,
) -> Result<TextClassifier> {
    let files = src.files()?;
    let (model, report) =
        SequenceClassifier::<A>::from_pretrained(&files.dir, &options(opts, device))
            .map_err(|e| in_model_files(e, files))?;
    if !report.newly_initialized.is_empty() || !report.resized.is_empty() {
        eprintln!("{report}");
    }
    let tokenizer = tokenizer(files, model.config(), opts)?;
    Ok(TextClassifier::new(Box::new(model), tokenizer, device))
}

/// The token classifier of architecture `A` with its tokenizer.
fn load_tokens<A: Architecture>(
    src: &ModelSource,
    opts: &TextModelOptions,
    device: &Device,
) -> Result<TokenTagger> {
    let files = src.files()?;
    let (model, report) = TokenClassifier::<A>::from_pretrained(&files.dir, &options(opts, device))
        .map_err(|e| in_model_files(e, files))?;
    if !report.newly_initialized.is_empty() || !report.resized.is_empty() {
        eprintln!("{report}");
    }
    let tokenizer = tokenizer(files, model.config(), opts)?;
    Ok(TokenTagger::new(Box::new(model), tokenizer, device))
}

/// The model crate's load options for the task's.
fn options(opts: &TextModelOptions, device: &Device) -> LoadOptions {
    LoadOptions {
        labels: opts.labels.clone(),
        new_head: opts.new_head,
        problem_type: opts.problem_type,
        dropout: opts.dropout,
        device: device.clone(),
        seed: opts.seed,
        ..LoadOptions::default()
    }
}

/// The checkpoint's tokenizer, truncating to the asked length (default: 128, or the model's
/// limit when smaller).
fn tokenizer<C: EncoderConfig>(
    files: &ModelFiles,
    config: &C,
    opts: &TextModelOptions,
) -> Result<BertTokenizer> {
    let max_pos = config.max_length();
    let max_length = match opts.max_length {
        Some(m) => m,
        None => DEFAULT_MAX_LENGTH.min(BertTokenizer::max_length_limit(&files.dir, max_pos)?),
    };
    let tokenizer = BertTokenizer::from_dir(&files.dir, max_length, max_pos)?;
    tokenizer.check_vocab_fits(config.vocab_size())?;
    Ok(tokenizer)
}

impl<A: Architecture> TextModel for SequenceClassifier<A> {
    fn labels(&self) -> Vec<String> {
        self.config().labels()
    }

    fn export_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()> {
        SequenceClassifier::export_as(self, dir, dtype)
    }

    fn export_encoder_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()> {
        SequenceClassifier::export_encoder_as(self, dir, dtype)
    }
}

impl<A: Architecture> TokenModel for TokenClassifier<A> {
    fn labels(&self) -> Vec<String> {
        self.config().labels()
    }

    fn export_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()> {
        TokenClassifier::export_as(self, dir, dtype)
    }
}
