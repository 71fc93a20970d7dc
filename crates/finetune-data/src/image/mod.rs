//! Image classification data: every format becomes an [`ImageDataset`] — a source of images
//! (files on disk, encoded bytes from Parquet, or raw pixels from IDX / CIFAR / pixel CSVs) with
//! a class id per image (or, from a [`list`] CSV, a set of labels per image: multi-label) and
//! the class names. Images are decoded lazily (on the loader's
//! threads) by [`ImageDataset::load`], whose errors name the file and row.
//!
//! Formats: [`folder`] (ImageFolder), [`list`] (CSV of `path,label`), [`idx`] (MNIST /
//! Fashion-MNIST, gzipped or not), [`cifar`] (CIFAR-10/100 binary batches), [`pixel_csv`] (one
//! image per row as pixel values, e.g. the 5k MNIST digits), [`parquet`] (Hub image datasets);
//! [`open()`] picks one from a path.

pub mod batch;
pub mod cifar;
pub mod decode;
pub mod folder;
pub mod idx;
pub mod list;
pub mod mixup;
pub mod open;
pub mod parquet;
pub mod pixel_csv;

pub use batch::{collate, ImageBatch, ImageClassification};
pub use open::{open, ImageOpenOptions};

use crate::bad::record_error;
use crate::target::Target;
use finetune_core::{Error, Result};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An 8-bit image, rows of interleaved channels (HWC), 1 (gray) or 3 (RGB) channels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Values per pixel: 1 (gray) or 3 (RGB).
    pub channels: u8,
    /// `height * width * channels` bytes, row by row, each pixel's channels together (PIL's
    /// `tobytes()` layout).
    pub data: Vec<u8>,
}

impl Image {
    /// An image of `data` in HWC order.
    ///
    /// # Panics
    ///
    /// When `data.len()` is not `width * height * channels`.
    pub fn new(width: u32, height: u32, channels: u8, data: Vec<u8>) -> Self {
        assert_eq!(
            data.len(),
            width as usize * height as usize * channels as usize,
            "pixel buffer does not match {width}x{height}x{channels}"
        );
        Self {
            width,
            height,
            channels,
            data,
        }
    }

    /// The `channels` values of pixel (x, y).
    pub fn pixel(&self, x: u32, y: u32) -> &[u8] {
        let c = self.channels as usize;
        let i = (y as usize * self.width as usize + x as usize) * c;
        &self.data[i..i + c]
    }
}

/// The channels the model wants: decoded images are converted (gray → RGB repeats the channel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// Three channels, R, G, B (PIL's `convert("RGB")`); the default.
    #[default]
    Rgb,
    /// One luma channel (PIL's `convert("L")`), e.g. for MNIST models.
    Gray,
}

impl ColorMode {
    /// The channel count of an image in this mode: 3 or 1.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Rgb => 3,
            ColorMode::Gray => 1,
        }
    }
}

/// Where the images of a dataset live.
#[derive(Debug)]
pub(crate) enum Source {
    /// Image files; `listed` = the CSV that listed them and each one's data row there.
    Files {
        paths: Vec<PathBuf>,
        listed: Option<(PathBuf, Vec<usize>)>,
    },
    /// Encoded images held in memory, each with its file and row (Parquet).
    Encoded {
        files: Vec<PathBuf>,
        at: Vec<(u32, usize)>,
        blobs: Vec<Vec<u8>>,
    },
    /// Raw 8-bit pixels, `planar` (CHW per image, CIFAR) or interleaved (HWC); `parts` are the
    /// files they came from with their image counts, for messages.
    Raw {
        parts: Vec<(PathBuf, usize)>,
        width: u32,
        height: u32,
        channels: u8,
        planar: bool,
        pixels: Vec<u8>,
    },
}

impl Source {
    fn len(&self) -> usize {
        match self {
            Source::Files { paths, .. } => paths.len(),
            Source::Encoded { blobs, .. } => blobs.len(),
            Source::Raw { parts, .. } => parts.iter().map(|p| p.1).sum(),
        }
    }
}

