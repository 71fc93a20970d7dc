//! `finetune inspect` given a Hub id: resolved through the real hf-hub download path against the
//! loopback Hub of `finetune_hub::testing`, configured through the environment variables a user
//! sets (`HF_ENDPOINT`, `HF_HOME`, `HF_HUB_OFFLINE`).

mod common;

use candle_core::{DType, Device, Tensor};
use common::finetune_with_hub_env as finetune;
use finetune_hub::testing::{commit, put, HubServer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-inspect-hub-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn safetensors_bytes(dir: &Path) -> Vec<u8> {
    let dev = Device::Cpu;
    let tensors: HashMap<String, Tensor> = [
        (
            "embeddings.word_embeddings.weight",
            Tensor::zeros((10, 4), DType::F32, &dev),
        ),
        (
            "encoder.layer.0.output.dense.weight",
            Tensor::zeros((4, 4), DType::F32, &dev),
        ),
        (
            "encoder.layer.0.output.dense.bias",
            Tensor::zeros(4, DType::F32, &dev),
        ),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t.unwrap()))
    .collect();
    let p = dir.join("w.safetensors");
    candle_core::safetensors::save(&tensors, &p).unwrap();
    std::fs::read(p).unwrap()
}

#[test]
fn inspect_accepts_a_hub_id_and_then_works_offline() {
    let root = tmpdir("root");
    let work = tmpdir("work");
    let home = tmpdir("home");
    let repo = "org/tiny-bert";
    put(
        &root,
        repo,
        "main",
        "config.json",
        b"{\"model_type\":\"bert\"}",
    );
    put(
        &root,
        repo,
        "main",
        "model.safetensors",
        &safetensors_bytes(&work),
    );
    let mut server = HubServer::start(&root);
    let endpoint = server.endpoint();
    let home_s = home.to_str().unwrap();

    let out = finetune(
        &["inspect", repo, "--json", "--freeze", "embeddings.*"],
        &[("HF_ENDPOINT", &endpoint), ("HF_HOME", home_s)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tensors"].as_array().unwrap().len(), 3);
    assert_eq!(v["total_params"], 40 + 16 + 4);
    assert_eq!(v["trainable_params"], 16 + 4);
    assert!(server
        .requests()
        .iter()
        .any(|r| r.path.ends_with("/resolve/main/model.safetensors")));
    let snap = home
        .join("hub/models--org--tiny-bert/snapshots")
        .join(commit(&root, repo, "main"));
    assert!(
        snap.join("model.safetensors").is_file(),
        "{}",
        snap.display()
    );

    // Server gone, offline: the cache answers, byte for byte the same report.
    server.stop();
    let again = finetune(
        &["inspect", repo, "--json", "--freeze", "embeddings.*"],
        &[
            ("HF_ENDPOINT", &endpoint),
            ("HF_HOME", home_s),
            ("HF_HUB_OFFLINE", "1"),
        ],
    );
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(again.stdout, out.stdout);

    // Something never downloaded: one line naming the repo, the file and the cache folder.
    let missing = finetune(
        &["inspect", "org/absent@v1"],
        &[
            ("HF_ENDPOINT", &endpoint),
            ("HF_HOME", home_s),
            ("HF_HUB_OFFLINE", "1"),
        ],
    );
    assert!(!missing.status.success());
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for part in [
        "org/absent@v1",
        "`config.json`",
        "models--org--absent",
        "HF_HUB_OFFLINE",
    ] {
        assert!(err.contains(part), "missing {part:?} in: {err}");
    }
    for d in [root, work, home] {
        std::fs::remove_dir_all(d).ok();
    }
}
