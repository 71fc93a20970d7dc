//! The real all-MiniLM-L6-v2 weights (fetched by `scripts/fetch-assets.sh`): tokenisation,
//! loading the bare naming, dropout, and a few training steps that reduce the loss.

mod common;

use candle_core::{Device, Tensor};
use common::*;
use finetune_bert::{BertForSequenceClassification, BertTokenizer, LoadOptions};
use finetune_core::optim::AdamW;
use finetune_core::{Grads, GroupBuilder, OptimizerConfig, Result};

#[test]
fn tokenizer_gives_the_uncased_vocabulary_ids_with_either_file() -> Result<()> {
    let dir = minilm_dir();
    let tok = BertTokenizer::from_dir(&dir, 64, 512)?;
    assert_eq!(tok.encode("Hello world")?, vec![101, 7592, 2088, 102]);
    assert_eq!(
        tok.encode("The movie was GREAT!")?,
        vec![101, 1996, 3185, 2001, 2307, 999, 102]
    );
    // vocab.txt alone (no tokenizer.json) must tokenize the same way.
    let only_vocab = tmpdir("vocab-only");
    for f in ["vocab.txt", "tokenizer_config.json"] {
        std::fs::copy(dir.join(f), only_vocab.join(f)).unwrap();
    }
    let fallback = BertTokenizer::from_dir(&only_vocab, 64, 512)?;
    for s in [
        "Hello world",
        "The movie was GREAT!",
        "unbelievably tedious, yet oddly charming",
    ] {
        assert_eq!(fallback.encode(s)?, tok.encode(s)?, "{s}");
    }
    // Truncation and dynamic padding.
    let short = BertTokenizer::from_dir(&dir, 5, 512)?;
    assert_eq!(short.encode("one two three four five six")?.len(), 5);
    let b = tok.batch(&["a b c d", "a"], None, &Device::Cpu)?;
    assert_eq!(b.input_ids.dims(), &[2, 6]);
    assert_eq!(
        b.attention_mask.unwrap().to_vec2::<u32>()?[1],
        vec![1, 1, 1, 0, 0, 0]
    );
    assert!(BertTokenizer::from_dir(&dir, 1000, 512).is_err());
    std::fs::remove_dir_all(&only_vocab).ok();
    Ok(())
}

#[test]
fn a_few_training_steps_reduce_the_loss_and_dropout_is_live() -> Result<()> {
    let dir = minilm_dir();
    let opts = LoadOptions {
        labels: Some(vec!["negative".into(), "positive".into()]),
        ..LoadOptions::default()
    };
    let (model, report) = BertForSequenceClassification::from_pretrained(&dir, &opts)?;
    assert_eq!(report.naming, "bare");
    assert_eq!(
        report.newly_initialized,
        vec!["classifier.weight", "classifier.bias"]
    );
    let tok = BertTokenizer::from_dir(&dir, 32, 512)?;
    let texts = [
        "a wonderful, moving film",
        "brilliant acting and a great story",
        "I loved every minute of it",
        "a delightful surprise",
        "dull, boring and far too long",
        "a terrible waste of time",
        "the plot makes no sense at all",
        "awful dialogue and flat characters",
    ];
    let dev = Device::Cpu;
    let batch = tok.batch(&texts, None, &dev)?;
    let targets = Tensor::new(&[1u32, 1, 1, 1, 0, 0, 0, 0], &dev)?;

    let e1 = model.forward_t(&batch, false)?;
    assert_eq!(max_abs_diff(&e1, &model.forward_t(&batch, false)?), 0.0);
    assert!(
        max_abs_diff(
            &model.forward_t(&batch, true)?,
            &model.forward_t(&batch, true)?
        ) > 1e-5
    );

    let eval_loss = |m: &BertForSequenceClassification| -> Result<f32> {
        Ok(m.loss(&m.forward_t(&batch, false)?, &targets, 0.0)?
            .to_scalar::<f32>()?)
    };
    let before = eval_loss(&model)?;
    let groups = GroupBuilder::new(1e-4, 0.01).build(model.store())?;
    let mut opt = OptimizerConfig::AdamW(AdamW::default()).build(groups)?;
    for _ in 0..6 {
        let loss = model.loss(&model.forward_t(&batch, true)?, &targets, 0.0)?;
        opt.step(
            model.store(),
            &Grads::from_backward(model.store(), &loss.backward()?),
        )?;
    }
    let after = eval_loss(&model)?;
    assert!(
        after < 0.8 * before,
        "loss did not drop: {before} -> {after}"
    );
    Ok(())
}
