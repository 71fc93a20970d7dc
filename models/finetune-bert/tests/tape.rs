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

#[test]
fn recorded_and_candle_backward_agree_on_every_parameter() -> Result<()> {
    for frozen in [false, true] {
        let mut config = common::tiny_config();
        // No dropout: the two forwards below must be the same function.
        config.hidden_dropout_prob = 0.0;
        config.attention_probs_dropout_prob = 0.0;
        config.set_labels(&["a", "b"]);
        let model = BertForSequenceClassification::init(config, DType::F32, &Device::Cpu, 3)?;
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
