//! The post-LayerNorm transformer encoder BERT, RoBERTa and DistilBERT share: layer `N` =
//! self-attention with a residual LayerNorm, then the feed-forward block (dense + activation,
//! dense, dropout, residual LayerNorm). What differs between the families is only the names
//! ([`LayerNames`]) and the sizes and dropouts ([`EncoderSpec`]).

use crate::attention::Attention;
use crate::config::HiddenAct;
use crate::pass::Pass;
use candle_core::Tensor;
use finetune_core::nn::{layer_norm, linear, LayerNorm, Linear};
use finetune_core::{ParamStore, Result};

/// The sizes, activation and dropouts of an encoder stack.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EncoderSpec {
    /// Width of every hidden state.
    pub hidden: usize,
    /// Width of the feed-forward block's inner layer.
    pub intermediate: usize,
    /// Attention heads per layer.
    pub heads: usize,
    /// Number of layers.
    pub layers: usize,
    /// Epsilon of every LayerNorm.
    pub eps: f64,
    /// Activation of the feed-forward block.
    pub act: HiddenAct,
    /// Dropout on the feed-forward block's output, in training.
    pub hidden_dropout: f64,
    /// Dropout on the attention probabilities, in training.
    pub attention_dropout: f64,
    /// Dropout on the attention block's output projection, in training (BERT: the hidden
    /// dropout; DistilBERT has none there).
    pub attention_output_dropout: f64,
}

/// The names of one layer's modules, relative to the layer's prefix (`bert.encoder.layer.N`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerNames {
    /// The query projection (`attention.self.query`).
    pub query: &'static str,
    /// The key projection.
    pub key: &'static str,
    /// The value projection.
    pub value: &'static str,
    /// The attention block's output projection (`attention.output.dense`).
    pub attention_output: &'static str,
    /// The LayerNorm after the attention block's residual (`attention.output.LayerNorm`).
    pub attention_norm: &'static str,
    /// The feed-forward block's first dense layer (`intermediate.dense`).
    pub ffn_in: &'static str,
    /// The feed-forward block's second dense layer (`output.dense`).
    pub ffn_out: &'static str,
    /// The LayerNorm after the feed-forward block's residual (`output.LayerNorm`).
    pub output_norm: &'static str,
}

impl LayerNames {
    /// Every tensor of layer `prefix` with its shape, in module order.
    pub fn tensors(&self, prefix: &str, s: &EncoderSpec) -> Vec<(String, Vec<usize>)> {
        let (h, i) = (s.hidden, s.intermediate);
        let mut out = Vec::new();
        let mut module = |leaf: &str, weight: Vec<usize>| {
            let bias = vec![weight[0]];
            out.push((format!("{prefix}.{leaf}.weight"), weight));
            out.push((format!("{prefix}.{leaf}.bias"), bias));
        };
        for leaf in [self.query, self.key, self.value, self.attention_output] {
            module(leaf, vec![h, h]);
        }
        module(self.attention_norm, vec![h]);
        module(self.ffn_in, vec![i, h]);
        module(self.ffn_out, vec![h, i]);
        module(self.output_norm, vec![h]);
        out
    }
}

/// One encoder layer.
pub struct Layer {
    attention: Attention,
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
    act: HiddenAct,
    dropout: f64,
}

impl Layer {
    /// Layer `prefix` (`bert.encoder.layer.3`) of the store, named by `n`.
    pub fn new(store: &ParamStore, s: &EncoderSpec, n: &LayerNames, prefix: &str) -> Result<Self> {
        let p = |leaf: &str| format!("{prefix}.{leaf}");
        Ok(Self {
            attention: Attention::new(store, s, n, prefix)?,
            intermediate: linear(store, &p(n.ffn_in), s.hidden, s.intermediate, true)?,
            output: linear(store, &p(n.ffn_out), s.intermediate, s.hidden, true)?,
            norm: layer_norm(store, &p(n.output_norm), s.hidden, s.eps)?,
            act: s.act,
            dropout: s.hidden_dropout,
        })
    }

    /// `x` `[B, T, H]` → `[B, T, H]`; `mask` as [`Encoder::forward`]'s.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        let ops = pass.ops;
        let a = self.attention.forward(x, mask, pass)?;
        let i = pass.linear(&self.intermediate, &a)?;
        let i = match self.act {
            HiddenAct::Gelu => ops.gelu(&i)?,
            HiddenAct::GeluNew => ops.gelu_new(&i)?,
            HiddenAct::Relu => i.relu()?,
        };
        let o = pass.dropout(&pass.linear(&self.output, &i)?, self.dropout)?;
        self.norm.forward_with(&ops.add(&o, &a)?, ops)
    }
}

/// The stack of layers `{prefix}.0` … `{prefix}.{layers - 1}`.
pub struct Encoder {
    layers: Vec<Layer>,
}

impl Encoder {
    /// The layers `{prefix}.N` of the store (`prefix`: `bert.encoder.layer`).
    pub fn new(store: &ParamStore, s: &EncoderSpec, n: &LayerNames, prefix: &str) -> Result<Self> {
        Ok(Self {
            layers: (0..s.layers)
                .map(|i| Layer::new(store, s, n, &format!("{prefix}.{i}")))
                .collect::<Result<_>>()?,
        })
    }

    /// `x` `[B, T, H]` through every layer; `mask`: additive key mask `[B, T]`, `None` to
    /// attend everywhere.
    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = layer.forward(&x, mask, pass)?;
        }
        Ok(x)
    }
}
