//! Damaged model folders: each `finetune train` fails before writing anything, with one line
//! naming the damaged file and what is wrong with it.

use crate::common::*;
use crate::support::*;
use candle_core::{DType, Device, Tensor};
use std::path::{Path, PathBuf};

const WEIGHTS: &str = "model.safetensors";
const EMBEDDINGS: &str = "bert.embeddings.word_embeddings.weight";

/// A fixture whose model folder `damage` has changed; trains into `out` and expects a clean
/// failure naming `file` (relative to the model folder) and each of `needles`.
fn fails_naming(tag: &str, damage: impl FnOnce(&Path), file: &str, needles: &[&str]) -> String {
    fails_with(tag, damage, |model| {
        let mut all = vec![model.join(file).display().to_string()];
        all.extend(needles.iter().map(|n| n.to_string()));
        all
    })
}

/// As [`fails_naming`], the needles computed from the model folder's path.
fn fails_with(
    tag: &str,
    damage: impl FnOnce(&Path),
    needles: impl FnOnce(&Path) -> Vec<String>,
) -> String {
    let f = Fixture::new(tag);
    damage(&f.model);
    let all = needles(&f.model);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = f.out();
    let line = train_fails(&f.train_args(&out, &[]), &out, &all);
    assert!(!out.exists(), "a failed load created {}", out.display());
    line
}

fn header_len(bytes: &[u8]) -> usize {
    u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// The header of a safetensors file as JSON, and the data after it.
fn split_file(path: &Path) -> (serde_json::Value, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap();
    let n = header_len(&bytes);
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, bytes[8 + n..].to_vec())
}

fn join_file(path: &Path, header: &serde_json::Value, data: &[u8]) {
    let h = serde_json::to_vec(header).unwrap();
    let mut bytes = (h.len() as u64).to_le_bytes().to_vec();
    bytes.extend(h);
    bytes.extend(data);
    std::fs::write(path, bytes).unwrap();
}

/// Rewrites the model's weights with `edit` applied to the tensor list.
fn rewrite_weights(model: &Path, edit: impl FnOnce(&mut Vec<(String, Tensor)>)) {
    let path = model.join(WEIGHTS);
    let mut tensors: Vec<(String, Tensor)> = load_tensors(&path).into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    edit(&mut tensors);
    std::fs::remove_file(&path).unwrap();
    finetune_core::safetensors_io::save_tensors(&path, &tensors).unwrap();
}

#[test]
fn truncated_weights() {
    fails_naming(
        "ckpt-truncated",
        |m| {
            let p = m.join(WEIGHTS);
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() * 2 / 3]).unwrap();
        },
        WEIGHTS,
        &["safetensors"],
    );
}

#[test]
fn garbage_header() {
    fails_naming(
        "ckpt-garbage",
        |m| {
            let mut bytes = 40u64.to_le_bytes().to_vec();
            bytes.extend(b"this is not the JSON header you want....");
            bytes.extend([0u8; 64]);
            std::fs::write(m.join(WEIGHTS), bytes).unwrap();
        },
        WEIGHTS,
        &["safetensors"],
    );
}

#[test]
fn oversized_header() {
    for (tag, len) in [("huge", u64::MAX / 2), ("past-end", 1 << 20)] {
        fails_naming(
            &format!("ckpt-header-{tag}"),
            |m| {
                let p = m.join(WEIGHTS);
                let mut bytes = std::fs::read(&p).unwrap();
                bytes[..8].copy_from_slice(&len.to_le_bytes());
                std::fs::write(&p, bytes).unwrap();
            },
            WEIGHTS,
            &["safetensors"],
        );
    }
}

#[test]
fn header_offsets_past_the_end() {
    fails_naming(
        "ckpt-offsets",
        |m| {
            let p = m.join(WEIGHTS);
            let (mut header, data) = split_file(&p);
            // Every tensor's end offset moved 4 KiB past the data.
            let total = data.len() as u64;
            for (k, v) in header.as_object_mut().unwrap() {
                if k != "__metadata__" {
                    let offs = v["data_offsets"].as_array().unwrap().clone();
                    if offs[1].as_u64() == Some(total) {
                        v["data_offsets"] = serde_json::json!([offs[0], total + 4096]);
                    }
                }
            }
            join_file(&p, &header, &data);
        },
        WEIGHTS,
        &["safetensors"],
    );
}

