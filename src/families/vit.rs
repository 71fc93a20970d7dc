//! ViT (transformers' `model_type: vit`, timm's `vit_*`; `finetune-vit`) for image
//! classification: a checkpoint or a fresh network of a timm architecture, the task's load
//! options mapped onto the crate's, and what the image task needs of the model
//! ([`ImageModel`]).

use super::{in_model_files, Family, Loader, ModelSource};
use crate::tasks::image::{ImageClassifier, ImageModel, ImageModelOptions};
use crate::tasks::labels::CheckpointLabels;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use finetune_core::preprocess::Preprocessing;
use finetune_hub::ModelFiles;
use finetune_vit::model::read_folder;
use finetune_vit::timm::ARCHITECTURE_NAMES;
use finetune_vit::{LoadOptions, ViT};
use std::path::Path;

pub(super) static FAMILY: Family = Family {
    name: "ViT",
    model_types: &["vit"],
    timm_architectures: &ARCHITECTURE_NAMES,
    fresh: &ARCHITECTURE_NAMES,
    labels,
    training_name: finetune_vit::naming::canonical_name,
    layout: finetune_vit::naming::layout,
    library: "transformers",
    loader: Loader::Image(load),
    token: None,
};

/// A checkpoint's `id2label` (transformers) or `label_names` (timm); placeholders name no
/// classes.
fn labels(files: &ModelFiles) -> Result<CheckpointLabels> {
    let (config, _) = read_folder(&files.dir)?;
    Ok(CheckpointLabels::from_config(config.classifier.labels()))
}

fn load(src: &ModelSource, opts: &ImageModelOptions, device: &Device) -> Result<ImageClassifier> {
    let net = match &src.files {
        None => fresh(&src.name, opts, device)?,
        Some(files) => pretrained(&src.name, files, opts, device)?,
    };
    Ok(ImageClassifier::new(Box::new(net), device))
}

/// A randomly initialised timm architecture `name` for the given labels.
fn fresh(name: &str, opts: &ImageModelOptions, device: &Device) -> Result<ViT> {
    let labels = opts.labels.as_ref().with_context(|| {
        format!("a fresh {name} needs its classes (labels from the training data)")
    })?;
    let mut config = finetune_vit::timm::config_of(name, labels.len())?;
    config.classifier.set_labels(labels);
    config.classifier.problem_type = opts.problem_type;
    config.num_channels = opts.channels.unwrap_or(3);
    if let Some(s) = opts.image_size {
        config.image_size = s;
    }
    if let Some(p) = opts.drop_rate {
        config.hidden_dropout_prob = p;
    }
    Ok(ViT::init(config, DType::F32, device, opts.seed)?)
}

/// A checkpoint, with a new head where the labels ask for one and position embeddings
/// resampled for `--image-size`.
fn pretrained(
    name: &str,
    files: &ModelFiles,
    opts: &ImageModelOptions,
    device: &Device,
) -> Result<ViT> {
    let load = LoadOptions {
        labels: opts.labels.clone(),
        new_head: opts.new_head,
        problem_type: opts.problem_type,
        image_size: opts.image_size,
        dropout: opts.drop_rate,
        device: device.clone(),
        seed: opts.seed,
        ..LoadOptions::default()
    };
    let (net, report, resampled) =
        ViT::from_pretrained(&files.dir, &load).map_err(|e| in_model_files(e, files))?;
    if !report.newly_initialized.is_empty() || !report.resized.is_empty() {
        eprintln!("{report}");
    }
    if let Some((from, to)) = resampled {
        eprintln!(
            "position embeddings resampled from {from}×{from} to {to}×{to} patches (bicubic)"
        );
    }
    if let Some(c) = opts.channels.filter(|&c| c != net.config().num_channels) {
        bail!(
            "{name} takes {} input channels, not {c} (images are converted to the model's \
             channels)",
            net.config().num_channels
        );
    }
    Ok(net)
}

impl ImageModel for ViT {
    fn labels(&self) -> Vec<String> {
        self.config().classifier.labels()
    }

    fn preprocessing(&self) -> &Preprocessing {
        ViT::preprocessing(self)
    }

    fn in_chans(&self) -> usize {
        self.config().num_channels
    }

    fn export_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()> {
        ViT::export_as(self, dir, dtype)
    }
}
