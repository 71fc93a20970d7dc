//! `finetune predict`: a fine-tuned model's predictions for texts.

use crate::model_kind::{self, ModelKind};
use anyhow::{bail, Context, Result};
use candle_finetune::core::select_device;
use candle_finetune::tasks::text::{TextClassifier, TextModelOptions};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
#[command(group = clap::ArgGroup::new("inputs").required(true).multiple(true))]
pub struct Args {
    /// A fine-tuned model: a training output folder, a checkpoint folder or a Hub id.
    #[arg(long)]
    pub model: String,
    /// Texts to classify.
    #[arg(long, num_args = 1.., group = "inputs")]
    pub text: Vec<String>,
    /// Images to classify.
    #[arg(long, num_args = 1.., group = "inputs")]
    pub image: Vec<PathBuf>,
    /// A file with one text per line.
    #[arg(long, group = "inputs")]
    pub input: Option<PathBuf>,
    /// How many labels to list in `scores`.
    #[arg(long, default_value_t = 1)]
    pub top_k: usize,
    #[arg(long, default_value_t = 128, visible_alias = "max-seq-length")]
    pub max_length: usize,
    #[arg(long, default_value = "auto")]
    pub device: String,
    /// One JSON object per input on stdout: {"label", "score", "scores", "logits"}.
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    match model_kind::detect(&a.model)? {
        ModelKind::Text => {}
        ModelKind::Image => {
            bail!("predicting with image models is not available yet in this build")
        }
    }
    if !a.image.is_empty() {
        bail!("--image needs an image model; {} is a text model", a.model);
    }
    let mut texts = a.text.clone();
    if let Some(path) = &a.input {
        let body =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        texts.extend(
            body.lines()
                .filter(|l| !l.trim().is_empty())
                .map(String::from),
        );
    }
    let device = select_device(&a.device)?;
    let opts = TextModelOptions {
        max_length: a.max_length,
        ..Default::default()
    };
    let clf = TextClassifier::load(&a.model, &opts, &device)?;
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    for (text, p) in texts.iter().zip(clf.predict(&refs, a.top_k)?) {
        if a.json {
            println!("{}", serde_json::to_string(&p)?);
        } else {
            println!("{}\t{:.4}\t{text}", p.label, p.score);
        }
    }
    Ok(())
}
