//! LoRA for token classification in PEFT's format (`task_type` `TOKEN_CLS`, the head
//! `classifier` as `modules_to_save`): an adapter Python's PEFT saved for the tiny
//! `BertForTokenClassification` (`scripts/make-token-lora-fixture.py`: r 4 on `query`, `value`
//! and every `dense`, each LoRA tensor and the head random) reproduces PEFT's logits on our
//! side, through the library and through the loader the CLI uses; and what `finetune train
//! --task token-classification --lora` writes has that adapter's config fields, tensor names
//! and shapes (that PEFT loads it is the script's `--check`, run by hand).

mod common;

use candle_core::{DType, Device, Tensor};
use candle_finetune::bert::{BertBatch, LoadOptions, TokenClassifier};
use candle_finetune::families;
use candle_finetune::tasks::{self, text::TextModelOptions, token::TokenTagger};
use common::{finetune_ok, load_tensors, read_json, tmpdir};
use finetune_bert::Bert;
use finetune_core::lora::peft;
use finetune_core::model_io::ADAPTER_DIR;
use finetune_core::TrainModel;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn ner(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/ner")
        .join(name)
}

fn base() -> PathBuf {
    ner("bert-token")
}

fn adapter() -> PathBuf {
    ner("bert-token-lora")
}

/// The fixed padded ids and the logits `[2, 7, 7]` PEFT computed for them.
fn batch() -> (BertBatch, Vec<f32>) {
    let v = read_json(&adapter().join("logits.json"));
    let ids: Vec<Vec<u32>> = serde_json::from_value(v["input_ids"].clone()).unwrap();
    let mask: Vec<Vec<u32>> = serde_json::from_value(v["attention_mask"].clone()).unwrap();
    let logits: Vec<Vec<Vec<f32>>> = serde_json::from_value(v["logits"].clone()).unwrap();
    let b = BertBatch {
        input_ids: Tensor::new(ids, &Device::Cpu).unwrap(),
        token_type_ids: None,
        attention_mask: Some(Tensor::new(mask, &Device::Cpu).unwrap()),
    };
    (b, logits.into_iter().flatten().flatten().collect())
}

fn flat(logits: Tensor) -> Vec<f32> {
    assert_eq!(logits.dims(), [2, 7, 7]);
    let v = logits.to_dtype(DType::F32).unwrap();
    v.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    let d = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max);
    assert!(d <= 1e-4, "{what}: logits differ from PEFT's by {d}");
}

fn load_base() -> TokenClassifier<Bert> {
    TokenClassifier::<Bert>::from_pretrained(&base(), &LoadOptions::default())
        .unwrap()
        .0
}

/// The tensors of an adapter file: name → shape.
fn tensor_shapes(dir: &Path) -> BTreeMap<String, Vec<usize>> {
    load_tensors(&dir.join(peft::WEIGHTS_FILE))
        .into_iter()
        .map(|(n, t)| (n, t.dims().to_vec()))
        .collect()
}

/// PEFT's adapter onto the base: 2 layers × (query, value and three `dense`) adapted, the
/// head replaced by the adapter's, PEFT's logits; merged, the export gives them too, and its
/// `adapter/` (ours) holds PEFT's tensor names and `TOKEN_CLS`.
#[test]
fn a_peft_token_adapter_reproduces_pythons_logits_merged_and_not() {
    let model = load_base();
    let (b, want) = batch();
    let before = flat(model.forward_t(&b, false).unwrap());
    let settings = peft::load(
        model.store(),
        &adapter(),
        peft::read_config(&adapter()).unwrap(),
    )
    .unwrap();
    assert_eq!(settings.task_type.as_deref(), Some("TOKEN_CLS"));
    assert_eq!(settings.modules.len(), 2 * 5);
    // PEFT lists `classifier` and `score`; BERT's token classifier has the first only.
    assert_eq!(settings.modules_to_save, ["classifier"]);
    let after = flat(model.forward_t(&b, false).unwrap());
    assert_close(&after, &want, "adapter applied");
    assert!(before.iter().zip(&after).any(|(x, y)| (x - y).abs() > 1e-2));

    let out = tmpdir("token-lora-fixture");
    model.export_as(&out, None).unwrap();
    let merged = load_tensors(&out.join("model.safetensors"));
    assert!(merged.keys().all(|n| !n.contains("lora_")));
    let (again, _) =
        TokenClassifier::<Bert>::from_pretrained(&out, &LoadOptions::default()).unwrap();
    assert!(again.store().lora().is_none());
    assert_close(
        &flat(again.forward_t(&b, false).unwrap()),
        &want,
        "merged export",
    );
    let ours = out.join(ADAPTER_DIR);
    assert_eq!(
        read_json(&ours.join(peft::CONFIG_FILE))["task_type"],
        "TOKEN_CLS"
    );
    assert_eq!(tensor_shapes(&ours), tensor_shapes(&adapter()));
    std::fs::remove_dir_all(&out).ok();
}

