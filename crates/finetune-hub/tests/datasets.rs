//! Dataset repositories on the loopback Hub: parquet splits by file name, a subset of splits,
//! the `refs/convert/parquet` revision, hostile listings, and local folders.

mod common;

use common::*;
use finetune_hub::testing::put;
use finetune_hub::{resolve_dataset, DatasetOptions, Error, Origin};

const REPO: &str = "datasets/org/reviews";

fn fixture(root: &std::path::Path) {
    put(root, REPO, "main", "README.md", b"---\nlicense: mit\n---");
    put(
        root,
        REPO,
        "main",
        "data/train-00000-of-00002.parquet",
        b"PAR1 train 0",
    );
    put(
        root,
        REPO,
        "main",
        "data/train-00001-of-00002.parquet",
        b"PAR1 train 1",
    );
    put(
        root,
        REPO,
        "main",
        "data/test-00000-of-00001.parquet",
        b"PAR1 test 0",
    );
}

#[test]
fn parquet_splits_download_once_into_the_datasets_cache() {
    let (root, server) = hub();
    fixture(&root);
    let cache = tmp("cache");
    let cfg = cfg(&cache, &server.endpoint());
    let d = resolve_dataset("org/reviews", &cfg, &DatasetOptions::default()).unwrap();
    assert!(
        matches!(d.origin, Origin::Downloaded { files: 3, .. }),
        "{:?}",
        d.origin
    );
    assert_eq!(d.splits.keys().collect::<Vec<_>>(), ["test", "train"]);
    assert_eq!(
        std::fs::read(&d.splits["train"][1]).unwrap(),
        b"PAR1 train 1"
    );
    assert_eq!(std::fs::read(&d.splits["test"][0]).unwrap(), b"PAR1 test 0");
    assert!(d
        .dir
        .starts_with(cache.join("datasets--org--reviews/snapshots")));
    assert_eq!(count(&server, "/api/datasets/org/reviews/revision/main"), 1);
    assert_eq!(count(&server, "README.md"), 0);

    server.clear_requests();
    resolve_dataset("org/reviews", &cfg, &DatasetOptions::default()).unwrap();
    assert!(server.requests().is_empty(), "{:?}", server.requests());
}

#[test]
fn only_the_requested_splits_are_fetched() {
    let (root, server) = hub();
    fixture(&root);
    let cache = tmp("cache");
    let opts = DatasetOptions {
        splits: vec!["test".into()],
        ..Default::default()
    };
    let d = resolve_dataset("org/reviews", &cfg(&cache, &server.endpoint()), &opts).unwrap();
    assert_eq!(d.splits.len(), 1);
    assert_eq!(count(&server, "train-0000"), 0);
    let e = resolve_dataset(
        "org/reviews",
        &cfg(&cache, &server.endpoint()),
        &DatasetOptions {
            splits: vec!["validation".into()],
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("no files for split `validation`") && e.contains("dataset org/reviews@main"),
        "{e}"
    );
}

#[test]
fn the_parquet_conversion_branch_is_a_revision_like_any_other() {
    let (root, server) = hub();
    fixture(&root);
    put(
        &root,
        REPO,
        "refs/convert/parquet",
        "default/train/0000.parquet",
        b"converted train",
    );
    put(
        &root,
        REPO,
        "refs/convert/parquet",
        "default/validation/0000.parquet",
        b"converted val",
    );
    let cache = tmp("cache");
    let d = resolve_dataset(
        "org/reviews@refs/convert/parquet",
        &cfg(&cache, &server.endpoint()),
        &DatasetOptions::default(),
    )
    .unwrap();
    assert_eq!(
        std::fs::read(&d.splits["validation"][0]).unwrap(),
        b"converted val"
    );
    assert!(cache
        .join("datasets--org--reviews/refs/refs/convert/parquet")
        .is_file());
    assert!(
        count(
            &server,
            "/resolve/refs%2Fconvert%2Fparquet/default/train/0000.parquet"
        ) >= 1
    );
}

#[test]
fn a_listing_entry_escaping_the_snapshot_is_refused() {
    let (root, server) = hub();
    fixture(&root);
    server.add_listing_entry(REPO, "../../escape.parquet");
    let cache = tmp("cache");
    let e = resolve_dataset(
        "org/reviews",
        &cfg(&cache, &server.endpoint()),
        &DatasetOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(e, Error::UnsafePath { .. }), "{e}");
    assert!(e.to_string().contains("`../../escape.parquet`"), "{e}");
    assert_eq!(count(&server, "escape"), 0);
    assert_eq!(
        count(&server, "/resolve/"),
        0,
        "nothing fetched after the refusal"
    );
}

#[test]
fn local_folders_and_files_need_no_hub() {
    let dir = tmp("local");
    std::fs::write(dir.join("train.csv"), "text,label\n").unwrap();
    std::fs::write(dir.join("dev.csv"), "text,label\n").unwrap();
    let cfg = cfg(&tmp("cache"), "http://127.0.0.1:9");
    let d = resolve_dataset(dir.to_str().unwrap(), &cfg, &DatasetOptions::default()).unwrap();
    assert_eq!(d.origin, Origin::Local);
    assert_eq!(d.splits["validation"], vec![dir.join("dev.csv")]);
    let f = dir.join("train.csv");
    let d = resolve_dataset(f.to_str().unwrap(), &cfg, &DatasetOptions::default()).unwrap();
    assert_eq!(d.splits["train"], vec![f]);
}
