//! The real data fetched by `scripts/fetch-assets.sh`, read with their known sizes. These tests
//! fail (never skip) when the assets are missing.

use finetune_core::Rng;
use finetune_data::image::{open, ColorMode, ImageOpenOptions};
use finetune_data::text::{read_table, TextColumns, TextReadOptions};
use finetune_data::transforms::{Compose, Interpolation, Normalize, Resize, ResizeTo, ToTensor};
use finetune_data::OnBadSample;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn asset(rel: &str) -> PathBuf {
    let root = std::env::var_os("CANDLE_FINETUNE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../assets"));
    let p = root.join(rel);
    assert!(
        p.exists(),
        "{} is missing: run `scripts/fetch-assets.sh` first (it fetches the test assets)",
        p.display()
    );
    p
}

fn counts(labels: &[usize], n: usize) -> Vec<usize> {
    let mut c = vec![0; n];
    labels.iter().for_each(|&l| c[l] += 1);
    c
}

#[test]
fn rotten_tomatoes_splits_hold_the_12808_labelled_snippets_split_by_film() {
    let o = TextReadOptions {
        columns: TextColumns {
            group: Some("movie_name".into()),
            ..TextColumns::default()
        },
        ..TextReadOptions::default()
    };
    let tables: Vec<_> = ["train", "validation", "test"]
        .iter()
        .map(|s| read_table(&asset(&format!("rotten_tomatoes/{s}.csv")), &o).unwrap())
        .collect();
    let sizes: Vec<usize> = tables.iter().map(|t| t.len()).collect();
    assert_eq!(sizes, vec![9806, 1496, 1506]);
    assert_eq!(sizes.iter().sum::<usize>(), 12_808);
    let labels = tables[0].fit_labels().unwrap();
    assert_eq!(labels.names(), ["fresh", "rotten"]);
    let mut fresh = 0;
    for t in &tables {
        let ds = t.encode(&labels).unwrap();
        fresh += ds
            .records
            .iter()
            .filter(|r| r.target.class() == Some(0))
            .count();
    }
    assert_eq!(fresh, 7403);
    let films: Vec<BTreeSet<String>> = tables
        .iter()
        .map(|t| t.rows.iter().map(|r| r.group.clone().unwrap()).collect())
        .collect();
    assert!(
        films[0].is_disjoint(&films[1])
            && films[0].is_disjoint(&films[2])
            && films[1].is_disjoint(&films[2])
    );
}

#[test]
fn the_full_review_corpus_skips_and_counts_its_empty_plot_rows() {
    let o = TextReadOptions {
        columns: TextColumns {
            label: "category".into(),
            ..TextColumns::default()
        },
        on_bad: OnBadSample::Skip,
        ..TextReadOptions::default()
    };
    let t = read_table(
        &asset("rotten_tomatoes/rotten_tomatoes_corpus_full.csv"),
        &o,
    )
    .unwrap();
    // 7,403 fresh + 5,405 rotten + 1,097 plot rows, 14 of the plot rows with empty text.
    assert_eq!(t.len() + t.skipped.count(), 13_905);
    assert_eq!(t.skipped.count(), 14);
    assert_eq!(t.fit_labels().unwrap().names(), ["fresh", "plot", "rotten"]);
}

#[test]
fn fashion_mnist_has_60000_and_10000_images_of_ten_balanced_classes() {
    let dir = asset("fashion-mnist");
    let train = open(&dir, &ImageOpenOptions::default()).unwrap();
    let test = open(
        &dir,
        &ImageOpenOptions {
            split: "test".into(),
            ..ImageOpenOptions::default()
        },
    )
    .unwrap();
    assert_eq!((train.len(), test.len()), (60_000, 10_000));
    assert_eq!(counts(train.labels(), 10), vec![6000; 10]);
    assert_eq!(counts(test.labels(), 10), vec![1000; 10]);
    let img = train.load(0, ColorMode::Gray).unwrap();
    assert_eq!((img.width, img.height, img.channels), (28, 28, 1));
    // Through a pipeline as a 3-channel 32x32 tensor.
    let t = Compose::new()
        .then(Resize::new(
            ResizeTo::Exact {
                height: 32,
                width: 32,
            },
            Interpolation::Bilinear,
        ))
        .then(ToTensor)
        .then(Normalize::new(vec![0.5; 3], vec![0.5; 3]).unwrap())
        .run(
            train.load(0, ColorMode::Rgb).unwrap(),
            &mut Rng::seed_from_u64(0),
        )
        .unwrap();
    assert_eq!((t.channels, t.height, t.width), (3, 32, 32));
}

#[test]
fn mnist_5k_has_500_digits_per_class() {
    let ds = open(
        &asset("mnist5k/mnist_5k.csv.gz"),
        &ImageOpenOptions::default(),
    )
    .unwrap();
    assert_eq!(ds.len(), 5000);
    assert_eq!(ds.class_names().len(), 10);
    assert_eq!(counts(ds.labels(), 10), vec![500; 10]);
    let img = ds.load(0, ColorMode::Gray).unwrap();
    assert_eq!((img.width, img.height), (28, 28));
    assert!(img.data.iter().any(|&v| v > 200), "a digit has ink");
}

#[test]
fn conll2003_has_its_published_sentence_token_and_entity_counts() {
    use finetune_data::tokens::{read_tagged, TokenColumns};
    let mut sizes = Vec::new();
    for s in ["train", "validation", "test"] {
        let p = asset(&format!("conll2003/{s}.conll"));
        let t = read_tagged(&[p], &TokenColumns::default(), OnBadSample::Error).unwrap();
        let tokens: usize = t.sentences.iter().map(|s| s.words.len()).sum();
        let entities = t
            .sentences
            .iter()
            .flat_map(|s| &s.tags)
            .filter(|t| t.starts_with("B-"))
            .count();
        let tags: BTreeSet<&str> = t
            .sentences
            .iter()
            .flat_map(|s| s.tags.iter().map(String::as_str))
            .collect();
        assert_eq!(tags.len(), 9, "{s}: {tags:?}");
        sizes.push((t.sentences.len(), tokens, entities));
    }
    // The shared task's table (Tjong Kim Sang & De Meulder 2003), IOB2 here.
    assert_eq!(
        sizes,
        vec![
            (14041, 203621, 23499),
            (3250, 51362, 5942),
            (3453, 46435, 5648)
        ]
    );
}
