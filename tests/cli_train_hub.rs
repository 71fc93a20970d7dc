//! `finetune train` with a Hub model id and a Hub dataset id — the path `bert-sentiment` takes
//! when the Hub is reachable — against the loopback Hub of `finetune_hub::testing`: the model's
//! files and the dataset's parquet splits are downloaded once into `HF_HOME`, the run trains on
//! them with the dataset's `ClassLabel` names, and a second run works with the Hub gone and
//! `HF_HUB_OFFLINE=1`.

mod common;

use common::*;
use finetune_hub::testing::{put, HubServer};
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;
use std::path::Path;
use std::process::Output;
use std::sync::Arc;

const MODEL: &str = "org/tiny-bert";
const DATASET: &str = "org/reviews";

/// A parquet split as the `datasets` library writes it: a string `text` column, an int64
/// `label` column and `huggingface` metadata naming the labels (`ClassLabel`).
fn split_parquet(path: &Path, rows: &[(String, &str)]) {
    let names = ["neg", "pos"];
    let meta = serde_json::json!({"info": {"features": {
        "text": {"dtype": "string", "_type": "Value"},
        "label": {"names": names, "_type": "ClassLabel"},
    }}});
    let props = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(
            "huggingface".to_string(),
            meta.to_string(),
        )]))
        .build();
    let schema =
        parse_message_type("message schema { required binary text (UTF8); required int64 label; }")
            .unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut w = SerializedFileWriter::new(file, Arc::new(schema), Arc::new(props)).unwrap();
    let mut rg = w.next_row_group().unwrap();
    let texts: Vec<ByteArray> = rows
        .iter()
        .map(|(t, _)| ByteArray::from(t.as_str()))
        .collect();
    let labels: Vec<i64> = rows
        .iter()
        .map(|(_, l)| names.iter().position(|n| n == l).unwrap() as i64)
        .collect();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<ByteArrayType>()
        .write_batch(&texts, None, None)
        .unwrap();
    col.close().unwrap();
    let mut col = rg.next_column().unwrap().unwrap();
    col.typed::<Int64Type>()
        .write_batch(&labels, None, None)
        .unwrap();
    col.close().unwrap();
    rg.close().unwrap();
    w.close().unwrap();
}

fn ok(out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "finetune failed: {stderr}");
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("--json output is not JSON ({e}): {stderr}"))
}

#[test]
fn train_downloads_a_hub_model_and_dataset_then_works_offline() {
    let dir = tmpdir("train-hub");
    let (root, home) = (dir.join("hub"), dir.join("home"));
    // The model repository: the tiny BERT's files under their Hub names.
    let local = dir.join("tiny-bert");
    write_tiny_bert(&local, 3);
    for entry in std::fs::read_dir(&local).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        put(&root, MODEL, "main", &name, &std::fs::read(&path).unwrap());
    }
    // The dataset repository: one parquet file per split, named as the Hub names them.
    let ds = format!("datasets/{DATASET}");
    for (split, rows, seed) in [("train", 160, 1), ("validation", 40, 2), ("test", 40, 3)] {
        let p = dir.join(format!("{split}.parquet"));
        split_parquet(&p, &sentiment_rows(rows, seed));
        let name = format!("data/{split}-00000-of-00001.parquet");
        put(&root, &ds, "main", &name, &std::fs::read(&p).unwrap());
    }
    let mut server = HubServer::start(&root);
    let endpoint = server.endpoint();
    let home_s = home.to_str().unwrap();
    let args = |out: &Path, steps: &str| -> Vec<String> {
        [
            "train",
            "--task",
            "text-classification",
            "--model",
            MODEL,
            "--dataset",
            DATASET,
            "--output",
            out.to_str().unwrap(),
            "--batch-size",
            "8",
            "--max-length",
            "16",
            "--lr",
            "2e-3",
            "--max-steps",
            steps,
            "--no-progress",
            "--json",
        ]
        .map(String::from)
        .to_vec()
    };
    let out = dir.join("online");
    let a = args(&out, "60");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let report = ok(&finetune_with_hub_env(
        &a,
        &[("HF_ENDPOINT", &endpoint), ("HF_HOME", home_s)],
    ));

    // The dataset's ClassLabel names became the model's labels, and all three splits were used.
    assert_eq!(
        report["labels"],
        serde_json::json!(["neg", "pos"]),
        "{report}"
    );
    // 60 steps of 8 = 480 samples = 3 epochs of the 160 training rows.
    assert_eq!(report["summary"]["epochs_completed"], 3.0, "{report}");
    assert_eq!(report["summary"]["final_eval"]["samples"], 40, "{report}");
    let test = &report["test"];
    assert_eq!(test["samples"], 40, "{report}");
    let in_test: u64 = test["confusion"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap())
        .map(|c| c.as_u64().unwrap())
        .sum();
    assert_eq!(in_test, 40);
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["id2label"]["1"], "pos");
    // Everything came from the loopback Hub into HF_HOME.
    let requests = server.requests();
    for file in [
        "model.safetensors",
        "vocab.txt",
        "data/train-00000-of-00001.parquet",
        "data/test-00000-of-00001.parquet",
    ] {
        assert!(
            requests.iter().any(|r| r.path.ends_with(file)),
            "{file} was never requested: {requests:?}"
        );
    }
    assert!(home.join("hub/models--org--tiny-bert").is_dir());
    assert!(home.join("hub/datasets--org--reviews").is_dir());

    // The Hub goes away: with HF_HUB_OFFLINE=1 the cached model and dataset are enough.
    server.stop();
    let out2 = dir.join("offline");
    let a = args(&out2, "2");
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    let report = ok(&finetune_with_hub_env(
        &a,
        &[
            ("HF_ENDPOINT", &endpoint),
            ("HF_HOME", home_s),
            ("HF_HUB_OFFLINE", "1"),
        ],
    ));
    assert_eq!(report["summary"]["global_step"], 2, "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
