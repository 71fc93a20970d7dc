//! Opening image data from a path (what `--train` / `--eval` / `--test` name), by what it is:
//!
//! | path | format |
//! |---|---|
//! | `*.parquet`, or a folder of Parquet files | Hub parquet (split chosen by file name, [`crate::snapshot`]) |
//! | `*-images-idx3-ubyte[.gz]`, or a folder holding `{split}-images-idx3-ubyte[.gz]` | IDX |
//! | `*.bin`, or a folder of CIFAR batches | CIFAR-10/100 |
//! | `*.csv[.gz]` with a path column | list of `path,label` |
//! | `*.csv[.gz]` of numbers | pixel CSV |
//! | any other folder | ImageFolder |
//!
//! Multi-label data ([`ImageOpenOptions::multi_label`]) comes only as a list CSV, its labels
//! `;`-separated; any other format is refused with an error naming the path.

use super::{cifar, folder, idx, list, parquet, pixel_csv, ImageDataset};
use crate::bad::{OnBadSample, SkipLog};
use crate::labels::LabelMap;
use crate::snapshot;
use finetune_core::{Error, Result};
use std::path::Path;

/// How to open an image dataset: the split, the label mapping, column names, and the bad-sample
/// policy. The defaults are split `train`, columns `path` / `label` / `image`, square pixel
/// CSVs, CIFAR-100 fine labels, and stop on the first bad sample.
#[derive(Debug, Clone)]
pub struct ImageOpenOptions {
    /// For folders holding several splits (IDX, CIFAR, Parquet): `train`, `validation`, `test`.
    /// IDX's test files are `t10k-*`.
    pub split: String,
    /// A fixed label mapping (the training data's, or the model config's `label2id`).
    pub labels: Option<LabelMap>,
    /// List CSV: the column of image paths.
    pub path_column: String,
    /// List CSV, Parquet: the label column.
    pub label_column: String,
    /// Parquet: the image column.
    pub image_column: String,
    /// Pixel CSV: (width, height) when not square.
    pub pixel_shape: Option<(u32, u32)>,
    /// CIFAR-100: coarse instead of fine labels.
    pub cifar100_coarse: bool,
    /// What to do with a bad row while reading (list CSV, pixel CSV, Parquet).
    pub on_bad: OnBadSample,
    /// Where rows skipped while reading are recorded.
    pub skipped: SkipLog,
    /// Each image has a set of labels (`;`-separated in a list CSV's label column).
    pub multi_label: bool,
}

impl Default for ImageOpenOptions {
    fn default() -> Self {
        Self {
            split: "train".into(),
            labels: None,
            path_column: "path".into(),
            label_column: "label".into(),
            image_column: "image".into(),
            pixel_shape: None,
            cifar100_coarse: false,
            on_bad: OnBadSample::Error,
            skipped: SkipLog::new(),
            multi_label: false,
        }
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

fn csv_has_path_column(path: &Path, column: &str) -> Result<bool> {
    let bytes = idx::read_maybe_gz(path)?;
    let first = bytes.split(|&b| b == b'\n').next().unwrap_or(&[]);
    let header = String::from_utf8_lossy(first);
    Ok(header
        .split(',')
        .any(|h| h.trim().trim_matches('"').trim_start_matches('\u{feff}') == column))
}

/// Whether `path` is a list CSV: a `.csv[.gz]` file with the path column.
pub fn is_list(path: &Path, path_column: &str) -> Result<bool> {
    let name = name_of(path);
    let csv = path.is_file() && (name.ends_with(".csv") || name.ends_with(".csv.gz"));
    Ok(csv && csv_has_path_column(path, path_column)?)
}

/// A multi-label list CSV; any other data is refused.
fn open_multi(path: &Path, o: &ImageOpenOptions) -> Result<ImageDataset> {
    if !is_list(path, &o.path_column)? {
        return Err(Error::config(format!(
            "{}: multi-label images come as a CSV list with `{}` and `{}` columns, the labels \
             `;`-separated (image folders, IDX, CIFAR, pixel CSVs and Parquet are single-label)",
            path.display(),
            o.path_column,
            o.label_column
        )));
    }
    list::open_multi(
        path,
        &o.path_column,
        &o.label_column,
        o.labels.as_ref(),
        o.on_bad,
        &o.skipped,
    )
}

/// Opens `path` (see the module doc for how the format is chosen).
pub fn open(path: &Path, o: &ImageOpenOptions) -> Result<ImageDataset> {
    if o.multi_label {
        return open_multi(path, o);
    }
    let labels = o.labels.as_ref();
    let coarse = |k: cifar::CifarKind| {
        if o.cifar100_coarse && k == cifar::CifarKind::Cifar100Fine {
            cifar::CifarKind::Cifar100Coarse
        } else {
            k
        }
    };
    if path.is_dir() {
        let train = snapshot::canonical_split(&o.split) == "train";
        let idx_prefix = if train { "train" } else { "t10k" };
        if let Some((im, lb)) =
            idx::split_paths(path, idx_prefix).or_else(|| idx::split_paths(path, &o.split))
        {
            return idx::open(&im, &lb, labels);
        }
        if let Some((kind, files)) = cifar::split_files(path, train) {
            return cifar::open(&files, coarse(kind), labels);
        }
        let has_parquet = snapshot::split_files(path, "parquet").is_ok();
        if has_parquet {
            let files = snapshot::files_of_split(path, "parquet", &o.split)?;
            return parquet::open(
                &files,
                &o.image_column,
                &o.label_column,
                labels,
                o.on_bad,
                &o.skipped,
            );
        }
        return folder::open(path, labels);
    }
    if !path.is_file() {
        return Err(Error::config(format!(
            "{}: no such file or folder",
            path.display()
        )));
    }
    let name = name_of(path);
    if name.ends_with(".parquet") {
        return parquet::open(
            &[path.to_path_buf()],
            &o.image_column,
            &o.label_column,
            labels,
            o.on_bad,
            &o.skipped,
        );
    }
    if name.contains("idx3-ubyte") {
        let lb = idx::labels_path_for(path)
            .filter(|p| p.is_file())
            .ok_or_else(|| {
                Error::config(format!(
                    "{}: no matching labels-idx1-ubyte file beside it",
                    path.display()
                ))
            })?;
        return idx::open(path, &lb, labels);
    }
    if name.ends_with(".bin") {
        let len = std::fs::metadata(path)
            .map_err(|e| Error::io(path, e))?
            .len();
        let kind = if len % 3073 == 0 {
            cifar::CifarKind::Cifar10
        } else {
            cifar::CifarKind::Cifar100Fine
        };
        return cifar::open(&[path.to_path_buf()], coarse(kind), labels);
    }
    if name.ends_with(".csv") || name.ends_with(".csv.gz") {
        return if csv_has_path_column(path, &o.path_column)? {
            list::open(
                path,
                &o.path_column,
                &o.label_column,
                labels,
                o.on_bad,
                &o.skipped,
            )
        } else {
            pixel_csv::open(path, o.pixel_shape, labels, o.on_bad, &o.skipped)
        };
    }
    Err(Error::config(format!(
        "{}: not a known image dataset (a folder, .parquet, IDX, CIFAR .bin, or .csv)",
        path.display()
    )))
}
