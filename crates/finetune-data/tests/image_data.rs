//! Image readers on small files written here: ImageFolder (PNG, JPEG, WebP, gray), path lists,
//! IDX (plain and gzipped), CIFAR-10/100, pixel CSVs, Hub-style Parquet; corrupt and truncated
//! inputs give errors naming the file and row.

mod common;

use common::{assert_mentions, encoded, write, write_image_parquet};
use finetune_data::image::cifar::{self, CifarKind};
use finetune_data::image::{open, ColorMode, ImageOpenOptions};
use finetune_data::{LabelMap, OnBadSample};
use image::ImageFormat;
use std::io::Write;
use std::path::Path;

fn opts() -> ImageOpenOptions {
    ImageOpenOptions::default()
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

fn idx_images(n: u32, rows: u32, cols: u32) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v.extend((0..n * rows * cols).map(|i| (i % 251) as u8));
    v
}

fn idx_labels(labels: &[u8]) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
    v.extend_from_slice(labels);
    v
}

#[test]
fn image_folder_with_png_jpeg_webp_and_gray() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(&r.join("cat/a.png"), encoded(6, 4, ImageFormat::Png));
    write(
        &r.join("cat/nested/b.jpg"),
        encoded(6, 4, ImageFormat::Jpeg),
    );
    write(&r.join("dog/c.webp"), encoded(5, 3, ImageFormat::WebP));
    let g = image::GrayImage::from_fn(3, 2, |x, y| image::Luma([(x * 10 + y) as u8]));
    g.save(r.join("dog/d.png")).unwrap();
    write(&r.join("dog/notes.txt"), "not an image");
    let ds = open(r, &opts()).unwrap();
    assert_eq!(ds.class_names(), ["cat", "dog"]);
    assert_eq!(ds.labels(), [0, 0, 1, 1]);
    let png = ds.load(0, ColorMode::Rgb).unwrap();
    assert_eq!((png.width, png.height, png.channels), (6, 4, 3));
    assert_eq!(png.pixel(2, 3), &[14, 15, 15]); // (x*7, y*5, (x+y)*3) losslessly
    let webp = ds.load(2, ColorMode::Rgb).unwrap();
    assert_eq!(webp.pixel(4, 2), &[28, 10, 18]);
    // Gray → RGB repeats the channel; RGB → gray uses the 601 luma.
    let gray = ds.load(3, ColorMode::Rgb).unwrap();
    assert_eq!(gray.pixel(2, 1), &[21, 21, 21]);
    assert_eq!(ds.load(3, ColorMode::Gray).unwrap().channels, 1);
    let jpg = ds.load(1, ColorMode::Rgb).unwrap();
    assert_eq!((jpg.width, jpg.height), (6, 4));
    // Relabelled in another order, each image keeps its class.
    let flipped = ds
        .relabel(&LabelMap::from_names(vec!["dog".into(), "cat".into()]).unwrap())
        .unwrap();
    assert_eq!(flipped.class_names(), ["dog", "cat"]);
    assert_eq!(flipped.labels(), [1, 1, 0, 0]);
    let err = ds
        .relabel(&LabelMap::from_names(vec!["dog".into()]).unwrap())
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["`cat`"]);
    // Sizes come from the headers, whatever the format.
    let sizes: Vec<(u32, u32)> = (0..4).map(|i| ds.dimensions(i).unwrap()).collect();
    assert_eq!(sizes, [(6, 4), (6, 4), (5, 3), (3, 2)]);
    // A label map that lacks a folder is an error.
    let o = ImageOpenOptions {
        labels: Some(LabelMap::from_names(vec!["cat".into()]).unwrap()),
        ..opts()
    };
    let err = open(r, &o).unwrap_err().to_string();
    assert_mentions(&err, &["`dog`"]);
}

#[test]
fn truncated_and_corrupt_images_are_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    let png = encoded(40, 30, ImageFormat::Png);
    write(&r.join("a/ok.png"), &png);
    write(&r.join("a/truncated.png"), &png[..png.len() / 2]);
    write(&r.join("b/garbage.jpg"), b"this is not a jpeg at all");
    let ds = open(r, &opts()).unwrap();
    assert!(ds.load(0, ColorMode::Rgb).is_ok());
    let err = ds.load(1, ColorMode::Rgb).unwrap_err().to_string();
    assert_mentions(&err, &["truncated.png", "cannot decode"]);
    let err = ds.load(2, ColorMode::Rgb).unwrap_err().to_string();
    assert_mentions(&err, &["garbage.jpg", "cannot decode"]);
    assert_eq!(ds.dimensions(0).unwrap(), (40, 30));
    let err = ds.dimensions(2).unwrap_err().to_string();
    assert_mentions(&err, &["garbage.jpg", "image size"]);
}

