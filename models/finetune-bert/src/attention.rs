//! Multi-head self-attention with its output projection and residual LayerNorm
//! (`attention.self.{query,key,value}`, `attention.output.{dense,LayerNorm}`).

use crate::config::BertConfig;
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
    hidden_dropout: f64,
}

impl Attention {
    pub fn new(store: &ParamStore, c: &BertConfig, prefix: &str) -> Result<Self> {
        let h = c.hidden_size;
        let lin = |n: &str| linear(store, &format!("{prefix}.{n}"), h, h, true);
        Ok(Self {
            query: lin("self.query")?,
            key: lin("self.key")?,
            value: lin("self.value")?,
            dense: lin("output.dense")?,
            norm: layer_norm(
                store,
                &format!("{prefix}.output.LayerNorm"),
                h,
                c.layer_norm_eps,
            )?,
            heads: c.num_attention_heads,
            attn_dropout: c.attention_probs_dropout_prob,
            hidden_dropout: c.hidden_dropout_prob,
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
        let out = pass.dropout(&pass.linear(&self.dense, &ctx)?, self.hidden_dropout)?;
        self.norm.forward_with(&ops.add(&out, x)?, ops)
    }
}
