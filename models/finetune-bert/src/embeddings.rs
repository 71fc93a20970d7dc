//! Word + absolute position + token type embeddings, then LayerNorm and dropout
//! (`bert.embeddings.*`).

use crate::config::BertConfig;
use crate::pass::Pass;
use candle_core::{DType, Module, Tensor};
use finetune_core::nn::{embedding, layer_norm, Embedding, LayerNorm};
use finetune_core::{ParamStore, Result};

pub struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Embedding,
    norm: LayerNorm,
    dropout: f64,
}

impl Embeddings {
    pub fn new(store: &ParamStore, c: &BertConfig) -> Result<Self> {
        let p = "bert.embeddings";
        let h = c.hidden_size;
        Ok(Self {
            word: embedding(store, &format!("{p}.word_embeddings"), c.vocab_size, h)?,
            position: embedding(
                store,
                &format!("{p}.position_embeddings"),
                c.max_position_embeddings,
                h,
            )?,
            token_type: embedding(
                store,
                &format!("{p}.token_type_embeddings"),
                c.type_vocab_size,
                h,
            )?,
            norm: layer_norm(store, &format!("{p}.LayerNorm"), h, c.layer_norm_eps)?,
            dropout: c.hidden_dropout_prob,
        })
    }

    /// `ids`, `token_types`: `[B, T]` u32 → `[B, T, H]`.
    pub fn forward(&self, ids: &Tensor, token_types: &Tensor, pass: &Pass) -> Result<Tensor> {
        let (_, t) = ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, ids.device())?;
        let x = self
            .word
            .forward(ids)?
            .broadcast_add(&self.position.forward(&positions)?.to_dtype(self.dtype()?)?)?
            .add(&self.token_type.forward(token_types)?)?;
        let x = self.norm.forward_with(&x, pass.ops)?;
        pass.dropout(&x, self.dropout)
    }

    fn dtype(&self) -> Result<DType> {
        Ok(self.word.weight().tensor().dtype())
    }
}
