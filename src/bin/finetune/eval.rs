//! `finetune eval`: metrics of a fine-tuned model on labelled data.

use crate::recorded::Recorded;
use anyhow::Result;
use candle_finetune::core::DeviceSpec;
use candle_finetune::data::text::TextColumns;
use candle_finetune::data::tokens::TokenColumns;
use candle_finetune::settings::Task;
use candle_finetune::tasks;
use candle_finetune::tasks::image::{self, ImageColumns};
use candle_finetune::tasks::text::{self, TextModelOptions};
use candle_finetune::tasks::token;
use candle_finetune::train::learner::describe;
use candle_finetune::usage::usage;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A fine-tuned model: a training output folder, a checkpoint folder, a Hub id, or a PEFT
    /// LoRA adapter folder (its base model found through `base_model_name_or_path`).
    #[arg(long)]
    pub model: String,
    /// A PEFT LoRA adapter (a folder or a Hub id) to apply to --model.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Labelled data: text files (CSV, TSV, JSONL, Parquet; CoNLL, JSONL or Parquet for a
    /// token classifier), or one image dataset (a folder,
    /// IDX, CIFAR, a CSV of `path,label` or pixels, parquet shards; a folder of several splits
    /// gives its test split).
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    /// The column holding the text [default: the training run's, else `text`].
    #[arg(long)]
    pub text_column: Option<String>,
    /// The column holding the second text of a pair [default: the training run's].
    #[arg(long)]
    pub text_pair_column: Option<String>,
    /// The column holding the label [default: the training run's, else `label`].
    #[arg(long)]
    pub label_column: Option<String>,
    /// Multi-label data as one 0/1 column per label, comma-separated [default: the training
    /// run's].
    #[arg(long, value_delimiter = ',')]
    pub label_columns: Option<Vec<String>>,
    /// Token classification (JSONL, Parquet): the column holding each sentence's words
    /// [default: the training run's, else `tokens`].
    #[arg(long)]
    pub tokens_column: Option<String>,
    /// Token classification (JSONL, Parquet): the column holding each sentence's tags
    /// [default: the training run's, else `ner_tags`].
    #[arg(long)]
    pub tags_column: Option<String>,
    /// Parquet image datasets: the column holding the images [default: the training run's,
    /// else `image`].
    #[arg(long)]
    pub image_column: Option<String>,
    /// Tokens per text [default: the training run's, else 128 or the model's limit when
    /// smaller].
    #[arg(long, visible_alias = "max-seq-length")]
    pub max_length: Option<usize>,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Print the metrics as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    a.device.parse::<DeviceSpec>().map_err(usage)?;
    let source = tasks::open(&a.model)?;
    let source = candle_finetune::families::with_adapter(source, a.adapter.as_deref())?;
    let mut run = Recorded::of(&source)?;
    let label = run.pick("label-column", a.label_column, |s| {
        s.data.label_column.clone()
    });
    let metrics = match source.task() {
        Task::TextClassification => {
            let columns = TextColumns {
                text: run.pick("text-column", a.text_column, |s| s.text.text_column.clone()),
                pair: run.pick("text-pair-column", a.text_pair_column.map(Some), |s| {
                    s.text.text_pair_column.clone()
                }),
                label,
                label_columns: run.pick("label-columns", a.label_columns, |s| {
                    s.text.label_columns.clone()
                }),
                group: None,
            };
            let opts = TextModelOptions {
                max_length: run.pick("max-length", a.max_length.map(Some), |s| s.text.max_length),
                ..Default::default()
            };
            run.announce();
            text::evaluate(&source, &a.data, &columns, &opts, a.batch_size, &a.device)?
        }
        Task::TokenClassification => {
            let columns = TokenColumns {
                tokens: run.pick("tokens-column", a.tokens_column, |s| {
                    s.token.tokens_column.clone()
                }),
                tags: run.pick("tags-column", a.tags_column, |s| {
                    s.token.tags_column.clone()
                }),
            };
            let opts = TextModelOptions {
                max_length: run.pick("max-length", a.max_length.map(Some), |s| s.text.max_length),
                ..Default::default()
            };
            run.announce();
            token::evaluate(&source, &a.data, &columns, &opts, a.batch_size, &a.device)?
        }
        Task::ImageClassification => {
            let columns = ImageColumns {
                image: run.pick("image-column", a.image_column, |s| {
                    s.image.image_column.clone()
                }),
                label,
            };
            run.announce();
            image::evaluate(&source, &a.data, &columns, a.batch_size, &a.device)?
        }
    };
    if a.json {
        let mut json = serde_json::to_value(&metrics)?;
        if metrics.entities.is_some() {
            // The token task's keys are seqeval's: loss and the entity metrics.
            if let Some(obj) = json.as_object_mut() {
                obj.remove("samples");
            }
        }
        println!("{}", serde_json::to_string_pretty(&json)?);
    } else {
        println!("{} on {} samples", describe(&metrics), metrics.samples);
    }
    Ok(())
}