/// The loader `eval` and `predict` use: the base resolved as a token classifier, `--adapter`
/// applied on top, the head sized and named from the base's tags.
#[test]
fn the_cli_loader_applies_a_peft_token_adapter() {
    let source = tasks::open(base().to_str().unwrap()).unwrap();
    let source = families::with_adapter(source, Some(&adapter())).unwrap();
    assert_eq!(
        source.task(),
        candle_finetune::settings::Task::TokenClassification
    );
    let tagger =
        TokenTagger::from_source(&source, &TextModelOptions::default(), &Device::Cpu).unwrap();
    assert_eq!(tagger.labels()[1], "B-PER");
    let (b, want) = batch();
    let got = flat(tagger.model().forward_t(&b, false).unwrap());
    assert_close(&got, &want, "base + --adapter");
}

fn train_jsonl(path: &Path) {
    let rows = [
        json!({"tokens": ["John", "lives", "in", "Paris", "."],
               "ner_tags": ["B-PER", "O", "O", "B-LOC", "O"]}),
        json!({"tokens": ["Acme", "Corp", "visited", "New", "York"],
               "ner_tags": ["B-ORG", "I-ORG", "O", "B-LOC", "I-LOC"]}),
        json!({"tokens": ["Mary", "Smith", "works", "at", "Acme"],
               "ner_tags": ["B-PER", "I-PER", "O", "O", "B-ORG"]}),
    ];
    let text: Vec<String> = rows.iter().map(Value::to_string).collect();
    std::fs::write(path, text.join("\n") + "\n").unwrap();
}

/// `finetune train --task token-classification --lora` for two steps on the base, with the
/// PEFT fixture's rank, alpha and targets; returns the output folder.
fn train_lora(dir: &Path) -> PathBuf {
    let (train, out) = (dir.join("train.jsonl"), dir.join("out"));
    train_jsonl(&train);
    let mut args: Vec<String> = "train --task token-classification --max-length 12 \
                                 --batch-size 2 --max-steps 2 --lr 1e-2 --lora --lora-r 4 \
                                 --lora-alpha 6 --lora-target query,value,dense"
        .split_whitespace()
        .map(String::from)
        .collect();
    for (flag, path) in [
        ("--model", base()),
        ("--train", train),
        ("--output", out.clone()),
    ] {
        args.extend([flag.to_string(), path.display().to_string()]);
    }
    finetune_ok(&args);
    out
}

/// Two steps of `train --task token-classification --lora` on the adapter's layers: the
/// export's `adapter/` is the PEFT fixture's shape — `task_type` `TOKEN_CLS`, the same
/// `target_modules`, `classifier` in `modules_to_save`, the same tensor names and shapes —
/// and the adapter folder alone predicts as the merged model.
#[test]
fn a_token_lora_run_writes_the_adapter_peft_writes() {
    let dir = tmpdir("token-lora-train");
    let out = train_lora(&dir);
    let s = |p: &Path| p.display().to_string();
    let ours = read_json(&out.join(ADAPTER_DIR).join(peft::CONFIG_FILE));
    let theirs = read_json(&adapter().join(peft::CONFIG_FILE));
    for key in ["peft_type", "task_type", "r", "bias"] {
        assert_eq!(ours[key], theirs[key], "{key}");
    }
    assert_eq!(ours["lora_alpha"].as_f64(), theirs["lora_alpha"].as_f64());
    assert_eq!(ours["task_type"], "TOKEN_CLS");
    let sorted = |v: &Value| -> Vec<String> {
        let mut names: Vec<String> = serde_json::from_value(v.clone()).unwrap();
        names.sort();
        names
    };
    assert_eq!(
        sorted(&ours["target_modules"]),
        sorted(&theirs["target_modules"])
    );
    assert_eq!(ours["modules_to_save"], json!(["classifier"]));
    assert!(sorted(&theirs["modules_to_save"]).contains(&"classifier".to_string()));
    assert_eq!(
        tensor_shapes(&out.join(ADAPTER_DIR)),
        tensor_shapes(&adapter())
    );

    let predict = |model: &Path| -> Value {
        let line = finetune_ok(&[
            "predict",
            "--model",
            &s(model),
            "--text",
            "John lives in Paris",
            "--json",
        ]);
        serde_json::from_str(line.trim()).unwrap()
    };
    let (merged, alone) = (predict(&out), predict(&out.join(ADAPTER_DIR)));
    let rows = |v: &Value| -> Vec<f32> {
        let r: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone()).unwrap();
        r.concat()
    };
    assert_close(&rows(&alone), &rows(&merged), "the adapter folder alone");
    let spans = |v: &Value| -> Vec<(Value, Value, Value)> {
        let e = v["entities"].as_array().unwrap();
        e.iter()
            .map(|e| (e["label"].clone(), e["start"].clone(), e["end"].clone()))
            .collect()
    };
    assert_eq!(spans(&alone), spans(&merged));
    std::fs::remove_dir_all(&dir).ok();
}
