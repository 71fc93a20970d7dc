//! The encoder stack: `bert.encoder.layer.N` = attention, then the feed-forward block
//! (`intermediate.dense` + activation, `output.dense`, residual LayerNorm).

use crate::attention::Attention;
use crate::config::{BertConfig, HiddenAct};
use crate::pass::Pass;
use candle_core::Tensor;
use finetune_core::nn::{layer_norm, linear, LayerNorm, Linear};
use finetune_core::{ParamStore, Result};

pub struct Layer {
    attention: Attention,
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
    act: HiddenAct,
    dropout: f64,
}

impl Layer {
    pub fn new(store: &ParamStore, c: &BertConfig, index: usize) -> Result<Self> {
        let p = format!("bert.encoder.layer.{index}");
        Ok(Self {
            attention: Attention::new(store, c, &format!("{p}.attention"))?,
            intermediate: linear(
                store,
                &format!("{p}.intermediate.dense"),
                c.hidden_size,
                c.intermediate_size,
                true,
            )?,
            output: linear(
                store,
                &format!("{p}.output.dense"),
                c.intermediate_size,
                c.hidden_size,
                true,
            )?,
            norm: layer_norm(
                store,
                &format!("{p}.output.LayerNorm"),
                c.hidden_size,
                c.layer_norm_eps,
            )?,
            act: c.hidden_act,
            dropout: c.hidden_dropout_prob,
        })
    }

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

pub struct Encoder {
    layers: Vec<Layer>,
}

impl Encoder {
    pub fn new(store: &ParamStore, c: &BertConfig) -> Result<Self> {
        Ok(Self {
            layers: (0..c.num_hidden_layers)
                .map(|i| Layer::new(store, c, i))
                .collect::<Result<_>>()?,
        })
    }

    pub fn forward(&self, x: &Tensor, mask: Option<&Tensor>, pass: &Pass) -> Result<Tensor> {
        let mut x = x.clone();
        for layer in &self.layers {
            x = layer.forward(&x, mask, pass)?;
        }
        Ok(x)
    }
}
