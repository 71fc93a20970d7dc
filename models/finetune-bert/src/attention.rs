//! Multi-head self-attention with its output projection and residual LayerNorm, under the
//! names a family gives them ([`LayerNames`]: BERT's `attention.self.{query,key,value}`,
//! `attention.output.{dense,LayerNorm}`; DistilBERT's `attention.{q,k,v,out}_lin`,
//! `sa_layer_norm`).

use crate::encoder::{EncoderSpec, LayerNames};
use crate::pass::Pass;
use candle_core::Tensor;
use finetune_core::nn::{layer_norm, linear, LayerNorm, Linear};
use finetune_core::{ParamStore, Result};

pub struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    norm: LayerNorm,
    heads: usize,
    attn_dropout: f64,
    output_dropout: f64,
}

impl Attention {
    pub fn new(store: &ParamStore, s: &EncoderSpec, n: &LayerNames, prefix: &str) -> Result<Self> {
        let h = s.hidden;
        let lin = |leaf: &str| linear(store, &format!("{prefix}.{leaf}"), h, h, true);
        Ok(Self {
            query: lin(n.query)?,
            key: lin(n.key)?,
            value: lin(n.value)?,
            dense: lin(n.attention_output)?,
            norm: layer_norm(store, &format!("{prefix}.{}", n.attention_norm), h, s.eps)?,
            heads: s.heads,
            attn_dropout: s.attention_dropout,
            output_dropout: s.attention_output_dropout,
        })
    }

    /// `x`: `[B, T, H]`; `mask`: additive key mask `[B, T]` (0 to attend, a large negative
    /// to skip), `None` to attend everywhere.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        let ops = pass.ops;
        let q = pass.linear(&self.query, x)?;
        let k = pass.linear(&self.key, x)?;
        let v = pass.linear(&self.value, x)?;
        let p = self.attn_dropout;
        let ctx = pass
            .rng
            .with(|rng| ops.attention(&q, &k, &v, self.heads, mask, p, pass.train, rng))?;
        let out = pass.dropout(&pass.linear(&self.dense, &ctx)?, self.output_dropout)?;
        self.norm.forward_with(&ops.add(&out, x)?, ops)
    }
}
