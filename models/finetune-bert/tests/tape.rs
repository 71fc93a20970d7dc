//! A training step's recorded backward (`finetune_kernels::tape`, as the learner and the bench
//! run it) gives every parameter the gradient candle's own backward gives, bit for bit: the
//! encoder runs on the tape below the cut at its output, and only the embeddings' sums are
//! handed back to candle.

mod common;

use candle_core::{DType, Device, Tensor};
use finetune_bert::{BertBatch, BertForSequenceClassification};
use finetune_core::{FreezeSpec, Result};
use finetune_kernels::tape::{self, Recording};

fn batch() -> Result<(BertBatch, Tensor)> {
    let dev = Device::Cpu;
    let ids: Vec<u32> = (0..24).map(|i| (i * 7 + 3) % 50).collect();
    let mask: Vec<u32> = (0..24).map(|i| u32::from(i % 12 < 9 || i >= 12)).collect();
    Ok((
        BertBatch {
            input_ids: Tensor::from_vec(ids, (2, 12), &dev)?,
            token_type_ids: None,
            attention_mask: Some(Tensor::from_vec(mask, (2, 12), &dev)?),
        },
        Tensor::new(&[1u32, 0], &dev)?,
    ))
}

/// A tiny classifier without dropout: two forwards of it are the same function.
fn model_without_dropout() -> Result<BertForSequenceClassification> {
    let mut config = common::tiny_config();
    config.hidden_dropout_prob = 0.0;
    config.attention_probs_dropout_prob = 0.0;
    config.set_labels(&["a", "b"]);
    BertForSequenceClassification::init(config, DType::F32, &Device::Cpu, 3)
}

#[test]
fn recorded_and_candle_backward_agree_on_every_parameter() -> Result<()> {
    for frozen in [false, true] {
        let model = model_without_dropout()?;
        let store = model.store();
        if frozen {
            FreezeSpec::from_patterns(
                &["bert.embeddings.*", "bert.encoder.layer.0.*"],
                &[] as &[&str],
            )?
            .apply(store)?;
        }
        let (b, labels) = batch()?;
        let loss = || model.loss(&model.forward_t(&b, true)?, &labels, 0.0);
        let reference = loss()?.backward()?;
        let recording = Recording::start();
        let (grads, report) = recording.backward_report(&loss()?)?;
        // Frozen embeddings: nothing below the encoder is left for candle.
        let below = usize::from(!frozen);
        assert_eq!(
            report.handed_to_candle, below,
            "frozen {frozen}: {report:?}"
        );
        let layers = if frozen { 1 } else { 2 };
        assert!(
            report.tape_nodes >= 10 * layers,
            "frozen {frozen}: {report:?}"
        );
        let cmp = tape::compare(store.trainable_vars(), &reference, &grads)?;
        assert!(
            cmp.differing.is_empty(),
            "frozen {frozen}: {:?}",
            cmp.differing
        );
        assert!(cmp.identical >= 16 * layers, "frozen {frozen}: {cmp:?}");
    }
    Ok(())
}

/// With LoRA adapters on every linear layer of the encoder, the whole encoder, adapters
/// included, stays on the tape (only each adapter's packed `[bias | A | B]`, the `cat` its
/// fused layer reads, is left to candle); the gradients equal candle's to rounding and are the
/// same on every run.
#[test]
fn lora_adapters_are_recorded_and_agree_with_candle() -> Result<()> {
    use finetune_core::lora::{self, LoraConfig, LoraSettings};
    let model = model_without_dropout()?;
    let store = model.store();
    let layout = finetune_bert::naming::layout();
    let config = LoraConfig {
        r: 2,
        alpha: 4.0,
        dropout: 0.0,
        target: vec!["encoder.*".into()],
        use_rslora: false,
    };
    let modules = lora::select_modules(&config.target, &store.modules(), &layout)?;
    assert_eq!(modules.len(), 12, "six linear layers in each of two layers");
    let settings = LoraSettings {
        config,
        modules,
        modules_to_save: layout.head_modules(),
        base_model: "tiny".into(),
        revision: None,
        task_type: None,
    };
    lora::add_adapters(store, settings, &mut finetune_core::Rng::seed_from_u64(1))?;
    let mut rng = finetune_core::Rng::seed_from_u64(2);
    for (name, t) in store.tensors() {
        if name.ends_with("lora_B.weight") {
            let b = finetune_core::nn::init::normal(
                t.dims(),
                0.0,
                0.1,
                &mut rng,
                t.dtype(),
                t.device(),
            )?;
            store.set(&name, &b)?;
        }
    }
    lora::train_rules(store)?.unwrap().apply_fresh(store)?;
    let (b, labels) = batch()?;
    let loss = || model.loss(&model.forward_t(&b, true)?, &labels, 0.0);
    let reference = loss()?.backward()?;
    let mut runs = Vec::new();
    for _ in 0..3 {
        let (grads, report) = Recording::start().backward_report(&loss()?)?;
        // Where several gradients meet one tensor (a layer's input feeds the base layers and
        // the adapters), the tape sums them in another order than candle: equal to rounding.
        for (name, v) in store.trainable_vars() {
            let want = reference
                .get(v.as_tensor())
                .expect("candle gives a gradient");
            let got = grads.get(v.as_tensor()).expect("the tape gives a gradient");
            let scale = want.abs()?.max_all()?.to_scalar::<f32>()?.max(1e-9);
            let diff = (want - got)?.abs()?.max_all()?.to_scalar::<f32>()?;
            assert!(diff <= 1e-4 * scale, "{name}: {diff} of {scale}");
        }
        // Each adapted layer is one node with its adapter (the ten or so of each encoder
        // layer); only each adapter's packed tensors are left to candle.
        assert_eq!(report.handed_to_candle, 12, "{report:?}");
        assert!(report.tape_nodes >= 2 * 10, "{report:?}");
        runs.push(grads);
    }
    let again = tape::compare(store.trainable_vars(), &runs[0], &runs[2])?;
    assert!(again.differing.is_empty(), "{:?}", again.differing);
    Ok(())
}
