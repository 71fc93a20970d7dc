//! BERT (`model_type: bert`; `finetune-bert`) for text classification: the task's load options
//! mapped onto the crate's, the tokenizer from the checkpoint's files, and what the text task
//! needs of the model beyond training ([`TextModel`]).

use super::{in_model_files, Family, Loader, ModelSource};
use crate::tasks::labels::CheckpointLabels;
use crate::tasks::text::{TextClassifier, TextModel, TextModelOptions, DEFAULT_MAX_LENGTH};
use anyhow::Result;
use candle_core::{DType, Device};
use finetune_bert::{BertConfig, BertForSequenceClassification, BertTokenizer, LoadOptions};
use finetune_hub::ModelFiles;
use std::path::Path;

pub(super) static FAMILY: Family = Family {
    name: "BERT",
    model_types: &["bert"],
    timm_architectures: &[],
    fresh: &[],
    labels,
    training_name: finetune_bert::naming::canonical_name,
    layout: finetune_bert::naming::layout,
    library: "transformers",
    loader: Loader::Text(load),
};

/// The `id2label` names of a checkpoint; transformers' `LABEL_i` placeholders are no names.
fn labels(files: &ModelFiles) -> Result<CheckpointLabels> {
    let config = BertConfig::from_file(&files.dir.join("config.json"))?;
    Ok(CheckpointLabels::from_config(config.labels()))
}

fn load(src: &ModelSource, opts: &TextModelOptions, device: &Device) -> Result<TextClassifier> {
    let files = src.files()?;
    let load = LoadOptions {
        labels: opts.labels.clone(),
        new_head: opts.new_head,
        dropout: opts.dropout,
        device: device.clone(),
        seed: opts.seed,
        ..LoadOptions::default()
    };
    let (model, report) = BertForSequenceClassification::from_pretrained(&files.dir, &load)
        .map_err(|e| in_model_files(e, files))?;
    if !report.newly_initialized.is_empty() || !report.resized.is_empty() {
        eprintln!("{report}");
    }
    let max_pos = model.config().max_position_embeddings;
    let max_length = match opts.max_length {
        Some(m) => m,
        None => DEFAULT_MAX_LENGTH.min(BertTokenizer::max_length_limit(&files.dir, max_pos)?),
    };
    let tokenizer = BertTokenizer::from_dir(&files.dir, max_length, max_pos)?;
    tokenizer.check_vocab_fits(model.config().vocab_size)?;
    Ok(TextClassifier::new(Box::new(model), tokenizer, device))
}

impl TextModel for BertForSequenceClassification {
    fn labels(&self) -> Vec<String> {
        self.config().labels()
    }

    fn export_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()> {
        BertForSequenceClassification::export_as(self, dir, dtype)
    }
}