/// An encoded image's `(width, height)` from its header.
fn header_size<R: std::io::BufRead + std::io::Seek>(
    reader: R,
) -> std::result::Result<(u32, u32), String> {
    image::ImageReader::new(reader)
        .with_guessed_format()
        .map_err(|e| e.to_string())
        .and_then(|r| r.into_dimensions().map_err(|e| e.to_string()))
        .map_err(|e| format!("cannot read the image size: {e}"))
}

/// Images with a class id each (or a set of label ids each: multi-label), and the class names
/// (id order).
#[derive(Debug, Clone)]
pub struct ImageDataset {
    source: Arc<Source>,
    /// Indices into the source (a split is a view).
    rows: Vec<usize>,
    labels: Vec<usize>,
    /// Multi-label data: each image's label ids (sorted, distinct; possibly none).
    label_sets: Option<Vec<Vec<usize>>>,
    class_names: Vec<String>,
}

impl ImageDataset {
    pub(crate) fn new(
        source: Source,
        labels: Vec<usize>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let n = source.len();
        if labels.len() != n {
            return Err(Error::config(format!(
                "internal: {n} images but {} labels",
                labels.len()
            )));
        }
        if let Some(&bad) = labels.iter().find(|&&l| l >= class_names.len()) {
            return Err(Error::config(format!(
                "internal: label {bad} out of {} classes",
                class_names.len()
            )));
        }
        Ok(Self {
            source: Arc::new(source),
            rows: (0..n).collect(),
            labels,
            label_sets: None,
            class_names,
        })
    }

    /// A multi-label dataset: each image with its label ids.
    pub(crate) fn new_multi(
        source: Source,
        sets: Vec<Vec<usize>>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        if let Some(&bad) = sets.iter().flatten().find(|&&l| l >= class_names.len()) {
            return Err(Error::config(format!(
                "internal: label {bad} out of {} labels",
                class_names.len()
            )));
        }
        let mut ds = Self::new(source, vec![0; sets.len()], class_names)?;
        ds.label_sets = Some(sets);
        Ok(ds)
    }

    /// Images already encoded in memory (e.g. a benchmark's JPEGs); `origin` names them in errors.
    pub fn from_encoded(
        origin: &Path,
        blobs: Vec<Vec<u8>>,
        labels: Vec<usize>,
        class_names: Vec<String>,
    ) -> Result<Self> {
        let at = (0..blobs.len()).map(|i| (0, i)).collect();
        Self::new(
            Source::Encoded {
                files: vec![origin.to_path_buf()],
                at,
                blobs,
            },
            labels,
            class_names,
        )
    }

    /// The number of images (of this view, after [`ImageDataset::select`]).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether the dataset (or the selected view) holds no image.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The class id of each image, in dataset order (a multi-label dataset's are all 0: see
    /// [`Self::target`]).
    pub fn labels(&self) -> &[usize] {
        &self.labels
    }

    /// Whether each image has a set of labels ([`Target::Labels`]) rather than one class.
    pub fn is_multi_label(&self) -> bool {
        self.label_sets.is_some()
    }

    /// What image `index` is trained to predict: its class, or its labels (multi-label).
    pub fn target(&self, index: usize) -> Target {
        match &self.label_sets {
            Some(sets) => Target::Labels(sets[index].clone()),
            None => Target::Class(self.labels[index]),
        }
    }

    /// [`Self::target`] of every image, in dataset order.
    pub fn targets(&self) -> Vec<Target> {
        (0..self.len()).map(|i| self.target(i)).collect()
    }

    /// The class names in id order (`id2label`): from the label map, the class folders, the
    /// `ClassLabel` metadata, or `"0".."n-1"` for formats with bare integer labels.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The number of classes (the model's output size), which may exceed the classes present.
    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The images at `indices`, in that order (a validation split).
    pub fn select(&self, indices: &[usize]) -> ImageDataset {
        ImageDataset {
            source: self.source.clone(),
            rows: indices.iter().map(|&i| self.rows[i]).collect(),
            labels: indices.iter().map(|&i| self.labels[i]).collect(),
            label_sets: self
                .label_sets
                .as_ref()
                .map(|s| indices.iter().map(|&i| s[i].clone()).collect()),
            class_names: self.class_names.clone(),
        }
    }