#[test]
fn a_tensor_with_an_integer_dtype() {
    let line = fails_naming(
        "ckpt-dtype",
        |m| {
            rewrite_weights(m, |ts| {
                for (n, t) in ts.iter_mut() {
                    if n == EMBEDDINGS {
                        *t = t.to_dtype(DType::I64).unwrap();
                    }
                }
            })
        },
        WEIGHTS,
        &[EMBEDDINGS],
    );
    assert!(line.contains("I64") || line.contains("i64"), "{line}");
}

#[test]
fn a_tensor_with_the_wrong_shape() {
    let name = "bert.encoder.layer.1.attention.self.query.weight";
    fails_naming(
        "ckpt-shape",
        |m| {
            rewrite_weights(m, |ts| {
                for (n, t) in ts.iter_mut() {
                    if n == name {
                        *t = Tensor::zeros((16, 8), DType::F32, &Device::Cpu).unwrap();
                    }
                }
            })
        },
        WEIGHTS,
        &[name, "[16, 8]", "[16, 16]"],
    );
}

#[test]
fn a_missing_tensor() {
    let name = "bert.encoder.layer.1.output.dense.weight";
    fails_naming(
        "ckpt-missing-tensor",
        |m| rewrite_weights(m, |ts| ts.retain(|(n, _)| n != name)),
        WEIGHTS,
        &["output.dense.weight"],
    );
}

/// Splits the model's weights into two shards with an index; returns the shard names.
fn shard(model: &Path, second_name: &str) -> [String; 2] {
    let path = model.join(WEIGHTS);
    let mut tensors: Vec<(String, Tensor)> = load_tensors(&path).into_iter().collect();
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    std::fs::remove_file(&path).unwrap();
    let half = tensors.split_off(tensors.len() / 2);
    let names = [
        "model-00001-of-00002.safetensors".to_string(),
        second_name.to_string(),
    ];
    let mut map = serde_json::Map::new();
    for (part, file) in [(&tensors, &names[0]), (&half, &names[1])] {
        for (n, _) in part.iter() {
            map.insert(n.clone(), serde_json::json!(file));
        }
    }
    finetune_core::safetensors_io::save_tensors(&model.join(&names[0]), &tensors).unwrap();
    let second = model.join(&names[1]);
    if second.parent().unwrap().is_dir() {
        finetune_core::safetensors_io::save_tensors(&second, &half).unwrap();
    }
    std::fs::write(
        model.join("model.safetensors.index.json"),
        serde_json::to_vec(&serde_json::json!({"metadata": {}, "weight_map": map})).unwrap(),
    )
    .unwrap();
    names
}

#[test]
fn sharded_index_naming_a_missing_shard() {
    fails_with(
        "ckpt-missing-shard",
        |m| {
            let names = shard(m, "model-00002-of-00002.safetensors");
            std::fs::remove_file(m.join(&names[1])).unwrap();
        },
        |m| {
            vec![
                m.display().to_string(),
                "model.safetensors.index.json".into(),
                "model-00002-of-00002.safetensors".into(),
            ]
        },
    );
}

#[test]
fn sharded_index_naming_a_path_outside_the_folder() {
    fails_naming(
        "ckpt-escaping-shard",
        |m| {
            // The file exists outside the folder: it must be refused, not read.
            shard(m, "../outside.safetensors");
        },
        "model.safetensors.index.json",
        &["../outside.safetensors"],
    );
}

#[test]
fn a_sharded_checkpoint_still_loads() {
    // The control for the two cases above: the same split, intact, trains.
    let f = Fixture::new("ckpt-sharded-ok");
    shard(&f.model, "model-00002-of-00002.safetensors");
    finetune_ok(&f.train_args(&f.out(), &[]));
    assert!(f.out().join(WEIGHTS).is_file());
}

fn set_config(model: &Path, text: &str) {
    std::fs::write(model.join("config.json"), text).unwrap();
}

/// `config.json` of the tiny model with `key` set to `value`.
fn config_with(key: &str, value: serde_json::Value) -> String {
    let mut c = serde_json::to_value(tiny_config()).unwrap();
    c[key] = value;
    c.to_string()
}

#[test]
fn config_that_is_not_json() {
    fails_naming(
        "cfg-not-json",
        |m| set_config(m, "{\"hidden_size\": 16,,,"),
        "config.json",
        &["not a valid BERT config"],
    );
}

