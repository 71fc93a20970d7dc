//! The loader: same seed → same batches whatever the thread count; epochs, shuffling,
//! drop_last, resuming mid-epoch, bad samples (error or skip-and-count).

mod common;

use candle_core::Device;
use common::{assert_mentions, encoded};
use finetune_core::{Result, Rng};
use finetune_data::image::{collate, ColorMode, ImageBatch, ImageClassification, ImageDataset};
use finetune_data::loader::Batch;
use finetune_data::transforms::{
    ColorJitter, Compose, Interpolation, Normalize, RandomHorizontalFlip, RandomResizedCrop,
    RandomRotation, ToTensor,
};
use finetune_data::{BatchSampler, Dataset, Loader, LoaderConfig, OnBadSample};
use image::ImageFormat;
use std::path::Path;

fn dataset(n: usize, corrupt: Option<usize>) -> ImageClassification {
    let blobs: Vec<Vec<u8>> = (0..n)
        .map(|i| {
            if Some(i) == corrupt {
                b"broken".to_vec()
            } else {
                encoded(40 + i as u32 % 7, 30 + i as u32 % 5, ImageFormat::Png)
            }
        })
        .collect();
    let labels = (0..n).map(|i| i % 3).collect();
    let data = ImageDataset::from_encoded(
        Path::new("memory.parquet"),
        blobs,
        labels,
        vec!["a".into(), "b".into(), "c".into()],
    )
    .unwrap();
    let transform = Compose::new()
        .then(RandomResizedCrop::new(16, 16, Interpolation::Bilinear))
        .then(RandomHorizontalFlip::new(0.5))
        .then(RandomRotation::new(10.0).unwrap())
        .then(ColorJitter::new(0.4, 0.4, 0.4, 0.1).unwrap())
        .then(ToTensor)
        .then(Normalize::new(vec![0.5; 3], vec![0.25; 3]).unwrap());
    ImageClassification {
        data,
        transform,
        color: ColorMode::Rgb,
    }
}

fn loader(
    ds: ImageClassification,
    threads: usize,
    seed: u64,
    drop_last: bool,
    on_bad: OnBadSample,
) -> Loader<ImageClassification, ImageBatch> {
    let n = ds.len();
    let sampler = BatchSampler {
        len: n,
        batch_size: 8,
        shuffle: true,
        drop_last,
        seed,
    };
    let cfg = LoaderConfig {
        seed,
        threads,
        prefetch: 2,
        on_bad,
    };
    Loader::new(ds, sampler, |items| collate(items, &Device::Cpu), cfg).unwrap()
}

fn flat(b: &Batch<ImageBatch>) -> (Vec<usize>, Vec<f32>, Vec<u32>) {
    let x = b
        .data
        .images
        .flatten_all()
        .unwrap()
        .to_vec1::<f32>()
        .unwrap();
    let y = b.data.labels.to_vec1::<u32>().unwrap();
    (b.indices.clone(), x, y)
}

fn run(
    l: &Loader<ImageClassification, ImageBatch>,
    epoch: u64,
) -> Vec<(Vec<usize>, Vec<f32>, Vec<u32>)> {
    l.epoch(epoch).map(|b| flat(&b.unwrap())).collect()
}

#[test]
fn same_seed_same_batches_whatever_the_thread_count() {
    let one = run(
        &loader(dataset(30, None), 1, 9, false, OnBadSample::Error),
        0,
    );
    let four = run(
        &loader(dataset(30, None), 4, 9, false, OnBadSample::Error),
        0,
    );
    assert_eq!(one, four);
    assert_eq!(one.len(), 4); // 30 = 3 * 8 + 6
    let b = &one[0];
    assert_eq!(b.1.len(), 8 * 3 * 16 * 16);
    // Labels travel with their images.
    assert_eq!(b.2, b.0.iter().map(|&i| (i % 3) as u32).collect::<Vec<_>>());
    // Another seed or another epoch: other batches.
    assert_ne!(
        run(
            &loader(dataset(30, None), 2, 10, false, OnBadSample::Error),
            0
        ),
        one
    );
    assert_ne!(
        run(
            &loader(dataset(30, None), 2, 9, false, OnBadSample::Error),
            1
        ),
        one
    );
}

