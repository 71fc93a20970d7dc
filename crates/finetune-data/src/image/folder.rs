//! ImageFolder (torchvision's layout): `root/<class>/**/<image>`; classes are the sub-folders in
//! sorted order (or a given label map's order), images sorted by path. Files without an image
//! extension are ignored, as torchvision does; a class folder with no image is an error.

use super::{ImageDataset, Source};
use crate::labels::LabelMap;
use finetune_core::{Error, Result};
use std::path::{Path, PathBuf};

/// Extensions taken as images (lower-case comparison).
pub const IMAGE_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff", "pgm", "ppm",
];

/// Whether `path` has one of [`IMAGE_EXTENSIONS`] (case-insensitive); the content is not checked.
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let p = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else if is_image(&p) {
            out.push(p);
        }
    }
    Ok(())
}

/// The class sub-folders of `root`, sorted.
pub fn class_dirs(root: &Path) -> Result<Vec<String>> {
    let mut classes = Vec::new();
    for entry in std::fs::read_dir(root).map_err(|e| Error::io(root, e))? {
        let entry = entry.map_err(|e| Error::io(root, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !name.starts_with('.') {
            classes.push(name);
        }
    }
    classes.sort();
    Ok(classes)
}

/// Opens `root`; with `labels`, folder names must be among its names (ids from it).
pub fn open(root: &Path, labels: Option<&LabelMap>) -> Result<ImageDataset> {
    let classes = class_dirs(root)?;
    if classes.is_empty() {
        return Err(Error::config(format!(
            "{}: no class sub-folders (ImageFolder layout: root/<class>/<image>)",
            root.display()
        )));
    }
    let map = match labels {
        Some(m) => m.clone(),
        None => LabelMap::from_names(classes.clone())?,
    };
    let (mut paths, mut ids) = (Vec::new(), Vec::new());
    for class in &classes {
        let id = map.id(class).ok_or_else(|| {
            Error::config(format!(
                "{}: class folder `{class}` is not one of the labels {}",
                root.display(),
                map.describe()
            ))
        })?;
        let mut files = Vec::new();
        walk(&root.join(class), &mut files)?;
        if files.is_empty() {
            return Err(Error::config(format!(
                "{}: class folder `{class}` holds no image ({})",
                root.display(),
                IMAGE_EXTENSIONS.join(", ")
            )));
        }
        files.sort();
        ids.extend(std::iter::repeat_n(id, files.len()));
        paths.extend(files);
    }
    ImageDataset::new(
        Source::Files {
            paths,
            listed: None,
        },
        ids,
        map.names().to_vec(),
    )
}