#[test]
fn path_list_csv_relative_paths_labels_and_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(&r.join("img/x.png"), encoded(4, 4, ImageFormat::Png));
    write(&r.join("img/y.png"), encoded(4, 4, ImageFormat::Png));
    write(
        &r.join("list.csv"),
        "path,label\nimg/x.png,zebra\nimg/y.png,ant\nimg/z.png,\n",
    );
    let err = open(&r.join("list.csv"), &opts()).unwrap_err().to_string();
    assert_mentions(&err, &["list.csv", "row 3", "missing label"]);
    let skipped = finetune_data::SkipLog::new();
    let o = ImageOpenOptions {
        on_bad: OnBadSample::Skip,
        skipped: skipped.clone(),
        ..opts()
    };
    let ds = open(&r.join("list.csv"), &o).unwrap();
    assert_eq!(ds.len(), 2);
    assert_eq!(skipped.count(), 1);
    assert_eq!(ds.class_names(), ["ant", "zebra"]);
    assert_eq!(ds.labels(), [1, 0]);
    assert_eq!(ds.load(1, ColorMode::Rgb).unwrap().width, 4);
    // A listed file that is missing: the error names it and the list row.
    write(&r.join("list2.csv"), "path,label\nimg/missing.png,ant\n");
    let ds = open(&r.join("list2.csv"), &opts()).unwrap();
    let err = ds.load(0, ColorMode::Rgb).unwrap_err().to_string();
    assert_mentions(&err, &["missing.png", "row 1 of", "list2.csv"]);
}

#[test]
fn idx_plain_and_gzipped_and_broken() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(&r.join("train-images-idx3-ubyte"), idx_images(3, 2, 2));
    write(&r.join("train-labels-idx1-ubyte"), idx_labels(&[4, 0, 9]));
    write(
        &r.join("t10k-images-idx3-ubyte.gz"),
        gz(&idx_images(2, 2, 2)),
    );
    write(
        &r.join("t10k-labels-idx1-ubyte.gz"),
        gz(&idx_labels(&[1, 2])),
    );
    let tr = open(r, &opts()).unwrap();
    assert_eq!(tr.len(), 3);
    assert_eq!(tr.labels(), [4, 0, 9]);
    assert_eq!(tr.num_classes(), 10);
    let img = tr.load(1, ColorMode::Gray).unwrap();
    assert_eq!(img.data, vec![4, 5, 6, 7]);
    assert_eq!(tr.load(1, ColorMode::Rgb).unwrap().pixel(1, 0), &[5, 5, 5]);
    let te = open(
        r,
        &ImageOpenOptions {
            split: "test".into(),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(te.labels(), [1, 2]);
    // Opening the images file directly finds its labels.
    assert_eq!(
        open(&r.join("t10k-images-idx3-ubyte.gz"), &opts())
            .unwrap()
            .len(),
        2
    );

    let bad = tempfile::tempdir().unwrap();
    let mut short = idx_images(3, 2, 2);
    short.truncate(short.len() - 1);
    write(&bad.path().join("train-images-idx3-ubyte"), &short);
    write(
        &bad.path().join("train-labels-idx1-ubyte"),
        idx_labels(&[1, 2, 3]),
    );
    let err = open(bad.path(), &opts()).unwrap_err().to_string();
    assert_mentions(
        &err,
        &[
            "train-images-idx3-ubyte",
            "expected 3 images of 2x2 (12 bytes), found 11 bytes",
        ],
    );
    let mut wrong = idx_images(3, 2, 2);
    wrong[3] = 1;
    write(&bad.path().join("train-images-idx3-ubyte"), &wrong);
    let err = open(bad.path(), &opts()).unwrap_err().to_string();
    assert_mentions(
        &err,
        &[
            "train-images-idx3-ubyte",
            "magic number 0x00000801, expected 0x00000803",
        ],
    );
    let g = gz(&idx_images(3, 2, 2));
    write(
        &bad.path().join("train-images-idx3-ubyte"),
        &g[..g.len() - 10],
    );
    let err = open(bad.path(), &opts()).unwrap_err().to_string();
    assert_mentions(&err, &["gzip", "truncated"]);
}

fn cifar_record(label: &[u8], base: u8) -> Vec<u8> {
    let mut v = label.to_vec();
    for ch in 0..3u8 {
        v.extend((0..1024).map(|p| base.wrapping_add(ch * 50).wrapping_add((p % 7) as u8)));
    }
    v
}

#[test]
fn cifar_10_and_100_binary_batches() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(
        &r.join("data_batch_1.bin"),
        [cifar_record(&[3], 0), cifar_record(&[7], 10)].concat(),
    );
    write(&r.join("data_batch_2.bin"), cifar_record(&[1], 20));
    write(&r.join("test_batch.bin"), cifar_record(&[9], 30));
    let names: String = [
        "airplane",
        "automobile",
        "bird",
        "cat",
        "deer",
        "dog",
        "frog",
        "horse",
        "ship",
        "truck",
    ]
    .join("\n");
    write(&r.join("batches.meta.txt"), names + "\n\n");
    let tr = open(r, &opts()).unwrap();
    assert_eq!(tr.labels(), [3, 7, 1]);
    assert_eq!(tr.class_names()[3], "cat");
    // Planes → interleaved: pixel 1 of image 2 is (10+1, 60+1, 110+1).
    assert_eq!(
        tr.load(1, ColorMode::Rgb).unwrap().pixel(1, 0),
        &[11, 61, 111]
    );
    let (path, loc) = tr.location(2);
    assert!(
        path.ends_with("data_batch_2.bin") && loc == "image 1",
        "{path:?} {loc}"
    );
    let te = open(
        r,
        &ImageOpenOptions {
            split: "test".into(),
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(te.labels(), [9]);

    let d100 = tempfile::tempdir().unwrap();
    let f = d100.path().join("train.bin");
    write(
        &f,
        [cifar_record(&[4, 88], 0), cifar_record(&[19, 3], 0)].concat(),
    );
    assert_eq!(
        cifar::open(std::slice::from_ref(&f), CifarKind::Cifar100Fine, None)
            .unwrap()
            .labels(),
        [88, 3]
    );
    assert_eq!(
        cifar::open(std::slice::from_ref(&f), CifarKind::Cifar100Coarse, None)
            .unwrap()
            .labels(),
        [4, 19]
    );
    // A truncated batch names the record that is cut.
    let trunc = d100.path().join("cut.bin");
    let mut bytes = [cifar_record(&[1], 0), cifar_record(&[2], 0)].concat();
    bytes.truncate(3073 + 100);
    write(&trunc, bytes);
    let err = cifar::open(&[trunc], CifarKind::Cifar10, None)
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["cut.bin", "record 2"]);
}

#[test]
fn pixel_csv_with_and_without_header() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("digits.csv.gz");
    write(&p, gz(b"0,10,20,30,7\n255,0,0,1,3\n"));
    let ds = open(&p, &opts()).unwrap();
    assert_eq!(ds.labels(), [7, 3]);
    assert_eq!(
        ds.load(0, ColorMode::Gray).unwrap().data,
        vec![0, 10, 20, 30]
    );
    let h = dir.path().join("kaggle.csv");
    write(&h, "label,p0,p1,p2,p3\n5,1,2,3,4\n6,1,2,300,4\n");
    let err = open(&h, &opts()).unwrap_err().to_string();
    assert_mentions(&err, &["kaggle.csv", "row 2 (line 3)", "`300`"]);
    write(&h, "label,p0,p1,p2,p3\n5,1,2,3,4\n");
    let ds = open(&h, &opts()).unwrap();
    assert_eq!(
        (ds.labels(), ds.load(0, ColorMode::Gray).unwrap().data),
        ([5usize].as_slice(), vec![1, 2, 3, 4])
    );
}

