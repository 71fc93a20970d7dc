//! An adapter made by Python's PEFT (`scripts/make-lora-fixture.py`: a tiny BERT classifier, a
//! LoRA adapter on `query`, `value` and every `dense` layer with rsLoRA, every adapter tensor
//! and the head non-zero) loads onto the base transformers saved and reproduces the logits
//! PEFT computed; the merged export (no adapter) gives the same logits, and the `adapter/`
//! folder of that export loads again to the same logits.

use candle_core::{Device, Tensor};
use finetune_bert::{BertBatch, BertForSequenceClassification, LoadOptions};
use finetune_core::lora::peft;
use std::path::{Path, PathBuf};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lora")
}

fn batch() -> (BertBatch, Vec<Vec<f32>>) {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture().join("logits.json")).unwrap())
            .unwrap();
    let ids: Vec<Vec<u32>> = serde_json::from_value(v["input_ids"].clone()).unwrap();
    let mask: Vec<Vec<u32>> = serde_json::from_value(v["attention_mask"].clone()).unwrap();
    let logits: Vec<Vec<f32>> = serde_json::from_value(v["logits"].clone()).unwrap();
    let b = BertBatch {
        input_ids: Tensor::new(ids, &Device::Cpu).unwrap(),
        token_type_ids: None,
        attention_mask: Some(Tensor::new(mask, &Device::Cpu).unwrap()),
    };
    (b, logits)
}

fn assert_logits(model: &BertForSequenceClassification, what: &str) {
    let (b, want) = batch();
    let got: Vec<Vec<f32>> = model.forward_t(&b, false).unwrap().to_vec2().unwrap();
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        assert!(
            (g - w).abs() <= 1e-4,
            "{what}: {got:?} vs Python's {want:?}"
        );
    }
}

#[test]
fn a_peft_adapter_reproduces_pythons_logits_merged_and_not() {
    let (model, _) = BertForSequenceClassification::from_pretrained(
        &fixture().join("base"),
        &LoadOptions::default(),
    )
    .unwrap();
    let (b, _) = batch();
    let before: Vec<Vec<f32>> = model.forward_t(&b, false).unwrap().to_vec2().unwrap();
    let dir = fixture().join("adapter");
    let settings = peft::load(model.store(), &dir, peft::read_config(&dir).unwrap()).unwrap();
    // PEFT's suffix matching: `dense` adapts the attention output, intermediate, output and
    // pooler layers, not `classifier` (kept whole: `modules_to_save`; `score` is not a layer
    // of BERT and is dropped).
    assert_eq!(settings.modules.len(), 2 * 5 + 1);
    assert_eq!(settings.modules_to_save, ["classifier"]);
    assert!(settings.config.use_rslora);
    assert_logits(&model, "adapter applied");
    let after: Vec<Vec<f32>> = model.forward_t(&b, false).unwrap().to_vec2().unwrap();
    assert_ne!(before, after, "the adapter changes the logits");

    let out = std::env::temp_dir().join(format!("ft-lora-fixture-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    model.export_as(&out, None).unwrap();
    let exported = finetune_core::safetensors_io::Checkpoint::open(&out).unwrap();
    assert!(exported.headers().iter().all(|h| !h.name.contains("lora_")));
    let (merged, _) =
        BertForSequenceClassification::from_pretrained(&out, &LoadOptions::default()).unwrap();
    assert!(merged.store().lora().is_none());
    assert_logits(&merged, "merged export");

    let (again, _) = BertForSequenceClassification::from_pretrained(
        &fixture().join("base"),
        &LoadOptions::default(),
    )
    .unwrap();
    let adapter = out.join(finetune_core::model_io::ADAPTER_DIR);
    peft::load(
        again.store(),
        &adapter,
        peft::read_config(&adapter).unwrap(),
    )
    .unwrap();
    assert_logits(&again, "our adapter/ folder");
    std::fs::remove_dir_all(&out).ok();
}

/// The parameter counts a LoRA run reports are PEFT's `print_trainable_parameters`: on the real
/// all-MiniLM-L6-v2 with a two-class head, r 8, PEFT 0.21.2 printed `trainable params: 74,498
/// || all params: 22,788,484` for `["query", "value"]` and `338,690 || 23,052,676` for
/// `"all-linear"` (`scripts/make-lora-fixture.py` shows how such figures are made).
#[test]
fn lora_counts_on_minilm_are_peft_s() {
    use finetune_core::lora::{self, LoraConfig, LoraSettings};
    let root = std::env::var_os("CANDLE_FINETUNE_ASSETS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("assets"));
    let dir = root.join("minilm");
    assert!(
        dir.join("model.safetensors").is_file(),
        "{} is missing: run `scripts/fetch-assets.sh` first",
        dir.display()
    );
    for (target, trainable, total) in [
        ("query,value", 74_498, 22_788_484),
        ("all-linear", 338_690, 23_052_676),
    ] {
        let opts = LoadOptions {
            labels: Some(vec!["neg".into(), "pos".into()]),
            ..LoadOptions::default()
        };
        let (model, _) = BertForSequenceClassification::from_pretrained(&dir, &opts).unwrap();
        let layout = finetune_bert::naming::layout();
        let config = LoraConfig {
            r: 8,
            alpha: 16.0,
            dropout: 0.1,
            target: target.split(',').map(String::from).collect(),
            use_rslora: false,
        };
        let store = model.store();
        let modules = lora::select_modules(&config.target, &store.modules(), &layout).unwrap();
        let settings = LoraSettings {
            config,
            modules,
            modules_to_save: layout.head_modules(),
            base_model: dir.display().to_string(),
            revision: None,
            task_type: Some("SEQ_CLS".into()),
        };
        lora::add_adapters(store, settings, &mut finetune_core::Rng::seed_from_u64(1)).unwrap();
        lora::train_rules(store)
            .unwrap()
            .unwrap()
            .apply_fresh(store)
            .unwrap();
        let c = lora::counts(store);
        assert_eq!((c.trainable, c.total), (trainable, total), "{target}");
    }
}
