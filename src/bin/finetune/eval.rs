//! `finetune eval`: metrics of a fine-tuned model on labelled data.

use anyhow::Result;
use candle_finetune::core::DeviceSpec;
use candle_finetune::data::text::TextColumns;
use candle_finetune::settings::Task;
use candle_finetune::tasks;
use candle_finetune::tasks::image::{self, ImageColumns};
use candle_finetune::tasks::text::{self, TextModelOptions};
use candle_finetune::train::learner::describe;
use candle_finetune::usage::usage;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A fine-tuned model: a training output folder, a checkpoint folder or a Hub id.
    #[arg(long)]
    pub model: String,
    /// Labelled data: text files (CSV, TSV, JSONL, Parquet), or one image dataset (a folder,
    /// IDX, CIFAR, a CSV of `path,label` or pixels, parquet shards; a folder of several splits
    /// gives its test split).
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    #[arg(long, default_value = "text")]
    pub text_column: String,
    #[arg(long)]
    pub text_pair_column: Option<String>,
    #[arg(long, default_value = "label")]
    pub label_column: String,
    /// Parquet image datasets: the column holding the images.
    #[arg(long, default_value = "image")]
    pub image_column: String,
    /// Tokens per text (default: 128, or the model's limit when smaller).
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
    let metrics = match source.family.task() {
        Task::TextClassification => text::evaluate(
            &source,
            &a.data,
            &TextColumns {
                text: a.text_column.clone(),
                pair: a.text_pair_column.clone(),
                label: a.label_column.clone(),
                group: None,
            },
            &TextModelOptions {
                max_length: a.max_length,
                ..Default::default()
            },
            a.batch_size,
            &a.device,
        )?,
        Task::ImageClassification => image::evaluate(
            &source,
            &a.data,
            &ImageColumns {
                image: a.image_column.clone(),
                label: a.label_column.clone(),
            },
            a.batch_size,
            &a.device,
        )?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
    } else {
        println!("{} on {} samples", describe(&metrics), metrics.samples);
    }
    Ok(())
}
