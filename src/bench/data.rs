//! `finetune bench data`: images/s through an image run's training pipeline — JPEG decode,
//! RandomResizedCrop(224) + horizontal flip + ToTensor + Normalize, collated into
//! `[B, 3, 224, 224]` CPU tensors — built as the learner's batch producer builds them (the
//! samples of a batch on rayon's threads, [`ImageBatches`]), next to a single-threaded loop over
//! the same work and to decoding alone, in the same run.

use crate::tasks::image::ImageBatches;
use candle_core::Device;
use finetune_core::Result;
use finetune_data::image::{collate, ColorMode, ImageClassification, ImageDataset};
use finetune_data::seed::sample_rng;
use finetune_data::transforms::{
    Compose, Interpolation, Normalize, RandomHorizontalFlip, RandomResizedCrop, ToTensor,
};
use finetune_data::{Dataset, OnBadSample, SkipLog};
use finetune_train::BatchSource;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// What `finetune bench data --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct DataBenchReport {
    /// Images pushed through each of the three ways.
    pub images: usize,
    /// Images per batch.
    pub batch: usize,
    /// rayon's threads.
    pub threads: usize,
    /// Images/s of a single-threaded loop over the same per-sample work and collation.
    pub loop_images_per_s: f64,
    /// Images/s of JPEG decoding alone (single-threaded).
    pub decode_images_per_s: f64,
    /// Images/s of the training pipeline's batches.
    pub pipeline_images_per_s: f64,
}

/// A 500×375 photo-sized JPEG with some structure, so that it does not compress to nothing.
fn jpeg(i: u32) -> Result<Vec<u8>> {
    let img = image::RgbImage::from_fn(500, 375, |x, y| {
        let v = (x * 3 + y * 7 + i * 13) ^ (x * y / 17);
        image::Rgb([
            (v % 256) as u8,
            ((v / 3) % 256) as u8,
            ((x + i) % 256) as u8,
        ])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .map_err(|e| finetune_core::Error::config(format!("encoding a JPEG: {e}")))?;
    Ok(out.into_inner())
}

/// `n` images (32 distinct ones, repeated) through the timm-style training transforms.
fn pipeline(n: usize) -> Result<ImageClassification> {
    let distinct = 32.min(n.max(1));
    let blobs: Vec<Vec<u8>> = (0..distinct as u32).map(jpeg).collect::<Result<_>>()?;
    let blobs = (0..n).map(|i| blobs[i % distinct].clone()).collect();
    let data = ImageDataset::from_encoded(Path::new("bench"), blobs, vec![0; n], vec!["x".into()])?;
    let transform = Compose::new()
        .then(RandomResizedCrop::new(224, 224, Interpolation::Bilinear))
        .then(RandomHorizontalFlip::new(0.5))
        .then(ToTensor)
        .then(Normalize::new(
            vec![0.485, 0.456, 0.406],
            vec![0.229, 0.224, 0.225],
        )?);
    Ok(ImageClassification {
        data,
        transform,
        color: ColorMode::Rgb,
    })
}

/// Times `images` images in batches of `batch` three ways (see the module doc).
pub fn run_data_bench(images: usize, batch: usize) -> Result<DataBenchReport> {
    let ds = pipeline(images)?;
    let rate = |secs: f64| images as f64 / secs.max(1e-9);

    let t0 = Instant::now();
    let mut items = Vec::with_capacity(batch);
    for i in 0..images {
        items.push(ds.get(i, &mut sample_rng(0, 0, i as u64))?);
        if items.len() == batch || i + 1 == images {
            std::hint::black_box(collate(std::mem::take(&mut items), &Device::Cpu)?);
        }
    }
    let loop_images_per_s = rate(t0.elapsed().as_secs_f64());

    let t0 = Instant::now();
    for i in 0..images {
        std::hint::black_box(ds.data.load(i, ColorMode::Rgb)?);
    }
    let decode_images_per_s = rate(t0.elapsed().as_secs_f64());

    let source = ImageBatches {
        train: pipeline(images)?,
        eval: ds,
        random_train: true,
        seed: 0,
        device: Device::Cpu,
        on_bad: OnBadSample::Error,
        skipped: SkipLog::new(),
        mixup: None,
    };
    let idx: Vec<usize> = (0..images).collect();
    let t0 = Instant::now();
    for chunk in idx.chunks(batch.max(1)) {
        std::hint::black_box(source.batch(chunk, 0, true)?);
    }
    let pipeline_images_per_s = rate(t0.elapsed().as_secs_f64());
    Ok(DataBenchReport {
        images,
        batch,
        threads: rayon::current_num_threads(),
        loop_images_per_s,
        decode_images_per_s,
        pipeline_images_per_s,
    })
}
