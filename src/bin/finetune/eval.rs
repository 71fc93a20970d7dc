//! `finetune eval`: metrics of a fine-tuned model on labelled data.

use crate::model_kind::{self, ModelKind};
use anyhow::{bail, Result};
use candle_finetune::data::text::TextColumns;
use candle_finetune::tasks::text::{evaluate_text, TextModelOptions};
use candle_finetune::train::learner::describe;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A fine-tuned model: a training output folder, a checkpoint folder or a Hub id.
    #[arg(long)]
    pub model: String,
    /// Labelled files (CSV, TSV, JSONL, Parquet).
    #[arg(long, num_args = 1.., required = true)]
    pub data: Vec<PathBuf>,
    #[arg(long, default_value = "text")]
    pub text_column: String,
    #[arg(long)]
    pub text_pair_column: Option<String>,
    #[arg(long, default_value = "label")]
    pub label_column: String,
    #[arg(long, default_value_t = 128, visible_alias = "max-seq-length")]
    pub max_length: usize,
    #[arg(long, default_value_t = 64)]
    pub batch_size: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// Print the metrics as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let metrics = match model_kind::detect(&a.model)? {
        ModelKind::Text => evaluate_text(
            &a.model,
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
        ModelKind::Image => bail!("evaluating image models is not available yet in this build"),
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&metrics)?);
    } else {
        println!("{} on {} samples", describe(&metrics), metrics.samples);
    }
    Ok(())
}
