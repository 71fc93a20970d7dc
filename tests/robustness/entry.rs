//! Fuzzing entry points: arbitrary bytes through the project's own parsers and loaders, exactly
//! as a user's file would go. Shared by the `cargo fuzz` targets (`fuzz/fuzz_targets/*.rs`
//! include this file) and the regression tests (`fuzz_regressions.rs`), so a crasher found by
//! the fuzzer replays through the same code under `cargo test`.
//!
//! Each entry returns `Ok` or `Err(message)` for the input; it must never panic, and an `Err`
//! must name the file it read (checked by the regression tests).

#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// A fuzz entry point: the outcome of reading `bytes` as its kind of file.
pub type Entry = fn(&[u8]) -> Result<(), String>;

/// The fuzz targets, by name (the folder names under `tests/robustness/corpus/`).
pub const TARGETS: &[(&str, Entry)] = &[
    ("bert_config", bert_config),
    ("train_config", train_config),
    ("safetensors_file", safetensors_file),
    ("shard_index", shard_index),
    ("csv", csv),
    ("jsonl", jsonl),
    ("idx", idx),
    ("cifar", cifar),
    ("image", image),
];

/// A scratch folder for this process and thread, created on first use.
fn scratch() -> PathBuf {
    let id = format!("{:?}", std::thread::current().id())
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let d = std::env::temp_dir().join(format!("ft-fuzz-{}-{id}", std::process::id()));
    std::fs::create_dir_all(&d).expect("scratch folder");
    d
}

/// Writes `bytes` to `name` in the scratch folder.
fn file(name: &str, bytes: &[u8]) -> PathBuf {
    let p = scratch().join(name);
    std::fs::write(&p, bytes).expect("scratch file");
    p
}

fn named<E: std::fmt::Display>(path: &Path) -> impl Fn(E) -> String + '_ {
    move |e| {
        let m = e.to_string();
        if m.contains(&*path.to_string_lossy()) {
            m
        } else {
            format!("(unnamed) {m}")
        }
    }
}

/// `config.json` of a BERT checkpoint.
pub fn bert_config(bytes: &[u8]) -> Result<(), String> {
    let p = file("config.json", bytes);
    let c = finetune_bert::BertConfig::from_file(&p).map_err(named(&p))?;
    // What loading derives from a valid config must hold up too.
    use finetune_bert::EncoderConfig;
    let _ = (c.labels(), c.head_dim(), c.problem(), c.to_export_json());
    let _ = finetune_bert::naming::expected_tensors(&c);
    Ok(())
}

/// A `--config` TOML file's training settings.
pub fn train_config(bytes: &[u8]) -> Result<(), String> {
    let p = file("run.toml", bytes);
    let text = String::from_utf8_lossy(bytes);
    let c = finetune_train::TrainConfig::from_toml(&p, &text).map_err(named(&p))?;
    if c.validate().is_ok() {
        let _ = c.schedule_config(1 + c.max_steps.unwrap_or(10).min(1000));
    }
    Ok(())
}

/// A `model.safetensors` file: open (header validation), then read every tensor.
pub fn safetensors_file(bytes: &[u8]) -> Result<(), String> {
    let p = file("model.safetensors", bytes);
    let ckpt = finetune_core::safetensors_io::Checkpoint::open(&p).map_err(named(&p))?;
    for h in ckpt.headers().to_vec() {
        ckpt.load(&h.name, &candle_core::Device::Cpu)
            .map_err(named(&p))?;
    }
    Ok(())
}

/// A `model.safetensors.index.json` beside one real shard (`model-00001-of-00002.safetensors`).
pub fn shard_index(bytes: &[u8]) -> Result<(), String> {
    let dir = scratch().join("sharded");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    let t = candle_core::Tensor::zeros((2, 2), candle_core::DType::F32, &candle_core::Device::Cpu)
        .expect("tensor");
    finetune_core::safetensors_io::save_tensors(
        &dir.join("model-00001-of-00002.safetensors"),
        &[("a.weight".to_string(), t)],
    )
    .expect("shard");
    let index = dir.join("model.safetensors.index.json");
    std::fs::write(&index, bytes).expect("index");
    let ckpt = finetune_core::safetensors_io::Checkpoint::open(&dir).map_err(named(&index))?;
    for h in ckpt.headers().to_vec() {
        ckpt.load(&h.name, &candle_core::Device::Cpu)
            .map_err(named(&dir))?;
    }
    Ok(())
}

