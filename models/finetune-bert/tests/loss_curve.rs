//! The fused ops change speed, not results: 20 AdamW steps of a small random BERT (dropout
//! on, padded batch) give the same loss curve, to 1e-4, on the fused kernels and on candle's
//! stock compositions (the fused side's backward over the recorded tape, as the learner
//! runs it) — with everything training, and with the bottom frozen (where the
//! fused ops skip the gradients nobody needs).

mod common;

use candle_core::{DType, Device, Tensor};
use finetune_bert::{BertBatch, BertForSequenceClassification};
use finetune_core::optim::AdamW;
use finetune_core::{FreezeSpec, Grads, GroupBuilder, OptimizerConfig, Result, Rng};
use finetune_kernels::ops::OpSet;
use finetune_kernels::tape::Recording;

const STEPS: usize = 20;

fn batch(rng: &mut Rng) -> Result<(BertBatch, Tensor)> {
    let (b, t) = (4, 12);
    let ids: Vec<u32> = (0..b * t).map(|_| rng.below(50) as u32).collect();
    // Sequences of lengths 12, 9, 5, 12: the rest is padding.
    let lens = [12, 9, 5, 12];
    let mask: Vec<u32> = (0..b * t).map(|i| u32::from(i % t < lens[i / t])).collect();
    let types: Vec<u32> = (0..b * t).map(|i| u32::from(i % t >= 6)).collect();
    let dev = Device::Cpu;
    let batch = BertBatch {
        input_ids: Tensor::from_vec(ids, (b, t), &dev)?,
        token_type_ids: Some(Tensor::from_vec(types, (b, t), &dev)?),
        attention_mask: Some(Tensor::from_vec(mask, (b, t), &dev)?),
    };
    let labels = Tensor::new(&[0u32, 1, 1, 0], &dev)?;
    Ok((batch, labels))
}

fn loss_curve(ops: OpSet, freeze: Option<&[&str]>) -> Result<Vec<f32>> {
    let mut config = common::tiny_config();
    config.hidden_dropout_prob = 0.1;
    config.attention_probs_dropout_prob = 0.1;
    config.set_labels(&["a", "b"]);
    let mut model = BertForSequenceClassification::init(config, DType::F32, &Device::Cpu, 7)?;
    model.set_op_set(ops);
    if let Some(patterns) = freeze {
        FreezeSpec::from_patterns(patterns, &[] as &[&str])?.apply(model.store())?;
    }
    let groups = GroupBuilder::new(1e-3, 0.01).build(model.store())?;
    let mut opt = OptimizerConfig::AdamW(AdamW::default()).build(groups)?;
    // One batch, fitted for 20 steps: the loss must fall, so the curves are not flat.
    let (b, labels) = batch(&mut Rng::seed_from_u64(11))?;
    let mut losses = Vec::new();
    for _ in 0..STEPS {
        // The fused side runs its backward as the learner does, over the recorded tape.
        let recording = (ops == OpSet::Fused).then(Recording::start);
        let loss = model.loss(&model.forward_t(&b, true)?, &labels, 0.0)?;
        losses.push(loss.to_scalar::<f32>()?);
        let grads = match recording {
            Some(r) => r.backward(&loss)?,
            None => loss.backward()?,
        };
        let grads = Grads::from_backward(model.store(), &grads);
        opt.step(model.store(), &grads)?;
    }
    Ok(losses)
}

fn assert_same_curve(fused: &[f32], stock: &[f32]) {
    assert_eq!(fused.len(), STEPS);
    for (i, (f, s)) in fused.iter().zip(stock).enumerate() {
        assert!(
            (f - s).abs() <= 1e-4,
            "step {i}: fused {f} vs stock {s}\nfused {fused:?}\nstock {stock:?}"
        );
    }
    // The curve moved: the comparison is not of two constant sequences.
    assert!(
        fused[STEPS - 1] < fused[0] - 0.01,
        "the loss hardly fell: {fused:?}"
    );
}

#[test]
fn fused_and_stock_ops_give_the_same_loss_curve() -> Result<()> {
    let fused = loss_curve(OpSet::Fused, None)?;
    let stock = loss_curve(OpSet::Stock, None)?;
    assert_same_curve(&fused, &stock);
    Ok(())
}

#[test]
fn same_curve_with_the_bottom_frozen() -> Result<()> {
    let frozen: &[&str] = &["bert.embeddings.*", "bert.encoder.layer.0.*"];
    let fused = loss_curve(OpSet::Fused, Some(frozen))?;
    let stock = loss_curve(OpSet::Stock, Some(frozen))?;
    assert_same_curve(&fused, &stock);
    Ok(())
}
