//! CIFAR binary batches: records of a label byte (CIFAR-10) or coarse + fine label bytes
//! (CIFAR-100) followed by 3072 pixel bytes, 32x32 planes of R, G, B. Class names come from the
//! `batches.meta.txt` / `fine_label_names.txt` / `coarse_label_names.txt` beside the batches
//! when present.

use super::{ImageDataset, Source};
use crate::bad::record_error;
use crate::labels::LabelMap;
use finetune_core::{Error, Result};
use std::path::{Path, PathBuf};

/// Which CIFAR binary layout a batch file has, and which of its labels to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CifarKind {
    /// CIFAR-10: one label byte per record, 10 classes.
    Cifar10,
    /// CIFAR-100 with its 100 fine labels.
    Cifar100Fine,
    /// CIFAR-100 with its 20 coarse labels.
    Cifar100Coarse,
}

impl CifarKind {
    fn label_bytes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 1,
            _ => 2,
        }
    }
    fn classes(self) -> usize {
        match self {
            CifarKind::Cifar10 => 10,
            CifarKind::Cifar100Fine => 100,
            CifarKind::Cifar100Coarse => 20,
        }
    }
    fn names_file(self) -> &'static str {
        match self {
            CifarKind::Cifar10 => "batches.meta.txt",
            CifarKind::Cifar100Fine => "fine_label_names.txt",
            CifarKind::Cifar100Coarse => "coarse_label_names.txt",
        }
    }
}

const PIXELS: usize = 3 * 32 * 32;

/// The batch files of a split in a CIFAR folder: CIFAR-10's `data_batch_*.bin` / `test_batch.bin`,
/// CIFAR-100's `train.bin` / `test.bin`.
pub fn split_files(dir: &Path, train: bool) -> Option<(CifarKind, Vec<PathBuf>)> {
    if train {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("data_batch_") && n.ends_with(".bin"))
            })
            .collect();
        v.sort();
        if !v.is_empty() {
            return Some((CifarKind::Cifar10, v));
        }
        let t = dir.join("train.bin");
        t.is_file().then(|| (CifarKind::Cifar100Fine, vec![t]))
    } else if dir.join("test_batch.bin").is_file() {
        Some((CifarKind::Cifar10, vec![dir.join("test_batch.bin")]))
    } else {
        let t = dir.join("test.bin");
        t.is_file().then(|| (CifarKind::Cifar100Fine, vec![t]))
    }
}

fn names(dir: &Path, kind: CifarKind) -> Result<Vec<String>> {
    let f = dir.join(kind.names_file());
    if let Ok(text) = std::fs::read_to_string(&f) {
        let v: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect();
        if v.len() != kind.classes() {
            return Err(Error::config(format!(
                "{}: expected {} class names, found {}",
                f.display(),
                kind.classes(),
                v.len()
            )));
        }
        return Ok(v);
    }
    Ok((0..kind.classes()).map(|i| i.to_string()).collect())
}

/// Opens batch files of one kind; `labels` (a model config's) must have the kind's class count.
pub fn open(files: &[PathBuf], kind: CifarKind, labels: Option<&LabelMap>) -> Result<ImageDataset> {
    let rec = kind.label_bytes() + PIXELS;
    let (mut pixels, mut ids, mut parts) = (Vec::new(), Vec::new(), Vec::new());
    for f in files {
        let bytes = std::fs::read(f).map_err(|e| Error::io(f, e))?;
        if bytes.is_empty() || bytes.len() % rec != 0 {
            return Err(record_error(
                f,
                format!("record {}", bytes.len() / rec + 1),
                format!("{} bytes is not a whole number of {rec}-byte {kind:?} records (truncated, or another CIFAR kind?)", bytes.len()),
            ));
        }
        let n = bytes.len() / rec;
        pixels.reserve(n * PIXELS);
        for (i, r) in bytes.chunks_exact(rec).enumerate() {
            let label = match kind {
                CifarKind::Cifar100Coarse => r[0],
                CifarKind::Cifar10 => r[0],
                CifarKind::Cifar100Fine => r[1],
            } as usize;
            if label >= kind.classes() {
                return Err(record_error(
                    f,
                    format!("record {}", i + 1),
                    format!("label {label} is out of range for {kind:?}"),
                ));
            }
            ids.push(label);
            pixels.extend_from_slice(&r[kind.label_bytes()..]);
        }
        parts.push((f.clone(), n));
    }
    let dir = files
        .first()
        .and_then(|f| f.parent())
        .unwrap_or(Path::new("."));
    let class_names = match labels {
        Some(m) if m.len() != kind.classes() => {
            return Err(Error::config(format!(
                "{kind:?} has {} classes, the label map {}",
                kind.classes(),
                m.len()
            )))
        }
        Some(m) => m.names().to_vec(),
        None => names(dir, kind)?,
    };
    ImageDataset::new(
        Source::Raw {
            parts,
            width: 32,
            height: 32,
            channels: 3,
            planar: true,
            pixels,
        },
        ids,
        class_names,
    )
}
