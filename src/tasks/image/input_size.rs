//! The input size of an image run: `--image-size`, else a checkpoint's own, else — a network
//! trained from scratch — the training images' size, so that small images are not upscaled to
//! ImageNet's 224 pixels.

use finetune_data::image::ImageDataset;
use rayon::prelude::*;
use std::collections::BTreeMap;

/// The square size to ask the model for (`None`: its own) and the reason the run prints:
/// `--image-size` when given, else a checkpoint's configured size, else — `fresh`, a network
/// trained from scratch — the training images' size ([`from_images`]).
pub(crate) fn choose(
    given: Option<usize>,
    fresh: bool,
    train: &ImageDataset,
) -> (Option<usize>, String) {
    match (given, fresh) {
        (Some(size), _) => (Some(size), "--image-size".into()),
        (None, false) => (None, "the checkpoint's configuration".into()),
        (None, true) => match from_images(train) {
            Some((size, why)) => (Some(size), why),
            None => (
                None,
                "the architecture's default: no training image's size could be read".into(),
            ),
        },
    }
}

/// The line a run prints about its input: `input: 3×32×32 (why)`.
pub(super) fn describe(input_size: [usize; 3], why: &str) -> String {
    let [c, h, w] = input_size;
    format!("input: {c}×{h}×{w} ({why})")
}

/// The square size a network trained from scratch takes from its training images (their
/// headers only), with the reason the run prints:
/// - every image has one size: its shorter side (a non-square size is centre-cropped square);
/// - sizes differ: the most common shorter side (ties: the larger), the others resized to it.
///
/// `None` when no image's size can be read (the run then fails on the images themselves, or
/// skips them).
pub(super) fn from_images(images: &ImageDataset) -> Option<(usize, String)> {
    let sizes: Vec<(u32, u32)> = (0..images.len())
        .into_par_iter()
        .filter_map(|i| images.dimensions(i).ok())
        .collect();
    let first = *sizes.first()?;
    if sizes.iter().all(|&s| s == first) {
        let (w, h) = first;
        let why = if w == h {
            "the training images' size".to_string()
        } else {
            format!("the shorter side of the training images' {w}×{h}")
        };
        return Some((w.min(h) as usize, why));
    }
    let mut sides: BTreeMap<u32, usize> = BTreeMap::new();
    for (w, h) in &sizes {
        *sides.entry(*w.min(h)).or_default() += 1;
    }
    let (&side, &count) = sides.iter().max_by_key(|(side, count)| (**count, **side))?;
    let why = format!(
        "the most common size of the training images: {count} of {} are {side} pixels on their \
         shorter side; the others are resized",
        sizes.len()
    );
    Some((side as usize, why))
}
