//! BERT on tiny checkpoints written by the test: both namings, export round trip, eval parity
//! with candle-transformers, dropout, a whole-model gradient check, and load errors.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use finetune_bert::{BertForSequenceClassification, LoadOptions, ProblemType};
use finetune_core::{Grads, Result};

#[test]
fn both_namings_load_and_export_round_trips_with_identical_logits() -> Result<()> {
    let cfg = tiny_config();
    let w = random_weights(&cfg, 1);
    let dev = Device::Cpu;
    for naming in [Naming::BareLegacy, Naming::Prefixed] {
        let dir = tmpdir(if naming == Naming::Prefixed {
            "pre"
        } else {
            "bare"
        });
        write_checkpoint(&dir, &cfg, &w, naming);
        let opts = LoadOptions {
            labels: Some(vec!["neg".into(), "pos".into()]),
            ..LoadOptions::default()
        };
        let (model, report) = BertForSequenceClassification::from_pretrained(&dir, &opts)?;
        match naming {
            Naming::BareLegacy => {
                assert_eq!(report.naming, "bare");
                assert_eq!(
                    report.newly_initialized,
                    vec!["classifier.weight", "classifier.bias"]
                );
                assert!(
                    report.unused.contains(&"cls.predictions.bias".to_string()),
                    "{report}"
                );
                assert!(
                    report.unused_buffers == ["embeddings.position_ids"]
                        && !report.to_string().contains("position_ids"),
                    "{report}"
                );
                // gamma/beta landed under the model's names, with the checkpoint's values.
                let g = model
                    .store()
                    .get("bert.encoder.layer.1.output.LayerNorm.weight")?;
                assert_eq!(
                    max_abs_diff(&g, &w["bert.encoder.layer.1.output.LayerNorm.weight"]),
                    0.0
                );
            }
            Naming::Prefixed => {
                assert_eq!(report.naming, "prefixed");
                assert!(
                    report.newly_initialized.is_empty() && report.unused.is_empty(),
                    "{report}"
                );
                let c = model.store().get("classifier.weight")?;
                assert_eq!(max_abs_diff(&c, &w["classifier.weight"]), 0.0);
            }
        }
        let logits = model.forward_t(&batch(&dev), false)?;
        assert_eq!(logits.dims(), &[3, 2]);
        let out = dir.join("export");
        model.export_as(&out, None)?;
        let exported = finetune_core::safetensors_io::Checkpoint::open(&out)?;
        let mut names: Vec<String> = exported.headers().iter().map(|h| h.name.clone()).collect();
        names.sort();
        let mut want: Vec<String> = w.keys().cloned().collect();
        want.sort();
        assert_eq!(
            names, want,
            "export writes exactly the transformers state-dict keys"
        );
        let cfg_json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
        assert_eq!(
            cfg_json["architectures"][0],
            "BertForSequenceClassification"
        );
        assert_eq!(cfg_json["id2label"]["1"], "pos");
        let (back, report) =
            BertForSequenceClassification::from_pretrained(&out, &LoadOptions::default())?;
        assert!(report.newly_initialized.is_empty(), "{report}");
        assert_eq!(
            max_abs_diff(&back.forward_t(&batch(&dev), false)?, &logits),
            0.0
        );
        std::fs::remove_dir_all(&dir).ok();
    }
    Ok(())
}