fn text_table(name: &str, bytes: &[u8]) -> Result<(), String> {
    use finetune_data::text::{read_table, TextReadOptions};
    let p = file(name, bytes);
    let opts = TextReadOptions::default();
    let table = read_table(&p, &opts).map_err(named(&p))?;
    let labels = table.fit_labels().map_err(named(&p))?;
    table.encode(&labels).map_err(named(&p))?;
    Ok(())
}

/// A CSV of `text,label`.
pub fn csv(bytes: &[u8]) -> Result<(), String> {
    text_table("data.csv", bytes)
}

/// JSON Lines of `{"text", "label"}`.
pub fn jsonl(bytes: &[u8]) -> Result<(), String> {
    text_table("data.jsonl", bytes)
}

/// An IDX images/labels pair: the first two bytes (big-endian) say where the images file ends
/// in the rest, which is split there. Every image is then read.
pub fn idx(bytes: &[u8]) -> Result<(), String> {
    let (cut, rest) = if bytes.len() >= 2 {
        (
            u16::from_be_bytes([bytes[0], bytes[1]]) as usize,
            &bytes[2..],
        )
    } else {
        (0, bytes)
    };
    let at = cut % (rest.len() + 1);
    let images = file("train-images-idx3-ubyte", &rest[..at]);
    let labels = file("train-labels-idx1-ubyte", &rest[at..]);
    let dir = scratch();
    let ds = finetune_data::image::idx::open(&images, &labels, None).map_err(named(&dir))?;
    read_all(&ds).map_err(named(&dir))
}

/// A CIFAR-10 batch file. Every image is then read.
pub fn cifar(bytes: &[u8]) -> Result<(), String> {
    use finetune_data::image::cifar::{open, CifarKind};
    let p = file("data_batch_1.bin", bytes);
    let ds = open(std::slice::from_ref(&p), CifarKind::Cifar10, None).map_err(named(&p))?;
    read_all(&ds).map_err(named(&p))
}

/// Reads (at most 64 of) a dataset's images, in both colour modes.
fn read_all(ds: &finetune_data::image::ImageDataset) -> Result<(), String> {
    use finetune_data::image::ColorMode;
    for i in 0..ds.len().min(64) {
        for mode in [ColorMode::Rgb, ColorMode::Gray] {
            ds.load(i, mode).map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// An encoded image through decoding and the train and eval transform pipelines. The first
/// byte picks the model's input size (1..=64 pixels) and crop percentage.
pub fn image(bytes: &[u8]) -> Result<(), String> {
    use finetune_data::image::decode::decode;
    use finetune_data::image::ColorMode;
    use finetune_data::transforms::preset::{
        eval_transforms, train_transforms, PretrainedCfg, TrainAugment,
    };
    let (knob, encoded) = bytes.split_first().unwrap_or((&0, &[]));
    let size = 1 + (*knob as u32 % 64);
    let crop_pct = [1.0, 0.875, 0.5, 0.01][(*knob as usize >> 6) % 4];
    let interpolation = ["bilinear", "bicubic", "nearest"][*knob as usize % 3];
    let cfg = PretrainedCfg::from_json(&serde_json::json!({
        "input_size": [3, size, size], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25],
        "crop_pct": crop_pct, "interpolation": interpolation,
    }))
    .map_err(|e| e.to_string())?;
    let img = decode(encoded, ColorMode::Rgb)?;
    let mut rng = finetune_core::Rng::seed_from_u64(*knob as u64);
    let aug = TrainAugment {
        color_jitter: Some(0.4),
        ..TrainAugment::default()
    };
    for pipeline in [
        eval_transforms(&cfg).map_err(|e| e.to_string())?,
        train_transforms(&cfg, &aug).map_err(|e| e.to_string())?,
    ] {
        let t = pipeline
            .run(img.clone(), &mut rng)
            .map_err(|e| e.to_string())?;
        if t.data.len() != t.channels * t.height * t.width {
            panic!("tensor of {} values for {t:?}", t.data.len());
        }
    }
    Ok(())
}
