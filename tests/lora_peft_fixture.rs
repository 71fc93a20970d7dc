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