#[test]
fn config_with_a_wrongly_typed_field() {
    fails_naming(
        "cfg-wrong-type",
        |m| set_config(m, &config_with("hidden_size", serde_json::json!("wide"))),
        "config.json",
        &["hidden_size"],
    );
}

#[test]
fn config_lacking_its_sizes_disagrees_with_the_weights() {
    // `{}` means BERT-base's sizes (transformers' defaults), which the weights contradict: the
    // error names the weights and the config, before anything of BERT-base's size exists.
    let line = fails_naming(
        "cfg-empty",
        |m| set_config(m, "{}"),
        WEIGHTS,
        &["config.json", "768"],
    );
    assert!(
        line.contains("[40, 16]") || line.contains("[2, 16]"),
        "{line}"
    );
}

#[test]
fn config_with_absurd_sizes() {
    for (tag, key, value, needle) in [
        ("heads", "num_attention_heads", 5, "not divisible"),
        ("layers", "num_hidden_layers", 100_000, "num_hidden_layers"),
        ("vocab", "vocab_size", 1_000_000_000_000u64, "vocab_size"),
        ("zero", "hidden_size", 0, "hidden_size"),
    ] {
        fails_naming(
            &format!("cfg-absurd-{tag}"),
            |m| set_config(m, &config_with(key, serde_json::json!(value))),
            "config.json",
            &[needle],
        );
    }
}

#[test]
fn config_sizes_within_limits_but_not_the_weights() {
    // Large but legal sizes: rejected by comparing with the weights, not by allocating them.
    for (key, value) in [
        ("num_hidden_layers", 200usize),
        ("intermediate_size", 200_000),
        ("max_position_embeddings", 60_000),
    ] {
        fails_naming(
            &format!("cfg-mismatch-{key}"),
            |m| set_config(m, &config_with(key, serde_json::json!(value))),
            WEIGHTS,
            &["config.json"],
        );
    }
}

#[test]
fn tokenizer_files_that_do_not_parse() {
    let cases: [(&str, &str, &[u8], &str); 3] = [
        (
            "tok-json",
            "tokenizer.json",
            b"{\"model\": [1, 2",
            "tokenizer",
        ),
        ("tok-config", "tokenizer_config.json", b"not json", "JSON"),
        ("tok-vocab", "vocab.txt", b"hello\nworld\n", "[CLS]"),
    ];
    for (tag, file, bytes, needle) in cases {
        fails_naming(
            tag,
            |m| std::fs::write(m.join(file), bytes).unwrap(),
            file,
            &[needle],
        );
    }
}

#[test]
fn a_tokenizer_larger_than_the_model_vocabulary() {
    // A tokenizer from another checkpoint could emit ids with no embedding row.
    fails_naming(
        "tok-too-big",
        |m| {
            let mut words = vocab().join("\n");
            for i in 0..50 {
                words.push_str(&format!("\nextra{i}"));
            }
            std::fs::write(m.join("vocab.txt"), words + "\n").unwrap();
        },
        "vocab.txt",
        &["vocab_size"],
    );
}

#[test]
fn a_model_folder_without_weights() {
    let f = Fixture::new("ckpt-no-weights");
    std::fs::remove_file(f.model.join(WEIGHTS)).unwrap();
    let out = f.out();
    train_fails(&f.train_args(&out, &[]), &out, &[s(&f.model)]);
}

/// Paths of the checkpoint folder a run of `steps` steps leaves, for `predict` on damaged
/// checkpoints.
fn trained(f: &Fixture) -> PathBuf {
    let out = f.out();
    finetune_ok(&f.train_args(&out, &["--max-steps", "2", "--save-steps", "2"]));
    out.join("checkpoint-2")
}

#[test]
fn predict_and_export_on_a_damaged_checkpoint() {
    let f = Fixture::new("ckpt-predict");
    let ckpt = trained(&f);
    let weights = ckpt.join(WEIGHTS);
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).unwrap();
    let run = finetune(&["predict", "--model", s(&ckpt), "--text", "good film"]);
    assert_clean_failure(&run, &[s(&weights)]);
    let exported = f.dir.join("exported");
    let run = finetune(&["export", "--checkpoint", s(&ckpt), "--output", s(&exported)]);
    assert_clean_failure(&run, &[s(&weights)]);
    assert!(!exported.exists());
    for e in std::fs::read_dir(&f.dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "left-over {name}");
    }
}
