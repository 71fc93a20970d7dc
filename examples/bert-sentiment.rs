//! Fine-tunes a text checkpoint (BERT, DistilBERT, RoBERTa or XLM-RoBERTa: the family comes
//! from its `config.json`) for binary sentiment (fresh / rotten film reviews).
//!
//! `cargo run --release --example bert-sentiment [-- --help]`
//!
//! Data: the Hub's `cornell-movie-review-data/rotten_tomatoes`, or, when the Hub is out of
//! reach, the review snippets that `scripts/fetch-assets.sh` prepares (split by film).

use anyhow::{Context, Result};
use candle_finetune::hub::{resolve_dataset, DatasetOptions, HubConfig};
use candle_finetune::settings::{LoraSettings, RunSettings, Task};
use candle_finetune::tasks::{self, text::TextClassifier, text::TextModelOptions};
use candle_finetune::train::Metric;
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// A text checkpoint of any supported family: Hub id or folder (e.g. `bert-base-uncased`,
    /// `distilbert-base-uncased`, `roberta-base`).
    #[arg(long, default_value = "sentence-transformers/all-MiniLM-L6-v2")]
    model: String,
    /// A Hub dataset with `text`/`label` columns and train/validation/test splits.
    #[arg(long, default_value = "cornell-movie-review-data/rotten_tomatoes")]
    dataset: String,
    /// Local data used when the dataset cannot be fetched.
    #[arg(long, default_value = "assets/rotten_tomatoes")]
    local_data: PathBuf,
    /// Frozen parameters (globs over the model's names; `finetune inspect` lists them). The word
    /// embeddings by default (`bert.`, `distilbert.` or `roberta.embeddings.word_embeddings`):
    /// they hold half of MiniLM's weights, and the reviews' vocabulary is what they were
    /// pretrained on.
    #[arg(long, num_args = 1.., default_values = ["*.embeddings.word_embeddings.*"])]
    freeze: Vec<String>,
    /// Train every parameter.
    #[arg(long)]
    no_freeze: bool,
    #[arg(long, default_value_t = 1)]
    epochs: u64,
    /// Peak learning rate (5e-5 and 1e-4 gave 82.2 % and 81.8 % validation accuracy).
    #[arg(long, default_value_t = 5e-5)]
    lr: f64,
    #[arg(long, default_value_t = 32)]
    batch_size: usize,
    /// Train on a seeded sample of this many reviews (default: all 9,806).
    #[arg(long)]
    max_train_samples: Option<usize>,
    #[arg(long, default_value = "runs/bert-sentiment")]
    output: PathBuf,
    #[arg(long, default_value = "auto")]
    device: String,
    /// LoRA instead of full fine-tuning (`--lora --lora-target all-linear --lr 5e-4`).
    #[command(flatten)]
    lora: LoraSettings,
}

fn main() -> Result<()> {
    // Process tuning (allocator, candle's worker pool): before any thread starts.
    candle_finetune::init();
    let args = Args::parse();
    let mut job = RunSettings::new(Task::TextClassification, &args.model, &args.output);
    // A demo: a second run replaces the first one's outputs.
    job.job.overwrite = true;
    match resolve_dataset(
        &args.dataset,
        &HubConfig::from_env(),
        &DatasetOptions::default(),
    ) {
        Ok(_) => job.data.dataset = Some(args.dataset.clone()),
        Err(_) => {
            eprintln!(
                "{} is not reachable on the Hub; using {}",
                args.dataset,
                args.local_data.display()
            );
            let split = |s: &str| {
                let p = args.local_data.join(format!("{s}.csv"));
                p.exists().then(|| vec![p.clone()]).with_context(|| {
                    format!("{} is missing: run scripts/fetch-assets.sh", p.display())
                })
            };
            let d = &mut job.data;
            (d.train, d.eval, d.test) = (split("train")?, split("validation")?, split("test")?);
        }
    }
    job.text.max_length = Some(64);
    job.data.max_train_samples = args.max_train_samples;
    job.job.device = args.device.clone();
    job.lora = args.lora.clone();
    let c = &mut job.train;
    (c.epochs, c.lr, c.batch_size) = (args.epochs, args.lr, args.batch_size);
    c.warmup_ratio = Some(0.1);
    (c.weight_decay, c.metric) = (0.01, Metric::Accuracy);
    c.freeze = if args.no_freeze || args.lora.lora {
        vec![]
    } else {
        args.freeze.clone()
    };
    println!(
        "frozen: {}",
        if c.freeze.is_empty() {
            "nothing".into()
        } else {
            c.freeze.join(", ")
        }
    );

    let report = tasks::train(&job)?;
    println!("frozen parameters: {} tensors", report.frozen.len());
    if let Some(test) = report.test.as_ref().and_then(|t| t.classification.as_ref()) {
        println!(
            "test accuracy: {:.2}% (macro F1 {:.3})",
            100.0 * test.accuracy,
            test.f1
        );
    }
    let model = TextClassifier::load(
        &report.output.display().to_string(),
        &TextModelOptions {
            max_length: Some(64),
            ..Default::default()
        },
        &candle_finetune::core::select_device(&args.device)?,
    )?;
    let reviews = [
        "A warm, funny and beautifully acted film; I loved every minute.",
        "Tedious, predictable and far too long.",
        "The plot makes no sense, but the visuals are stunning.",
    ];
    for (text, p) in reviews.iter().zip(model.predict(&reviews, 2)?) {
        println!("{:>7} ({:.2})  {text}", p.label, p.score);
    }
    println!("exported model: {}", report.output.display());
    Ok(())
}
