//! Word + absolute position (+ token type) embeddings, then LayerNorm and dropout
//! (`{prefix}.{word_embeddings,position_embeddings,token_type_embeddings,LayerNorm}`; BERT,
//! RoBERTa and DistilBERT name them alike, DistilBERT without token types).

use crate::pass::Pass;
use candle_core::{Module, Tensor};
use finetune_core::nn::{embedding, layer_norm, Embedding, LayerNorm};
use finetune_core::{ParamStore, Result};

/// The sizes of the embedding block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EmbeddingSpec {
    /// Rows of the word embedding.
    pub vocab: usize,
    /// Rows of the position embedding.
    pub positions: usize,
    /// Rows of the token type embedding; `None`: the model has none.
    pub token_types: Option<usize>,
    /// Width of every row.
    pub hidden: usize,
    /// Epsilon of the LayerNorm.
    pub eps: f64,
    /// Dropout after the LayerNorm, in training.
    pub dropout: f64,
}

/// The embedding block under `prefix` (`bert.embeddings`).
pub struct Embeddings {
    word: Embedding,
    position: Embedding,
    token_type: Option<Embedding>,
    norm: LayerNorm,
    dropout: f64,
}

impl Embeddings {
    /// Every tensor of the block with its shape, in module order.
    pub fn tensors(prefix: &str, s: &EmbeddingSpec) -> Vec<(String, Vec<usize>)> {
        let mut out = vec![
            (
                format!("{prefix}.word_embeddings.weight"),
                vec![s.vocab, s.hidden],
            ),
            (
                format!("{prefix}.position_embeddings.weight"),
                vec![s.positions, s.hidden],
            ),
        ];
        if let Some(n) = s.token_types {
            out.push((
                format!("{prefix}.token_type_embeddings.weight"),
                vec![n, s.hidden],
            ));
        }
        out.push((format!("{prefix}.LayerNorm.weight"), vec![s.hidden]));
        out.push((format!("{prefix}.LayerNorm.bias"), vec![s.hidden]));
        out
    }

    /// The block `prefix` of the store.
    pub fn new(store: &ParamStore, prefix: &str, s: &EmbeddingSpec) -> Result<Self> {
        let p = |leaf: &str| format!("{prefix}.{leaf}");
        Ok(Self {
            word: embedding(store, &p("word_embeddings"), s.vocab, s.hidden)?,
            position: embedding(store, &p("position_embeddings"), s.positions, s.hidden)?,
            token_type: s
                .token_types
                .map(|n| embedding(store, &p("token_type_embeddings"), n, s.hidden))
                .transpose()?,
            norm: layer_norm(store, &p("LayerNorm"), s.hidden, s.eps)?,
            dropout: s.dropout,
        })
    }

    /// `ids` `[B, T]` u32 → `[B, T, H]`. `positions` `[B, T]` (default `0..T` for every row)
    /// and `token_types` `[B, T]` (default all 0) are u32 ids too.
    pub fn forward(
        &self,
        ids: &Tensor,
        positions: Option<&Tensor>,
        token_types: Option<&Tensor>,
        pass: &Pass,
    ) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let x = self.word.forward(ids)?;
        let dtype = x.dtype();
        let x = match positions {
            Some(p) => x.add(&self.position.forward(p)?.to_dtype(dtype)?)?,
            None => {
                let p = Tensor::arange(0u32, t as u32, ids.device())?;
                x.broadcast_add(&self.position.forward(&p)?.to_dtype(dtype)?)?
            }
        };
        let x = match &self.token_type {
            Some(emb) => {
                let zeros;
                let types = match token_types {
                    Some(tt) => tt,
                    None => {
                        zeros = Tensor::zeros((b, t), candle_core::DType::U32, ids.device())?;
                        &zeros
                    }
                };
                x.add(&emb.forward(types)?)?
            }
            None => x,
        };
        let x = self.norm.forward_with(&x, pass.ops)?;
        pass.dropout(&x, self.dropout)
    }
}
