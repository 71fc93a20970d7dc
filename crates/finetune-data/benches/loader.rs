//! Loader throughput: images/s through JPEG decode + RandomResizedCrop(224) + horizontal flip +
//! ToTensor + Normalize, collated into `[B, 3, 224, 224]` CPU tensors. Compares the threaded,
//! prefetching loader with a plain single-threaded loop over the same work, in the same run.
//!
//!   cargo bench -p finetune-data --bench loader [-- IMAGES]

use candle_core::Device;
use finetune_data::image::{collate, ColorMode, ImageClassification, ImageDataset};
use finetune_data::loader::Dataset;
use finetune_data::seed::sample_rng;
use finetune_data::transforms::{
    Compose, Interpolation, Normalize, RandomHorizontalFlip, RandomResizedCrop, ToTensor,
};
use finetune_data::{BatchSampler, Loader, LoaderConfig, OnBadSample};
use std::path::Path;
use std::time::Instant;

fn jpeg(i: u32) -> Vec<u8> {
    // A 500x375 photo-sized image with some structure so the JPEG is not trivial.
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
        .unwrap();
    out.into_inner()
}

fn dataset(n: usize) -> ImageClassification {
    let distinct = 32.min(n);
    let blobs: Vec<Vec<u8>> = (0..distinct as u32).map(jpeg).collect();
    let blobs = (0..n).map(|i| blobs[i % distinct].clone()).collect();
    let data = ImageDataset::from_encoded(Path::new("bench"), blobs, vec![0; n], vec!["x".into()])
        .unwrap();
    let transform = Compose::new()
        .then(RandomResizedCrop::new(224, 224, Interpolation::Bilinear))
        .then(RandomHorizontalFlip::new(0.5))
        .then(ToTensor)
        .then(Normalize::new(vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225]).unwrap());
    ImageClassification {
        data,
        transform,
        color: ColorMode::Rgb,
    }
}

/// Images per second of `n` images processed in `secs`.
fn rate(n: usize, secs: f64) -> f64 {
    n as f64 / secs
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(256);
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    let batch = 32;
    println!("{n} images, 500x375 JPEG -> RandomResizedCrop(224) + flip + ToTensor + Normalize -> [{batch}, 3, 224, 224]; {threads} hardware thread(s)");

    // Baseline: one thread, no loader, the same per-sample work and the same collation.
    let ds = dataset(n);
    let t0 = Instant::now();
    let mut items = Vec::with_capacity(batch);
    for i in 0..n {
        items.push(ds.get(i, &mut sample_rng(0, 0, i as u64)).unwrap());
        if items.len() == batch || i + 1 == n {
            std::hint::black_box(collate(std::mem::take(&mut items), &Device::Cpu).unwrap());
        }
    }
    let base = rate(n, t0.elapsed().as_secs_f64());
    println!("baseline, single-threaded loop   : {base:8.1} images/s");

    // Where the baseline's time goes: decoding alone.
    let t0 = Instant::now();
    for i in 0..n {
        std::hint::black_box(ds.data.load(i, ColorMode::Rgb).unwrap());
    }
    let decode = rate(n, t0.elapsed().as_secs_f64());
    println!(
        "  of which JPEG decode alone     : {decode:8.1} images/s ({:.0}% of the baseline's time)",
        100.0 * base / decode
    );

    for t in [1, threads] {
        let sampler = BatchSampler {
            len: n,
            batch_size: batch,
            shuffle: true,
            drop_last: false,
            seed: 0,
        };
        let cfg = LoaderConfig {
            seed: 0,
            threads: t,
            prefetch: 2,
            on_bad: OnBadSample::Error,
        };
        let loader = Loader::new(dataset(n), sampler, |it| collate(it, &Device::Cpu), cfg).unwrap();
        let t0 = Instant::now();
        let mut seen = 0;
        for b in loader.epoch(0) {
            seen += b.unwrap().indices.len();
        }
        assert_eq!(seen, n);
        let r = rate(n, t0.elapsed().as_secs_f64());
        println!(
            "loader, {t:2} thread(s), prefetch 2: {r:8.1} images/s ({:.2}x the baseline)",
            r / base
        );
        if threads == 1 {
            break;
        }
    }
}