#[test]
fn an_epoch_visits_every_sample_once_and_drop_last_drops_the_short_batch() {
    let l = loader(dataset(30, None), 2, 1, false, OnBadSample::Error);
    let mut seen: Vec<usize> = run(&l, 3).into_iter().flat_map(|b| b.0).collect();
    assert_ne!(seen, (0..30).collect::<Vec<_>>()); // shuffled
    seen.sort();
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
    let l = loader(dataset(30, None), 2, 1, true, OnBadSample::Error);
    assert_eq!(l.num_batches(0), 3);
    assert!(run(&l, 0).iter().all(|b| b.0.len() == 8));
}

#[test]
fn resuming_mid_epoch_gives_the_same_remaining_batches() {
    let l = loader(dataset(30, None), 2, 5, false, OnBadSample::Error);
    let full = run(&l, 2);
    let rest: Vec<_> = l.epoch_from(2, 2).map(|b| b.unwrap()).collect();
    assert_eq!(
        rest.iter().map(|b| b.position).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert_eq!(
        rest.iter().map(flat).collect::<Vec<_>>(),
        full[2..].to_vec()
    );
}

#[test]
fn a_bad_sample_stops_the_epoch_with_its_location_or_is_skipped_and_counted() {
    let l = loader(dataset(20, Some(13)), 2, 0, false, OnBadSample::Error);
    let results: Vec<_> = l.epoch(0).collect();
    let err = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .expect("an error")
        .to_string();
    assert_mentions(&err, &["memory.parquet", "row 14", "cannot decode"]);
    assert!(
        results.last().unwrap().is_err(),
        "the epoch ends at the error"
    );

    let l = loader(dataset(20, Some(13)), 2, 0, false, OnBadSample::Skip);
    let batches = run(&l, 0);
    let n: usize = batches.iter().map(|b| b.0.len()).sum();
    assert_eq!(n, 19);
    assert!(batches.iter().all(|b| !b.0.contains(&13)));
    assert_eq!(l.skipped().count(), 1);
    assert_mentions(&l.skipped().summary(), &["row 14"]);
}

#[test]
fn dropping_an_epoch_early_stops_the_background_work() {
    let l = loader(dataset(64, None), 2, 0, false, OnBadSample::Error);
    let mut it = l.epoch(0);
    assert!(it.next().unwrap().is_ok());
    drop(it); // must not hang
    assert_eq!(run(&l, 0).len(), 8);
}

/// A dataset whose items record the RNG they were given.
struct Draws;
impl Dataset for Draws {
    type Item = (usize, u64);
    fn len(&self) -> usize {
        100
    }
    fn get(&self, index: usize, rng: &mut Rng) -> Result<(usize, u64)> {
        Ok((index, rng.next_u64()))
    }
}

#[test]
fn per_sample_rng_depends_on_seed_epoch_and_index_only() {
    let mk = |threads, batch_size, shuffle| {
        let sampler = BatchSampler {
            len: 100,
            batch_size,
            shuffle,
            drop_last: false,
            seed: 3,
        };
        let cfg = LoaderConfig {
            seed: 3,
            threads,
            prefetch: 1,
            on_bad: OnBadSample::Error,
        };
        Loader::new(Draws, sampler, Ok, cfg).unwrap()
    };
    let draws = |l: &Loader<Draws, Vec<(usize, u64)>>, e| {
        let mut v: Vec<(usize, u64)> = l.epoch(e).flat_map(|b| b.unwrap().data).collect();
        v.sort();
        v
    };
    let a = draws(&mk(1, 7, true), 0);
    assert_eq!(a, draws(&mk(3, 16, false), 0)); // batching and order do not matter
    assert_ne!(a, draws(&mk(1, 7, true), 1));
    let distinct: std::collections::BTreeSet<u64> = a.iter().map(|x| x.1).collect();
    assert_eq!(distinct.len(), 100);
}
