//! Image helpers for the CLI tests: an ImageFolder of circles and squares of a chosen size, and
//! a tiny ResNet checkpoint (widths 4-8, one block per stage, 16×16 input) with or without
//! class names.

#![allow(dead_code)]

use candle_core::{DType, Device};
use candle_finetune::resnet::{ResNet, ResNetConfig};
use std::path::Path;

/// `per_class` PNGs of `size`×`size` under `root/<class>/` for each of `classes`: class 0 a
/// filled circle, every other class a filled square, at a jittered place over noise.
pub fn write_shapes(root: &Path, classes: &[&str], per_class: usize, size: u32, seed: u64) {
    let mut rng = candle_finetune::core::Rng::seed_from_u64(seed);
    for (c, name) in classes.iter().enumerate() {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for i in 0..per_class {
            let r = (size / 4).max(2);
            let cx = r + rng.below((size - 2 * r) as u64 + 1) as u32;
            let cy = r + rng.below((size - 2 * r) as u64 + 1) as u32;
            let noise: Vec<u8> = (0..size * size).map(|_| rng.below(60) as u8).collect();
            let img = image::RgbImage::from_fn(size, size, |x, y| {
                let (dx, dy) = (x.abs_diff(cx), y.abs_diff(cy));
                let on = match c {
                    0 => dx * dx + dy * dy <= r * r,
                    _ => dx <= r && dy <= r,
                };
                let v = if on {
                    230
                } else {
                    noise[(y * size + x) as usize]
                };
                image::Rgb([v, v, v])
            });
            img.save(dir.join(format!("{i:02}.png"))).unwrap();
        }
    }
}

/// A tiny randomly initialised ResNet-18-layout checkpoint (16×16 RGB input) in `dir`, with
/// `num_classes` classes, named `labels` when given (timm's `label_names`).
pub fn write_tiny_resnet(dir: &Path, num_classes: usize, labels: Option<&[&str]>) {
    let mut v = serde_json::json!({
        "architecture": "resnet18", "num_classes": num_classes,
        "model_args": {"layers": [1, 1, 1, 1], "channels": [4, 8, 8, 8]}, "stem_channels": 4,
        "pretrained_cfg": {"input_size": [3, 16, 16], "crop_pct": 1.0, "interpolation": "bilinear"}
    });
    if let Some(names) = labels {
        v["label_names"] = serde_json::json!(names);
    }
    let cfg = ResNetConfig::from_timm_json(v.as_object().unwrap()).unwrap();
    let model = ResNet::init(cfg, DType::F32, &Device::Cpu, 7).unwrap();
    model.export_as(dir, None).unwrap();
}
