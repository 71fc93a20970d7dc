//! `finetune inspect` on the real all-MiniLM-L6-v2 checkpoint fetched by
//! `scripts/fetch-assets.sh`: parameter counts must equal those derived from its config.json.

use std::path::PathBuf;
use std::process::Command;

fn minilm_dir() -> PathBuf {
    let root = std::env::var_os("CANDLE_FINETUNE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets"));
    let dir = root.join("minilm");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run `scripts/fetch-assets.sh minilm` first",
        dir.display()
    );
    dir
}

#[test]
fn minilm_counts_match_the_architecture_in_its_config() {
    let dir = minilm_dir();
    let cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let n = |k: &str| cfg[k].as_u64().unwrap() as usize;
    let (h, i, layers) = (
        n("hidden_size"),
        n("intermediate_size"),
        n("num_hidden_layers"),
    );
    let embeddings =
        (n("vocab_size") + n("max_position_embeddings") + n("type_vocab_size")) * h + 2 * h;
    let layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h;
    let pooler = h * h + h;
    let total = embeddings + layers * layer + pooler;

    let out = Command::new(env!("CARGO_BIN_EXE_finetune"))
        .args([
            "inspect",
            dir.to_str().unwrap(),
            "--json",
            "--freeze",
            "embeddings.*",
        ])
        .args(["--freeze", "encoder.layer.{0..3}.*"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["total_params"].as_u64().unwrap() as usize, total);
    assert_eq!(
        v["trainable_params"].as_u64().unwrap() as usize,
        2 * layer + pooler
    );
    let tensors = v["tensors"].as_array().unwrap();
    let q = tensors
        .iter()
        .find(|t| t["name"] == "encoder.layer.3.attention.self.query.weight")
        .expect("bare BERT names");
    assert_eq!(q["shape"], serde_json::json!([h, h]));
    assert_eq!(q["trainable"], false);
}