    /// The same images with the classes of `labels` (e.g. a checkpoint's order): each image
    /// keeps its class, matched by name; only the ids change. An error names a class that
    /// `labels` lacks.
    pub fn relabel(&self, labels: &crate::LabelMap) -> Result<ImageDataset> {
        let ids = self
            .class_names
            .iter()
            .map(|n| {
                labels.id(n).ok_or_else(|| {
                    Error::config(format!(
                        "class `{n}` is not one of the labels {}",
                        labels.describe()
                    ))
                })
            })
            .collect::<Result<Vec<usize>>>()?;
        let label_sets = self.label_sets.as_ref().map(|sets| {
            sets.iter()
                .map(|set| {
                    let mut s: Vec<usize> = set.iter().map(|&l| ids[l]).collect();
                    s.sort_unstable();
                    s
                })
                .collect()
        });
        Ok(ImageDataset {
            source: self.source.clone(),
            rows: self.rows.clone(),
            labels: match label_sets {
                Some(_) => self.labels.clone(),
                None => self.labels.iter().map(|&l| ids[l]).collect(),
            },
            label_sets,
            class_names: labels.names().to_vec(),
        })
    }

    /// Where image `index` comes from: `(file, location within it)`.
    pub fn location(&self, index: usize) -> (PathBuf, String) {
        let i = self.rows[index];
        match &*self.source {
            Source::Files {
                paths,
                listed: None,
            } => (paths[i].clone(), "image".into()),
            Source::Files {
                paths,
                listed: Some((list, rows)),
            } => (
                paths[i].clone(),
                format!("listed at row {} of {}", rows[i], list.display()),
            ),
            Source::Encoded { files, at, .. } => {
                let (f, row) = at[i];
                (files[f as usize].clone(), format!("row {}", row + 1))
            }
            Source::Raw { parts, .. } => {
                let mut k = i;
                for (p, n) in parts {
                    if k < *n {
                        return (p.clone(), format!("image {}", k + 1));
                    }
                    k -= n;
                }
                unreachable!("index within the source")
            }
        }
    }

    /// The `(width, height)` of image `index`, read from the file's header only (raw pixel
    /// formats: their fixed size); an error names the image like [`Self::load`]'s.
    pub fn dimensions(&self, index: usize) -> Result<(u32, u32)> {
        let i = self.rows[index];
        let fail = |msg: String| {
            let (path, loc) = self.location(index);
            record_error(&path, loc, msg)
        };
        match &*self.source {
            Source::Files { paths, .. } => {
                let file = std::fs::File::open(&paths[i])
                    .map_err(|e| fail(format!("cannot read: {e}")))?;
                header_size(std::io::BufReader::new(file)).map_err(fail)
            }
            Source::Encoded { blobs, .. } => {
                header_size(std::io::Cursor::new(&blobs[i][..])).map_err(fail)
            }
            Source::Raw { width, height, .. } => Ok((*width, *height)),
        }
    }

    /// Image `index`, decoded and converted to `mode`.
    pub fn load(&self, index: usize, mode: ColorMode) -> Result<Image> {
        let i = self.rows[index];
        let fail = |msg: String| {
            let (path, loc) = self.location(index);
            record_error(&path, loc, msg)
        };
        match &*self.source {
            Source::Files { paths, .. } => {
                let bytes =
                    std::fs::read(&paths[i]).map_err(|e| fail(format!("cannot read: {e}")))?;
                decode::decode(&bytes, mode).map_err(fail)
            }
            Source::Encoded { blobs, .. } => decode::decode(&blobs[i], mode).map_err(fail),
            Source::Raw {
                width,
                height,
                channels,
                planar,
                pixels,
                ..
            } => {
                let (w, h, c) = (*width as usize, *height as usize, *channels as usize);
                let size = w * h * c;
                let px = &pixels[i * size..(i + 1) * size];
                let data = if *planar && c > 1 {
                    let plane = w * h;
                    (0..plane)
                        .flat_map(|p| (0..c).map(move |ch| px[ch * plane + p]))
                        .collect()
                } else {
                    px.to_vec()
                };
                Ok(decode::convert(
                    Image::new(*width, *height, *channels, data),
                    mode,
                ))
            }
        }
    }
}
