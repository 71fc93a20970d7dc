//! One pre-LayerNorm encoder layer (`vit.encoder.layer.N`): `h = x + attention(layernorm_before(x))`,
//! then `h + mlp(layernorm_after(h))`, each branch's output through dropout in training.

use crate::config::ViTConfig;
use candle_core::Tensor;
use finetune_bert::{HiddenAct, Pass};
use finetune_core::nn::{layer_norm, linear, LayerNorm, Linear};
use finetune_core::{ParamStore, Result};

/// An encoder layer of a [`ViTConfig`].
pub struct Layer {
    before: LayerNorm,
    query: Linear,
    key: Linear,
    value: Linear,
    attention_output: Linear,
    after: LayerNorm,
    intermediate: Linear,
    output: Linear,
    heads: usize,
    act: HiddenAct,
    hidden_dropout: f64,
    attention_dropout: f64,
}

impl Layer {
    /// Layer `prefix` (`vit.encoder.layer.3`) of the store.
    pub fn new(store: &ParamStore, c: &ViTConfig, prefix: &str) -> Result<Self> {
        let (h, i) = (c.hidden_size, c.intermediate_size);
        let p = |leaf: &str| format!("{prefix}.{leaf}");
        let qkv = |leaf: &str| linear(store, &p(leaf), h, h, c.qkv_bias);
        Ok(Self {
            before: layer_norm(store, &p("layernorm_before"), h, c.layer_norm_eps)?,
            query: qkv("attention.attention.query")?,
            key: qkv("attention.attention.key")?,
            value: qkv("attention.attention.value")?,
            attention_output: linear(store, &p("attention.output.dense"), h, h, true)?,
            after: layer_norm(store, &p("layernorm_after"), h, c.layer_norm_eps)?,
            intermediate: linear(store, &p("intermediate.dense"), h, i, true)?,
            output: linear(store, &p("output.dense"), i, h, true)?,
            heads: c.num_attention_heads,
            act: c.hidden_act,
            hidden_dropout: c.hidden_dropout_prob,
            attention_dropout: c.attention_probs_dropout_prob,
        })
    }

    /// `x` `[B, T, H]` → `[B, T, H]`.
    pub fn forward(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        let ops = pass.ops;
        let n = self.before.forward_with(x, ops)?;
        let (q, k, v) = (
            pass.linear(&self.query, &n)?,
            pass.linear(&self.key, &n)?,
            pass.linear(&self.value, &n)?,
        );
        let p = self.attention_dropout;
        let ctx = pass
            .rng
            .with(|rng| ops.attention(&q, &k, &v, self.heads, None, p, pass.train, rng))?;
        let a = pass.dropout(
            &pass.linear(&self.attention_output, &ctx)?,
            self.hidden_dropout,
        )?;
        let h = ops.add(&a, x)?;
        let i = pass.linear(&self.intermediate, &self.after.forward_with(&h, ops)?)?;
        let i = match self.act {
            HiddenAct::Gelu => ops.gelu(&i)?,
            HiddenAct::GeluNew => ops.gelu_new(&i)?,
            HiddenAct::Relu => i.relu()?,
        };
        let o = pass.dropout(&pass.linear(&self.output, &i)?, self.hidden_dropout)?;
        Ok(ops.add(&o, &h)?)
    }
}
