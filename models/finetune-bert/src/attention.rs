//! Multi-head self-attention with its output projection and residual LayerNorm
//! (`attention.self.{query,key,value}`, `attention.output.{dense,LayerNorm}`).

use crate::config::BertConfig;
use crate::dropout::DropoutRng;
use candle_core::{Module, Tensor};
use finetune_core::nn::{layer_norm, linear, LayerNorm, Linear};
use finetune_core::{ops, ParamStore, Result};

pub struct Attention {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    norm: LayerNorm,
    heads: usize,
    head_dim: usize,
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
            head_dim: c.head_dim(),
            attn_dropout: c.attention_probs_dropout_prob,
            hidden_dropout: c.hidden_dropout_prob,
        })
    }

    /// `[B, T, H]` → `[B, heads, T, head_dim]`.
    fn split_heads(&self, x: &Tensor) -> Result<Tensor> {
        let (b, t, _) = x.dims3()?;
        Ok(x.reshape((b, t, self.heads, self.head_dim))?
            .transpose(1, 2)?
            .contiguous()?)
    }

    /// `x`: `[B, T, H]`; `mask`: additive `[B, 1, 1, T]` (0 to attend, a large negative to skip).
    pub fn forward(
        &self,
        x: &Tensor,
        mask: &Tensor,
        train: bool,
        rng: &DropoutRng,
    ) -> Result<Tensor> {
        let (b, t, h) = x.dims3()?;
        let q = self.split_heads(&self.query.forward(x)?)?;
        let k = self.split_heads(&self.key.forward(x)?)?;
        let v = self.split_heads(&self.value.forward(x)?)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = (q.matmul(&k.t()?)? * scale)?.broadcast_add(mask)?;
        let probs = ops::softmax_last_dim(&scores)?;
        let probs = rng.dropout(&probs, self.attn_dropout, train)?;
        let ctx = probs.matmul(&v)?.transpose(1, 2)?.reshape((b, t, h))?;
        let out = rng.dropout(&self.dense.forward(&ctx)?, self.hidden_dropout, train)?;
        self.norm.forward(&(out + x)?)
    }
}