#[test]
fn eval_hidden_states_match_candle_transformers() -> Result<()> {
    let cfg = tiny_config();
    let w = random_weights(&cfg, 2);
    let dir = tmpdir("parity");
    write_checkpoint(&dir, &cfg, &w, Naming::Prefixed);
    let (ours, _) = BertForSequenceClassification::from_pretrained(&dir, &LoadOptions::default())?;
    let dev = Device::Cpu;
    let b = batch(&dev);
    let mine = ours.encode(&b, false)?;

    let vb = candle_nn::VarBuilder::from_tensors(w.clone(), DType::F32, &dev);
    let tcfg: candle_transformers::models::bert::Config =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    let reference = candle_transformers::models::bert::BertModel::load(vb, &tcfg)?;
    let theirs = reference.forward(
        &b.input_ids,
        b.token_type_ids.as_ref().unwrap(),
        b.attention_mask.as_ref(),
    )?;
    let diff = max_abs_diff(&mine, &theirs);
    assert!(diff < 1e-5, "max |ours - candle-transformers| = {diff}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn dropout_drops_in_training_only_and_is_seedable() -> Result<()> {
    let cfg = tiny_config();
    let dir = tmpdir("dropout");
    write_checkpoint(&dir, &cfg, &random_weights(&cfg, 3), Naming::Prefixed);
    let (m, _) = BertForSequenceClassification::from_pretrained(&dir, &LoadOptions::default())?;
    let b = batch(&Device::Cpu);
    let e1 = m.forward_t(&b, false)?;
    let e2 = m.forward_t(&b, false)?;
    assert_eq!(max_abs_diff(&e1, &e2), 0.0, "eval is deterministic");
    let saved = m.rng_state();
    let t1 = m.forward_t(&b, true)?;
    let t2 = m.forward_t(&b, true)?;
    assert!(
        max_abs_diff(&t1, &t2) > 1e-4,
        "two train-mode forwards must differ"
    );
    assert!(
        max_abs_diff(&t1, &e1) > 1e-4,
        "train mode must differ from eval"
    );
    m.set_rng_state(saved);
    assert_eq!(
        max_abs_diff(&m.forward_t(&b, true)?, &t1),
        0.0,
        "same RNG state, same masks"
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn whole_classifier_gradients_match_finite_differences() -> Result<()> {
    let dev = Device::Cpu;
    gradcheck_problem(None, Tensor::new(&[1u32, 0, 1], &dev)?, "gradcheck")
}

/// The multi-label head's BCE and the regression head's MSE train the whole model too.
#[test]
fn multi_label_and_regression_gradients_match_finite_differences() -> Result<()> {
    let dev = Device::Cpu;
    let multi = Tensor::new(&[[1f64, 0.0], [0.0, 0.0], [1.0, 1.0]], &dev)?;
    gradcheck_problem(
        Some(ProblemType::MultiLabelClassification),
        multi,
        "gradcheck-multi",
    )?;
    let values = Tensor::new(&[0.5f64, -1.0, 2.0], &dev)?;
    gradcheck_problem(
        Some(ProblemType::Regression),
        values,
        "gradcheck-regression",
    )
}

fn gradcheck_problem(problem: Option<ProblemType>, targets: Tensor, tag: &str) -> Result<()> {
    let cfg = tiny_config();
    let dir = tmpdir(tag);
    write_checkpoint(&dir, &cfg, &random_weights(&cfg, 4), Naming::Prefixed);
    let opts = LoadOptions {
        dtype: DType::F64,
        problem_type: problem,
        labels: (problem == Some(ProblemType::Regression)).then(|| vec!["LABEL_0".into()]),
        ..LoadOptions::default()
    };
    let (m, _) = BertForSequenceClassification::from_pretrained(&dir, &opts)?;
    let dev = Device::Cpu;
    let b = batch(&dev);
    let loss_of = |m: &BertForSequenceClassification| -> Result<Tensor> {
        let logits = m.forward_t(&b, false)?;
        m.loss(&logits, &targets, 0.1)
    };
    let grads = Grads::from_backward(m.store(), &loss_of(&m)?.backward()?);
    let probes = [
        ("bert.embeddings.word_embeddings.weight", 9 * 16 + 3),
        ("bert.embeddings.LayerNorm.weight", 5),
        ("bert.encoder.layer.0.attention.self.query.weight", 17),
        ("bert.encoder.layer.0.attention.self.key.bias", 2),
        ("bert.encoder.layer.1.intermediate.dense.weight", 40),
        ("bert.encoder.layer.1.output.LayerNorm.bias", 7),
        ("bert.pooler.dense.weight", 33),
        ("classifier.weight", 11),
    ];
    let h = 1e-5;
    for (name, idx) in probes {
        let g = grads
            .get(name)
            .unwrap_or_else(|| panic!("{name} has a gradient"))
            .flatten_all()?
            .to_vec1::<f64>()?[idx];
        let orig = m.store().get(name)?;
        let shape = orig.dims().to_vec();
        let mut v = orig.flatten_all()?.to_vec1::<f64>()?;
        let x = v[idx];
        let mut at = |delta: f64| -> Result<f64> {
            v[idx] = x + delta;
            m.store()
                .set(name, &Tensor::from_vec(v.clone(), shape.as_slice(), &dev)?)?;
            Ok(loss_of(&m)?.to_scalar::<f64>()?)
        };
        let numeric = (at(h)? - at(-h)?) / (2.0 * h);
        at(0.0)?;
        assert!(
            (g - numeric).abs() <= 1e-6 + 1e-4 * numeric.abs(),
            "{name}[{idx}]: backward {g} vs finite difference {numeric}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn missing_or_misshapen_encoder_tensors_are_named_errors() {
    let cfg = tiny_config();
    let mut w = random_weights(&cfg, 5);
    let dir = tmpdir("errors");
    w.remove("bert.encoder.layer.1.output.dense.weight");
    write_checkpoint(&dir, &cfg, &w, Naming::Prefixed);
    let e = BertForSequenceClassification::from_pretrained(&dir, &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("bert.encoder.layer.1.output.dense.weight"),
        "{e}"
    );

    let mut w = random_weights(&cfg, 5);
    w.insert(
        "bert.encoder.layer.0.attention.self.query.weight".into(),
        Tensor::zeros((16, 8), DType::F32, &Device::Cpu).unwrap(),
    );
    write_checkpoint(&dir, &cfg, &w, Naming::Prefixed);
    let e = BertForSequenceClassification::from_pretrained(&dir, &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("attention.self.query.weight")
            && e.contains("[16, 16]")
            && e.contains("[16, 8]"),
        "{e}"
    );

    // A head of another size is re-initialised and reported, not an error.
    let w = random_weights(&cfg, 5);
    write_checkpoint(&dir, &cfg, &w, Naming::Prefixed);
    let opts = LoadOptions {
        labels: Some(vec!["a".into(), "b".into(), "c".into()]),
        ..LoadOptions::default()
    };
    let (m, report) = BertForSequenceClassification::from_pretrained(&dir, &opts).unwrap();
    assert_eq!(report.resized.len(), 2, "{report}");
    assert_eq!(m.store().get("classifier.weight").unwrap().dims(), &[3, 16]);

    // New classes of the same count: a head that fits is kept unless `new_head` asks.
    let same_count = |new_head| LoadOptions {
        labels: Some(vec!["x".into(), "y".into()]),
        new_head,
        ..LoadOptions::default()
    };
    let ckpt_w = &w["classifier.weight"];
    let (kept, report) =
        BertForSequenceClassification::from_pretrained(&dir, &same_count(false)).unwrap();
    assert!(report.resized.is_empty(), "{report}");
    let kept_w = kept.store().get("classifier.weight").unwrap();
    assert_eq!(
        kept_w.to_vec2::<f32>().unwrap(),
        ckpt_w.to_vec2::<f32>().unwrap()
    );
    let (fresh, report) =
        BertForSequenceClassification::from_pretrained(&dir, &same_count(true)).unwrap();
    assert_eq!(report.resized.len(), 2, "{report}");
    let fresh_w = fresh.store().get("classifier.weight").unwrap();
    assert_eq!(fresh_w.dims(), ckpt_w.dims());
    assert_ne!(
        fresh_w.to_vec2::<f32>().unwrap(),
        ckpt_w.to_vec2::<f32>().unwrap()
    );
    assert_eq!(fresh.config().classifier.labels(), vec!["x", "y"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn half_precision_and_sharded_checkpoints_load_as_f32() -> Result<()> {
    let cfg = tiny_config();
    let w = random_weights(&cfg, 6);
    let dir = tmpdir("shards");
    let mut names: Vec<&String> = w.keys().collect();
    names.sort();
    let (a, b) = names.split_at(names.len() / 2);
    let mut map = serde_json::Map::new();
    for (i, part) in [a, b].iter().enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", i + 1);
        let tensors: Vec<(String, Tensor)> = part
            .iter()
            .map(|n| ((*n).clone(), w[*n].to_dtype(DType::F16).unwrap()))
            .collect();
        for (n, _) in &tensors {
            map.insert(n.clone(), serde_json::json!(file));
        }
        finetune_core::safetensors_io::save_tensors(&dir.join(&file), &tensors)?;
    }
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        serde_json::json!({"weight_map": map}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("config.json"), serde_json::to_vec(&cfg).unwrap()).unwrap();
    let (m, report) =
        BertForSequenceClassification::from_pretrained(&dir, &LoadOptions::default())?;
    assert!(report.newly_initialized.is_empty(), "{report}");
    let q = m
        .store()
        .get("bert.encoder.layer.0.attention.self.query.weight")?;
    assert_eq!(q.dtype(), DType::F32);
    let want = w["bert.encoder.layer.0.attention.self.query.weight"].to_dtype(DType::F16)?;
    assert_eq!(max_abs_diff(&q, &want), 0.0);
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn freezing_and_layer_decay_address_exported_names_whatever_the_checkpoint_naming() -> Result<()> {
    use finetune_bert::naming::layer_depth;
    use finetune_core::optim::Sgd;
    use finetune_core::{FreezeSpec, GroupBuilder, OptimizerConfig};
    use std::sync::Arc;
    let cfg = tiny_config();
    let dir = tmpdir("freeze-bare");
    write_checkpoint(&dir, &cfg, &random_weights(&cfg, 4), Naming::BareLegacy);
    let opts = LoadOptions {
        labels: Some(vec!["neg".into(), "pos".into()]),
        ..LoadOptions::default()
    };
    let (model, _) = BertForSequenceClassification::from_pretrained(&dir, &opts)?;
    let frozen = FreezeSpec::from_patterns(
        &["bert.embeddings.*", "bert.encoder.layer.0.*"],
        &[] as &[&str],
    )?;
    let n = frozen.apply(model.store())?;
    assert!(n > 0);
    // Copies: the optimizer updates the store's tensors in place.
    let before: Vec<(String, Tensor)> = model
        .store()
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.copy().unwrap()))
        .collect();

    // Layer-wise decay 0.5 over 2 layers: embeddings 0.5^3, layer 1 0.5, classifier 1.
    let groups = GroupBuilder::new(0.1, 0.0)
        .layer_decay(0.5, cfg.num_hidden_layers, Arc::new(layer_depth))
        .build(model.store())?;
    let lr_of = |name: &str| {
        groups
            .iter()
            .find(|g| g.params.iter().any(|p| p == name))
            .map(|g| g.lr)
    };
    assert_eq!(
        lr_of("bert.encoder.layer.1.output.dense.weight"),
        Some(0.1 * 0.5)
    );
    assert_eq!(lr_of("classifier.weight"), Some(0.1));
    // Frozen parameters stay in their groups (gradual unfreezing), the optimizer skips them.
    assert_eq!(
        lr_of("bert.embeddings.word_embeddings.weight"),
        Some(0.1 * 0.125)
    );

    let mut opt = OptimizerConfig::Sgd(Sgd::default()).build(groups)?;
    let targets = Tensor::new(&[0u32, 1, 1], &Device::Cpu)?;
    let loss = model.loss(&model.forward_t(&batch(&Device::Cpu), true)?, &targets, 0.0)?;
    let grads = Grads::from_backward(model.store(), &loss.backward()?);
    assert!(grads
        .get("bert.encoder.layer.0.attention.self.query.weight")
        .is_none());
    assert!(grads
        .get("bert.encoder.layer.1.attention.self.query.weight")
        .is_some());
    opt.step(model.store(), &grads)?;
    for (name, old) in before {
        let moved = max_abs_diff(&old, &model.store().get(&name)?) > 0.0;
        let frozen =
            name.starts_with("bert.embeddings.") || name.starts_with("bert.encoder.layer.0.");
        // The key bias shifts every score of a query equally, so softmax makes its gradient zero.
        if name.ends_with("key.bias") {
            assert!(!moved || !frozen, "{name}");
        } else {
            assert_eq!(moved, !frozen, "{name}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// In half precision the padding mask is the dtype's own minimum (transformers' `finfo.min`):
/// logits stay finite and close to f32's (f32's minimum would be −∞ there, and 0 · −∞ NaN).
#[test]
fn half_precision_forward_with_padding_is_finite_and_close_to_f32() -> Result<()> {
    let cfg = tiny_config();
    let f32_model = BertForSequenceClassification::init(cfg.clone(), DType::F32, &Device::Cpu, 9)?;
    let want: Vec<Vec<f32>> = f32_model
        .forward_t(&batch(&Device::Cpu), false)?
        .to_vec2()?;
    for dtype in [DType::F16, DType::BF16] {
        // The same draws, rounded to `dtype`.
        let m = BertForSequenceClassification::init(cfg.clone(), dtype, &Device::Cpu, 9)?;
        let got = m
            .forward_t(&batch(&Device::Cpu), false)?
            .to_dtype(DType::F32)?;
        let got: Vec<Vec<f32>> = got.to_vec2()?;
        for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
            assert!(g.is_finite(), "{dtype:?}: {got:?}");
            assert!(
                (g - w).abs() < 0.05 + 0.05 * w.abs(),
                "{dtype:?}: {got:?} vs {want:?}"
            );
        }
    }
    Ok(())
}
