//! `finetune predict`: a fine-tuned model's predictions for texts or images.

use crate::recorded::Recorded;
use anyhow::{anyhow, Context, Result};
use candle_core::Device;
use candle_finetune::core::{select_device, DeviceSpec};
use candle_finetune::families::ModelSource;
use candle_finetune::settings::Task;
use candle_finetune::tasks;
use candle_finetune::tasks::image::{ImageClassifier, ImageModelOptions};
use candle_finetune::tasks::text::{TextClassifier, TextModelOptions};
use candle_finetune::tasks::token::TokenTagger;
use candle_finetune::usage::usage;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("inputs").required(true).multiple(true))]
pub struct Args {
    /// A fine-tuned model: a training output folder, a checkpoint folder, a Hub id, or a PEFT
    /// LoRA adapter folder (its base model found through `base_model_name_or_path`).
    #[arg(long)]
    pub model: String,
    /// A PEFT LoRA adapter (a folder or a Hub id) to apply to --model.
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// Texts to classify.
    #[arg(long, num_args = 1.., group = "inputs")]
    pub text: Vec<String>,
    /// Images to classify.
    #[arg(long, num_args = 1.., group = "inputs")]
    pub image: Vec<PathBuf>,
    /// A file with one text (or image path, for an image model) per line.
    #[arg(long, group = "inputs")]
    pub input: Option<PathBuf>,
    /// How many labels to list in `scores`.
    #[arg(long, default_value_t = 1)]
    pub top_k: usize,
    /// Multi-label models: the probability from which a label is predicted (in `labels`).
    #[arg(long, default_value_t = tasks::prediction::DEFAULT_THRESHOLD)]
    pub threshold: f64,
    /// Tokens per text [default: the training run's, else 128 or the model's limit when
    /// smaller].
    #[arg(long, visible_alias = "max-seq-length")]
    pub max_length: Option<usize>,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// One JSON object per input on stdout: {"label", "score", "scores", "logits"}, with
    /// "labels" (those reaching --threshold) for a multi-label model and "value" for a
    /// regression one; for a
    /// token classifier {"entities": [{"label", "start", "end", "text", "score"}], "tokens",
    /// "logits"} (a row of logits per token, special tokens included).
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    a.device.parse::<DeviceSpec>().map_err(usage)?;
    if !(0.0..=1.0).contains(&a.threshold) {
        return Err(usage(anyhow!(
            "--threshold must be a probability in [0, 1], got {}",
            a.threshold
        )));
    }
    let device = select_device(&a.device)?;
    let source = tasks::open(&a.model)?;
    let source = candle_finetune::families::with_adapter(source, a.adapter.as_deref())?;
    if source.task() == Task::TokenClassification {
        return predict_tokens(&a, &source, &device);
    }
    let (inputs, predictions) = match source.task() {
        Task::TextClassification => {
            if !a.image.is_empty() {
                return Err(usage(anyhow!(
                    "--image needs an image model; {} is a text model",
                    a.model
                )));
            }
            let mut texts = a.text.clone();
            texts.extend(input_lines(a.input.as_deref())?);
            let mut run = Recorded::of(&source)?;
            let opts = TextModelOptions {
                max_length: run.pick("max-length", a.max_length.map(Some), |s| s.text.max_length),
                ..Default::default()
            };
            run.announce();
            let clf = TextClassifier::from_source(&source, &opts, &device)?;
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let p = clf.predict_with(&refs, a.top_k, a.threshold)?;
            (texts, p)
        }
        Task::TokenClassification => unreachable!("handled above"),
        Task::ImageClassification => {
            if !a.text.is_empty() {
                return Err(usage(anyhow!(
                    "--text needs a text model; {} is an image model",
                    a.model
                )));
            }
            let mut images = a.image.clone();
            images.extend(
                input_lines(a.input.as_deref())?
                    .into_iter()
                    .map(PathBuf::from),
            );
            let opts = ImageModelOptions::default();
            let clf = ImageClassifier::from_source(&source, &opts, &device)?;
            let p = clf.predict_with(&images, a.top_k, a.threshold)?;
            let names = images.iter().map(|p| p.display().to_string()).collect();
            (names, p)
        }
    };
    for (input, p) in inputs.iter().zip(predictions) {
        if a.json {
            println!("{}", serde_json::to_string(&p)?);
        } else if let Some(v) = p.value {
            println!("{v:.4}\t{input}");
        } else if let Some(labels) = &p.labels {
            println!("{}\t{input}", labels.join(";"));
        } else {
            println!("{}\t{:.4}\t{input}", p.label, p.score);
        }
    }
    Ok(())
}

/// A token classifier's entities for each text: one JSON object per text with `--json`
/// (`entities`, `tokens`, `logits`), else a line per text of `TYPE:text` entities.
fn predict_tokens(a: &Args, source: &ModelSource, device: &Device) -> Result<()> {
    if !a.image.is_empty() {
        return Err(usage(anyhow!(
            "--image needs an image model; {} is a token classifier",
            a.model
        )));
    }
    let mut texts = a.text.clone();
    texts.extend(input_lines(a.input.as_deref())?);
    let mut run = Recorded::of(source)?;
    let opts = TextModelOptions {
        max_length: run.pick("max-length", a.max_length.map(Some), |s| s.text.max_length),
        ..Default::default()
    };
    run.announce();
    let tagger = TokenTagger::from_source(source, &opts, device)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (text, p) in texts.iter().zip(tagger.predict(&refs)?) {
        if a.json {
            println!("{}", serde_json::to_string(&p)?);
        } else {
            let found: Vec<String> = p
                .entities
                .iter()
                .map(|e| format!("{}:{} ({:.4})", e.label, e.text, e.score))
                .collect();
            println!("{}\t{text}", found.join(", "));
        }
    }
    Ok(())
}

/// The non-empty lines of `--input` (texts, or image paths for an image model).
fn input_lines(path: Option<&std::path::Path>) -> Result<Vec<String>> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let body =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(body
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(String::from)
        .collect())
}
