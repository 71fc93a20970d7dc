//! ResNet (timm's `resnet18` … `resnet152`, transformers' `model_type: resnet`;
//! `finetune-resnet`) for image classification: a checkpoint or a fresh network of a named
//! architecture, the task's load options mapped onto the crate's, and what the image task
//! needs of the model beyond training ([`ImageModel`]).

use super::{in_model_files, Family, Loader, ModelSource};
use crate::tasks::image::{ImageClassifier, ImageModel, ImageModelOptions};
use crate::tasks::labels::CheckpointLabels;
use anyhow::{bail, Context, Result};
use candle_core::{DType, Device};
use finetune_hub::ModelFiles;
use finetune_resnet::config::ARCHITECTURE_NAMES;
use finetune_resnet::{LoadOptions, Preprocessing, ResNet, ResNetConfig};
use std::path::Path;

pub(super) static FAMILY: Family = Family {
    name: "ResNet",
    model_types: &["resnet"],
    timm_architectures: &ARCHITECTURE_NAMES,
    fresh: &ARCHITECTURE_NAMES,
    labels,
    training_name: finetune_resnet::naming::canonical_name,
    layout: finetune_resnet::naming::layout,
    library: "timm",
    token: None,
    loader: Loader::Image(load),
};

/// A checkpoint's `label_names` (timm) or `id2label` (transformers); a config without them
/// (or with `LABEL_i` placeholders) names no classes.
fn labels(files: &ModelFiles) -> Result<CheckpointLabels> {
    let config = ResNetConfig::from_file(&files.dir.join("config.json"))?;
    Ok(CheckpointLabels::from_config(config.labels()))
}

fn load(src: &ModelSource, opts: &ImageModelOptions, device: &Device) -> Result<ImageClassifier> {
    let mut net = match &src.files {
        None => fresh(&src.name, opts, device)?,
        Some(files) => pretrained(&src.name, files, opts, device)?,
    };
    if let Some(s) = opts.image_size {
        let mut p = net.config().preprocessing.clone();
        p.input_size = [p.input_size[0], s, s];
        net.set_preprocessing(p)?;
    }
    if !matches!(net.config().in_chans, 1 | 3) {
        bail!(
            "{}: {} input channels (images are gray or RGB)",
            src.name,
            net.config().in_chans
        );
    }
    Ok(ImageClassifier::new(Box::new(net), device))
}

/// A randomly initialised network of architecture `name` for the given labels.
fn fresh(name: &str, opts: &ImageModelOptions, device: &Device) -> Result<ResNet> {
    let labels = opts.labels.as_ref().with_context(|| {
        format!("a fresh {name} needs its classes (labels from the training data)")
    })?;
    let mut config = ResNetConfig::from_name(name, labels.len())?;
    config.set_labels(labels);
    if let Some(p) = opts.problem_type {
        config.problem_type = p;
    }
    let c = opts.channels.unwrap_or(3);
    config.in_chans = c;
    config.preprocessing = Preprocessing::imagenet(c);
    if let Some(s) = opts.image_size {
        // The given size is the images' own: no resize margin to crop away.
        config.preprocessing.input_size = [c, s, s];
        config.preprocessing.crop_pct = 1.0;
    }
    if let Some(p) = opts.drop_rate {
        config.drop_rate = p;
    }
    Ok(ResNet::init(config, DType::F32, device, opts.seed)?)
}

/// A checkpoint, with a new head where the labels ask for one.
fn pretrained(
    name: &str,
    files: &ModelFiles,
    opts: &ImageModelOptions,
    device: &Device,
) -> Result<ResNet> {
    let load = LoadOptions {
        labels: opts.labels.clone(),
        new_head: opts.new_head,
        problem_type: opts.problem_type,
        drop_rate: opts.drop_rate,
        device: device.clone(),
        seed: opts.seed,
        ..LoadOptions::default()
    };
    let (net, report) =
        ResNet::from_pretrained(&files.dir, &load).map_err(|e| in_model_files(e, files))?;
    if !report.newly_initialized.is_empty() || !report.resized.is_empty() {
        eprintln!("{report}");
    }
    if let Some(c) = opts.channels.filter(|&c| c != net.config().in_chans) {
        bail!(
            "{name} takes {} input channels, not {c} (images are converted to the model's \
             channels)",
            net.config().in_chans
        );
    }
    Ok(net)
}

impl ImageModel for ResNet {
    fn labels(&self) -> Vec<String> {
        self.config().labels()
    }

    fn preprocessing(&self) -> &Preprocessing {
        &self.config().preprocessing
    }

    fn in_chans(&self) -> usize {
        self.config().in_chans
    }

    fn export_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()> {
        ResNet::export_as(self, dir, dtype)
    }
}
