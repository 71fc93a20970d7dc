//! Token classification (named entity recognition): CoNLL, JSONL or Parquet sentences → tags
//! as class ids → word pieces with aligned targets → the learner → the exported
//! `…ForTokenClassification`, with seqeval's entity metrics; evaluation, prediction (entities
//! grouped as transformers' `ner` pipeline does) and export of a fine-tuned model.
//!
//! - [`data`]: the splits, the run's tags, tags as class ids;
//! - [`align`]: word pieces ↔ word tags;
//! - [`source`]: the batches;
//! - [`model`]: the tagger (model + tokenizer);
//! - [`predict`]: `predict --json`'s entities, tokens and logits.

pub mod align;
pub mod data;
pub mod model;
pub mod predict;
pub mod source;

pub use data::TagRecord;
pub use model::{TokenModel, TokenTagger};
pub use predict::{EntitySpan, TokenPrediction};

use crate::families::ModelSource;
use crate::settings::{RunSettings, Task};
use crate::tasks::launch::RunOutput;
use crate::tasks::output::{write_export, ExportMode};
use crate::tasks::run::{fit_and_test, Prepared, RunReport};
use crate::tasks::text::TextModelOptions;
use anyhow::{bail, Result};
use candle_core::{DType, Device};
use data::Splits;
use finetune_bert::BertBatch;
use finetune_data::tokens::TokenColumns;
use finetune_data::LabelMap;
use finetune_train::{BatchSource, EvalMetrics};
use std::path::{Path, PathBuf};

/// Fine-tunes `source` for token classification as `s` says, evaluates on the test split,
/// exports into the output.
pub(crate) fn train(s: &RunSettings, source: &ModelSource, out: RunOutput) -> Result<RunReport> {
    let splits = Splits::read(s)?;
    let resolved = splits.labels(s, source)?;
    resolved.announce();
    let labels = resolved.map;
    let encode = |t: &finetune_data::tokens::TaggedTable| data::encode(t, &labels);
    let (train, eval, test) = (
        encode(&splits.train)?,
        splits.eval.as_ref().map(encode).transpose()?,
        splits.test.as_ref().map(encode).transpose()?,
    );
    let device = s.job.open_device()?;
    let opts = TextModelOptions {
        labels: Some(labels.names().to_vec()),
        new_head: resolved.new_head,
        problem_type: None,
        max_length: s.text.max_length,
        dropout: s.job.dropout,
        seed: s.train.seed,
    };
    let tagger = TokenTagger::from_source(source, &opts, &device)?;
    crate::tasks::lora::prepare(s, source, Task::TokenClassification, tagger.model())?;
    let tags = train.iter().flat_map(|r| r.tags.iter().copied());
    let mut resolved = crate::tasks::class_weights::resolve(s, labels.len(), tags)?;
    resolved.text.max_length = Some(tagger.max_length());
    let all = s.token.label_all_tokens;
    let train_src = tagger.batches(&train, all)?;
    let eval_src = eval
        .as_deref()
        .map(|r| tagger.batches(r, all))
        .transpose()?;
    let test_src = test
        .as_deref()
        .map(|r| tagger.batches(r, all))
        .transpose()?;
    warn_truncated(
        [Some(&train_src), eval_src.as_ref(), test_src.as_ref()],
        tagger.max_length(),
    );
    fit_and_test(
        &resolved,
        Task::TokenClassification,
        out,
        Prepared {
            model: tagger.model(),
            train: &train_src,
            eval: eval_src.as_ref().map(|b| b as &dyn BatchSource<BertBatch>),
            test: test_src.as_ref().map(|b| b as &dyn BatchSource<BertBatch>),
            labels: labels.names().to_vec(),
            skipped_samples: splits.skipped(),
            source,
            teacher: None,
        },
    )
}

/// One warning line counting the sentences `--max-length` cut.
fn warn_truncated<'a>(
    sources: impl IntoIterator<Item = Option<&'a source::TokenBatches<'a>>>,
    max_length: usize,
) {
    let cut: usize = sources.into_iter().flatten().map(|s| s.truncated()).sum();
    if cut > 0 {
        eprintln!(
            "warning: {cut} sentences are longer than --max-length {max_length} tokens and \
             were cut (their last words carry no label)"
        );
    }
}

/// Evaluates a fine-tuned token classifier on labelled files; the tags are the model's.
pub fn evaluate(
    source: &ModelSource,
    files: &[PathBuf],
    columns: &TokenColumns,
    opts: &TextModelOptions,
    batch_size: usize,
    device: &str,
) -> Result<EvalMetrics> {
    let device = finetune_core::select_device(device)?;
    let tagger = TokenTagger::from_source(source, opts, &device)?;
    let labels = LabelMap::from_names(tagger.labels())?;
    let records = data::read_labelled(files, columns, &labels)?;
    if records.is_empty() {
        bail!("no sentences to evaluate in {files:?}");
    }
    let batches = tagger.batches(&records, false)?;
    warn_truncated([Some(&batches)], tagger.max_length());
    Ok(finetune_train::learner::evaluate(
        tagger.model(),
        &batches,
        batch_size,
    )?)
}

/// Writes `source` again for transformers, floating-point tensors in `dtype`.
pub(crate) fn export(
    source: &ModelSource,
    output: &Path,
    dtype: Option<DType>,
    mode: ExportMode,
) -> Result<()> {
    let tagger = TokenTagger::from_source(source, &TextModelOptions::default(), &Device::Cpu)?;
    let model = tagger.model();
    write_export(source, model.store(), output, dtype, mode, |tmp| {
        model.export_as(tmp, dtype)
    })
}