#[test]
fn hub_style_parquet_images_with_a_corrupt_row() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let png = encoded(8, 6, ImageFormat::Png);
    let jpg = encoded(8, 6, ImageFormat::Jpeg);
    write_image_parquet(
        &data.join("train-00000-of-00001.parquet"),
        &[
            Some(png.clone()),
            Some(jpg),
            Some(b"\x89PNG broken".to_vec()),
        ],
        &[0, 1, 1],
    );
    write_image_parquet(
        &data.join("test-00000-of-00001.parquet"),
        &[Some(png), None],
        &[1, 0],
    );
    let tr = open(dir.path(), &opts()).unwrap();
    assert_eq!(tr.len(), 3);
    assert_eq!(tr.labels(), [0, 1, 1]);
    assert_eq!(
        tr.load(0, ColorMode::Rgb).unwrap().pixel(7, 5),
        &[49, 25, 36]
    );
    let err = tr.load(2, ColorMode::Rgb).unwrap_err().to_string();
    assert_mentions(&err, &["train-00000-of-00001.parquet", "row 3"]);
    // A null image in the test split: error naming the row, or skipped and counted.
    let o = ImageOpenOptions {
        split: "test".into(),
        ..opts()
    };
    let err = open(dir.path(), &o).unwrap_err().to_string();
    assert_mentions(&err, &["test-00000-of-00001.parquet", "row 2"]);
    let o = ImageOpenOptions {
        on_bad: OnBadSample::Skip,
        ..o
    };
    let te = open(dir.path(), &o).unwrap();
    assert_eq!((te.len(), o.skipped.count()), (1, 1));
}

#[test]
fn unknown_paths_are_clear_errors() {
    let err = open(Path::new("/nonexistent/data"), &opts())
        .unwrap_err()
        .to_string();
    assert_mentions(&err, &["no such file or folder"]);
}
