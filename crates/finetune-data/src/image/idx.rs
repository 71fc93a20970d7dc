//! IDX files (MNIST, Fashion-MNIST): an `idx3-ubyte` images file (magic 0x00000803, count, rows,
//! columns, then 8-bit pixels) and an `idx1-ubyte` labels file (magic 0x00000801, count, then
//! labels), gzipped or not (detected from the content, not the name).

use super::{ImageDataset, Source};
use crate::bad::record_error;
use crate::labels::LabelMap;
use finetune_core::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// The whole file, gunzipped when it starts with the gzip magic.
pub fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| record_error(path, "gzip", format!("corrupt or truncated: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

fn header(path: &Path, bytes: &[u8], dims: usize, magic: u32) -> Result<Vec<usize>> {
    let need = 4 + 4 * dims;
    if bytes.len() < need {
        return Err(record_error(
            path,
            "header",
            format!("file too short ({} bytes) for an IDX header", bytes.len()),
        ));
    }
    let word = |i: usize| u32::from_be_bytes(bytes[4 * i..4 * i + 4].try_into().expect("4 bytes"));
    if word(0) != magic {
        return Err(record_error(
            path,
            "header",
            format!("magic number {:#010x}, expected {magic:#010x}", word(0)),
        ));
    }
    Ok((1..=dims).map(|i| word(i) as usize).collect())
}

/// The labels file next to an images file: `…images-idx3-ubyte…` → `…labels-idx1-ubyte…`.
pub fn labels_path_for(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    name.contains("images-idx3")
        .then(|| images.with_file_name(name.replace("images-idx3", "labels-idx1")))
}

/// The images and labels of a split (`train`, `t10k`, …) in `dir`, gzipped or not.
pub fn split_paths(dir: &Path, prefix: &str) -> Option<(PathBuf, PathBuf)> {
    for suffix in ["", ".gz"] {
        let im = dir.join(format!("{prefix}-images-idx3-ubyte{suffix}"));
        let lb = dir.join(format!("{prefix}-labels-idx1-ubyte{suffix}"));
        if im.is_file() && lb.is_file() {
            return Some((im, lb));
        }
    }
    None
}

/// Opens an images/labels pair. Labels are class ids; class names are `"0"..` unless `labels`
/// (e.g. the model config's) gives them — then every id must be below its size.
pub fn open(images: &Path, labels_file: &Path, labels: Option<&LabelMap>) -> Result<ImageDataset> {
    let im = read_maybe_gz(images)?;
    let lb = read_maybe_gz(labels_file)?;
    let d = header(images, &im, 3, 0x0803)?;
    let (n, rows, cols) = (d[0], d[1], d[2]);
    let l = header(labels_file, &lb, 1, 0x0801)?;
    if l[0] != n {
        return Err(Error::config(format!(
            "{} holds {n} images but {} holds {} labels",
            images.display(),
            labels_file.display(),
            l[0]
        )));
    }
    if rows == 0 || cols == 0 {
        return Err(record_error(
            images,
            "header",
            format!("declares images of {rows}x{cols} pixels: an image needs at least one"),
        ));
    }
    // Header words are untrusted: sizes in checked arithmetic.
    let want = rows.checked_mul(cols).and_then(|size| n.checked_mul(size));
    if want != Some(im.len() - 16) {
        let want = want.map_or("more than a file can hold".to_string(), |b| {
            format!("{b} bytes")
        });
        return Err(record_error(
            images,
            "data",
            format!(
                "expected {n} images of {rows}x{cols} ({want}), found {} bytes (truncated?)",
                im.len() - 16
            ),
        ));
    }
    if lb.len() - 8 != n {
        return Err(record_error(
            labels_file,
            "data",
            format!("expected {n} labels, found {} (truncated?)", lb.len() - 8),
        ));
    }
    let ids: Vec<usize> = lb[8..].iter().map(|&b| b as usize).collect();
    let max = ids.iter().copied().max().unwrap_or(0);
    let names = match labels {
        Some(m) => {
            if let Some(i) = ids.iter().position(|&id| id >= m.len()) {
                return Err(record_error(
                    labels_file,
                    format!("label {}", i + 1),
                    format!(
                        "class {} is not one of the {} labels {}",
                        ids[i],
                        m.len(),
                        m.describe()
                    ),
                ));
            }
            m.names().to_vec()
        }
        None => (0..=max).map(|i| i.to_string()).collect(),
    };
    let pixels = im[16..].to_vec();
    ImageDataset::new(
        Source::Raw {
            parts: vec![(images.to_path_buf(), n)],
            width: cols as u32,
            height: rows as u32,
            channels: 1,
            planar: false,
            pixels,
        },
        ids,
        names,
    )
}
