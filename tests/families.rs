//! DistilBERT, RoBERTa and XLM-RoBERTa against transformers: the tiny checkpoints of
//! `scripts/make-family-fixtures.py` (random weights, hidden 36 with 3 heads, odd vocabularies,
//! max_position_embeddings close to the input length) and the logits transformers computed for
//! them. One generic check per property, run for every family.

use candle_core::{DType, Device, Tensor};
use candle_finetune::bert::{
    Architecture, BertBatch, BertTokenizer, EncoderConfig, LoadOptions, SequenceClassifier,
};
use finetune_core::safetensors_io::save_tensors;
use finetune_core::Grads;
use finetune_distilbert::DistilBert;
use finetune_roberta::Roberta;
use serde_json::Value;
use std::path::{Path, PathBuf};

type R = Result<(), Box<dyn std::error::Error>>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn record(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("logits.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-families-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ids(v: &Value) -> Vec<Vec<u32>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn batch(rec: &Value, ids_key: &str, mask_key: &str) -> BertBatch {
    let dev = Device::Cpu;
    BertBatch {
        input_ids: Tensor::new(ids(&rec[ids_key]), &dev).unwrap(),
        token_type_ids: None,
        attention_mask: Some(Tensor::new(ids(&rec[mask_key]), &dev).unwrap()),
    }
}

fn load<A: Architecture>(dir: &Path, dtype: DType) -> SequenceClassifier<A> {
    let opts = LoadOptions {
        dtype,
        ..LoadOptions::default()
    };
    SequenceClassifier::<A>::from_pretrained(dir, &opts)
        .unwrap()
        .0
}

/// The largest difference between `got` and transformers' `want`.
fn max_diff(got: &Tensor, want: &Value) -> f64 {
    let want: Vec<Vec<f64>> = serde_json::from_value(want.clone()).unwrap();
    let got = got.to_dtype(DType::F64).unwrap().to_vec2::<f64>().unwrap();
    assert_eq!(got.len(), want.len());
    got.iter()
        .flatten()
        .zip(want.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max)
}

/// Eval-mode logits equal transformers' (≤ 1e-4) on fixed ids, and on texts tokenised by the
/// checkpoint's tokenizer into the ids transformers' tokenizer made.
fn logits_match<A: Architecture>(name: &str) -> R {
    let rec = record(name);
    let model = load::<A>(&fixture(name), DType::F32);
    let logits = model.forward_t(&batch(&rec, "input_ids", "attention_mask"), false)?;
    let d = max_diff(&logits, &rec["logits"]);
    assert!(d <= 1e-4, "{name}: logits differ from transformers' by {d}");
    let tok = BertTokenizer::from_dir(&fixture(name), 10, model.config().max_length())?;
    let texts: Vec<&str> = rec["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let b = tok.batch(&texts, None, &Device::Cpu)?;
    assert_eq!(b.input_ids.to_vec2::<u32>()?, ids(&rec["text_input_ids"]));
    let mask = b.attention_mask.as_ref().unwrap().to_vec2::<u32>()?;
    assert_eq!(mask, ids(&rec["text_attention_mask"]));
    let d = max_diff(&model.forward_t(&b, false)?, &rec["text_logits"]);
    assert!(d <= 1e-4, "{name}: text logits differ by {d}");
    Ok(())
}

#[test]
fn distilbert_logits_match_transformers() -> R {
    logits_match::<DistilBert>("distilbert")
}

#[test]
fn roberta_logits_match_transformers() -> R {
    logits_match::<Roberta>("roberta")
}

#[test]
fn xlm_roberta_logits_match_transformers() -> R {
    logits_match::<Roberta>("xlm-roberta")
}

#[test]
fn roberta_vocab_json_and_merges_tokenise_as_tokenizer_json() -> R {
    let dir = tmpdir("bpe-files");
    for f in ["vocab.json", "merges.txt", "tokenizer_config.json"] {
        std::fs::copy(fixture("roberta").join(f), dir.join(f))?;
    }
    let rec = record("roberta");
    let texts = ["the movie was great", "a boring film , nothing good"];
    let from_files = BertTokenizer::from_dir(&dir, 10, 10)?.batch(&texts, None, &Device::Cpu)?;
    let from_json =
        BertTokenizer::from_dir(&fixture("roberta"), 10, 10)?.batch(&texts, None, &Device::Cpu)?;
    let want = &ids(&rec["text_input_ids"])[..2];
    assert_eq!(from_files.input_ids.to_vec2::<u32>()?, want);
    assert_eq!(from_json.input_ids.to_vec2::<u32>()?, want);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// Backward through the whole model (fused ops included) against central finite differences
/// in f64, at each probed tensor's largest gradient entry.
fn gradients_match<A: Architecture>(name: &str, probes: &[&str]) -> R {
    let m = load::<A>(&fixture(name), DType::F64);
    let b = batch(&record(name), "input_ids", "attention_mask");
    let targets = Tensor::new(&[1u32, 0, 1], &Device::Cpu)?;
    let loss_of = |m: &SequenceClassifier<A>| -> Result<f64, Box<dyn std::error::Error>> {
        let loss = m.loss(&m.forward_t(&b, false)?, &targets, 0.1)?;
        Ok(loss.to_scalar::<f64>()?)
    };
    let loss = m.loss(&m.forward_t(&b, false)?, &targets, 0.1)?;
    let grads = Grads::from_backward(m.store(), &loss.backward()?);
    let h = 1e-5;
    for &p in probes {
        let g = grads.get(p).unwrap_or_else(|| panic!("{p}: no gradient"));
        let g = g.flatten_all()?.to_vec1::<f64>()?;
        let idx = (0..g.len())
            .max_by(|&i, &j| g[i].abs().total_cmp(&g[j].abs()))
            .unwrap();
        let g = g[idx];
        let orig = m.store().get(p)?;
        let mut v = orig.flatten_all()?.to_vec1::<f64>()?;
        let x = v[idx];
        let mut at = |delta: f64| -> Result<f64, Box<dyn std::error::Error>> {
            v[idx] = x + delta;
            m.store()
                .set(p, &Tensor::from_vec(v.clone(), orig.dims(), &Device::Cpu)?)?;
            loss_of(&m)
        };
        let numeric = (at(h)? - at(-h)?) / (2.0 * h);
        at(0.0)?;
        assert!(
            (g - numeric).abs() <= 1e-6 + 1e-4 * numeric.abs(),
            "{name} {p}[{idx}]: backward {g} vs finite difference {numeric}"
        );
        assert!(
            g != 0.0,
            "{name} {p}[{idx}]: a zero gradient checks nothing"
        );
    }
    Ok(())
}

#[test]
fn distilbert_gradients_match_finite_differences() -> R {
    gradients_match::<DistilBert>(
        "distilbert",
        &[
            "distilbert.embeddings.word_embeddings.weight",
            "distilbert.embeddings.position_embeddings.weight",
            "distilbert.embeddings.LayerNorm.weight",
            "distilbert.transformer.layer.0.attention.q_lin.weight",
            "distilbert.transformer.layer.0.attention.v_lin.bias",
            "distilbert.transformer.layer.1.attention.out_lin.weight",
            "distilbert.transformer.layer.1.sa_layer_norm.bias",
            "distilbert.transformer.layer.1.ffn.lin1.weight",
            "distilbert.transformer.layer.1.output_layer_norm.weight",
            "pre_classifier.weight",
            "classifier.bias",
        ],
    )
}

#[test]
fn roberta_gradients_match_finite_differences() -> R {
    gradients_match::<Roberta>(
        "roberta",
        &[
            "roberta.embeddings.word_embeddings.weight",
            "roberta.embeddings.position_embeddings.weight",
            "roberta.embeddings.token_type_embeddings.weight",
            "roberta.encoder.layer.0.attention.self.query.weight",
            "roberta.encoder.layer.0.attention.output.LayerNorm.weight",
            "roberta.encoder.layer.1.intermediate.dense.bias",
            "roberta.encoder.layer.1.output.dense.weight",
            "classifier.dense.weight",
            "classifier.out_proj.weight",
        ],
    )
}

/// A copy of fixture `name`'s checkpoint in a fresh folder, each tensor renamed by `rename`
/// (`None`: left out).
fn rewritten(name: &str, tag: &str, rename: impl Fn(&str) -> Option<String>) -> PathBuf {
    let src = fixture(name);
    let dir = tmpdir(&format!("{tag}-{name}"));
    let tensors =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let kept: Vec<(String, Tensor)> = tensors
        .into_iter()
        .filter_map(|(n, t)| rename(&n).map(|n| (n, t)))
        .collect();
    save_tensors(&dir.join("model.safetensors"), &kept).unwrap();
    std::fs::copy(src.join("config.json"), dir.join("config.json")).unwrap();
    dir
}

/// A checkpoint in the bare naming (the base model's: no prefix, no head) loads, reports its
/// naming and the fresh head, and encodes exactly as the prefixed one.
fn bare_naming_loads<A: Architecture>(name: &str) -> R {
    let prefix = format!("{}.", A::Config::NAMING.prefix);
    let dir = rewritten(name, "bare", |n| {
        n.strip_prefix(&prefix).map(str::to_string)
    });
    let (model, report) = SequenceClassifier::<A>::from_pretrained(&dir, &LoadOptions::default())?;
    assert_eq!(report.naming, "bare");
    assert!(report
        .newly_initialized
        .iter()
        .any(|n| n == "classifier.bias" || n == "classifier.out_proj.bias"));
    let prefixed = load::<A>(&fixture(name), DType::F32);
    let b = batch(&record(name), "input_ids", "attention_mask");
    let (x, y) = (model.encode(&b, false)?, prefixed.encode(&b, false)?);
    assert_eq!(
        x.flatten_all()?.to_vec1::<f32>()?,
        y.flatten_all()?.to_vec1::<f32>()?
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn bare_checkpoints_load_for_every_family() -> R {
    bare_naming_loads::<DistilBert>("distilbert")?;
    bare_naming_loads::<Roberta>("roberta")
}

/// Export → reload gives the same logits; the folder is a sequence classifier for
/// transformers (`architectures`, `id2label`) with the tokenizer files.
fn export_round_trips<A: Architecture>(name: &str, architecture: &str) -> R {
    let model = load::<A>(&fixture(name), DType::F32);
    let dir = tmpdir(&format!("export-{name}"));
    model.export_as(&dir, None)?;
    let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    assert_eq!(config["architectures"][0], architecture);
    let want: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture(name).join("config.json"))?)?;
    assert_eq!(config["id2label"], want["id2label"]);
    assert_eq!(config["model_type"], want["model_type"]);
    assert!(dir.join("tokenizer.json").is_file());
    let back = load::<A>(&dir, DType::F32);
    let b = batch(&record(name), "input_ids", "attention_mask");
    let (x, y) = (model.forward_t(&b, false)?, back.forward_t(&b, false)?);
    assert_eq!(x.to_vec2::<f32>()?, y.to_vec2::<f32>()?);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn exports_reload_with_the_same_logits() -> R {
    export_round_trips::<DistilBert>("distilbert", "DistilBertForSequenceClassification")?;
    export_round_trips::<Roberta>("roberta", "RobertaForSequenceClassification")?;
    export_round_trips::<Roberta>("xlm-roberta", "XLMRobertaForSequenceClassification")
}

/// Dropout is live in training only: two training forwards differ, eval forwards agree.
fn dropout_in_training_only<A: Architecture>(name: &str) -> R {
    let model = load::<A>(&fixture(name), DType::F32);
    let b = batch(&record(name), "input_ids", "attention_mask");
    let logits = |train: bool| {
        model
            .forward_t(&b, train)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap()
    };
    let eval = logits(false);
    assert_eq!(eval, logits(false));
    let (t1, t2) = (logits(true), logits(true));
    assert_ne!(t1, t2);
    assert_ne!(t1, eval);
    Ok(())
}

#[test]
fn dropout_drops_in_training_only() -> R {
    dropout_in_training_only::<DistilBert>("distilbert")?;
    dropout_in_training_only::<Roberta>("roberta")
}

/// A checkpoint without one of the encoder's tensors is refused, naming it.
fn missing_tensor_is_named<A: Architecture>(name: &str, missing: &str) -> R {
    let dir = rewritten(name, "missing", |n| (n != missing).then(|| n.to_string()));
    let err = SequenceClassifier::<A>::from_pretrained(&dir, &LoadOptions::default())
        .err()
        .expect("a checkpoint without a layer tensor is refused")
        .to_string();
    assert!(err.contains(missing), "{err}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn a_missing_tensor_is_named() -> R {
    missing_tensor_is_named::<DistilBert>(
        "distilbert",
        "distilbert.transformer.layer.1.ffn.lin2.weight",
    )?;
    missing_tensor_is_named::<Roberta>("roberta", "roberta.encoder.layer.0.output.dense.bias")
}
