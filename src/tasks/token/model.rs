//! A token tagger: a token classifier of any text family with its tokenizer.

use super::align::inside_classes;
use super::data::TagRecord;
use super::predict::TokenPrediction;
use super::source::TokenBatches;
use crate::families::{ModelSource, TokenLoader};
use crate::tasks::text::TextModelOptions;
use anyhow::{anyhow, Result};
use candle_core::{DType, Device};
use finetune_bert::{BertBatch, BertTokenizer};
use finetune_train::{SampleBar, TrainModel};
use std::path::Path;

/// What the token task needs of a model besides training it.
pub trait TokenModel: TrainModel<Inputs = BertBatch> {
    /// Tag names in id order.
    fn labels(&self) -> Vec<String>;
    /// Writes the model and its tokenizer files for transformers into `dir`; floating tensors
    /// in `dtype` when given.
    fn export_as(&self, dir: &Path, dtype: Option<DType>) -> finetune_core::Result<()>;
}

/// A token classifier with its tokenizer, on a device.
pub struct TokenTagger {
    model: Box<dyn TokenModel>,
    tokenizer: BertTokenizer,
    device: Device,
}

impl TokenTagger {
    /// A tagger of `model` with `tokenizer`, on `device` (where its weights must be).
    pub fn new(model: Box<dyn TokenModel>, tokenizer: BertTokenizer, device: &Device) -> Self {
        Self {
            model,
            tokenizer,
            device: device.clone(),
        }
    }

    /// Loads a resolved model's token classifier through its family (options as the text
    /// task's: labels, head, max length, dropout, seed).
    pub fn from_source(
        src: &ModelSource,
        opts: &TextModelOptions,
        device: &Device,
    ) -> Result<Self> {
        let load: TokenLoader = src
            .family
            .token
            .ok_or_else(|| anyhow!("{} ({}) has no token classifier", src.name, src.family.name))?;
        let store = |t: &Self| t.model().store().clone();
        crate::families::load_with_adapter(src, opts, |o| load(src, o, device), store)
    }

    /// The model, as the learner trains it.
    pub fn model(&self) -> &dyn TokenModel {
        self.model.as_ref()
    }

    /// Tag names in id order.
    pub fn labels(&self) -> Vec<String> {
        self.model.labels()
    }

    /// Tokens per sentence, special tokens included.
    pub fn max_length(&self) -> usize {
        self.tokenizer.max_length()
    }

    /// Batches of `records`, tokenised once; `label_all_tokens` labels every piece of a word.
    pub fn batches<'a>(
        &'a self,
        records: &[TagRecord],
        label_all_tokens: bool,
    ) -> Result<TokenBatches<'a>> {
        let inside = label_all_tokens.then(|| inside_classes(&self.labels()));
        Ok(TokenBatches::new(
            records,
            &self.tokenizer,
            inside.as_deref(),
            &self.device,
        )?)
    }

    /// Entities, tokens and per-token logits for each text, in eval mode.
    pub fn predict(&self, texts: &[&str]) -> Result<Vec<TokenPrediction>> {
        let labels = self.labels();
        let prefix = self.tokenizer.continuing_subword_prefix();
        let unk = self.tokenizer.unk_token();
        let bar = SampleBar::new("predicting", texts.len());
        let mut out = Vec::with_capacity(texts.len());
        for text in texts {
            let pieces = self.tokenizer.encode_text(text)?;
            let batch = self.tokenizer.pad(&[&pieces], &self.device)?;
            let logits = self.model.forward_t(&batch, false)?.squeeze(0)?;
            let rows: Vec<Vec<f32>> = logits.to_dtype(DType::F32)?.to_vec2()?;
            let words = super::predict::Words {
                subword_prefix: prefix.as_deref(),
                unk: unk.as_deref(),
            };
            out.push(TokenPrediction::new(text, &pieces, rows, &labels, &words));
            bar.set(out.len());
        }
        Ok(out)
    }
}
