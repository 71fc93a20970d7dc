//! `Conv2d` without bias (every ResNet conv is followed by BatchNorm), over the core's fused
//! `ops::conv2d` (im2col + GEMM, GEMM backward) or candle's `Tensor::conv2d`, plus the layer's
//! LoRA adapter when the store gives it one.

use crate::kernels::Kernels;
use candle_core::Tensor;
use finetune_core::lora::ModuleKind;
use finetune_core::nn::param;
use finetune_core::{Param, ParamStore, Result, Rng};
use finetune_kernels::ops;
use std::sync::Mutex;

#[derive(Debug, Clone)]
pub struct Conv2d {
    /// The module name (the weight's name without `.weight`), what LoRA targets.
    name: String,
    weight: Param,
    stride: usize,
    padding: usize,
}

/// The conv whose weight is `{name}` `[c_out, c_in, k, k]`, padding `k / 2`.
pub fn conv2d(
    store: &ParamStore,
    name: &str,
    c_in: usize,
    c_out: usize,
    k: usize,
    stride: usize,
) -> Result<Conv2d> {
    let module = name.strip_suffix(".weight").unwrap_or(name).to_string();
    store.register_module(
        &module,
        ModuleKind::Conv2d {
            in_channels: c_in,
            out_channels: c_out,
            kernel: k,
            stride,
            padding: k / 2,
        },
    );
    Ok(Conv2d {
        name: module,
        weight: param(store, name, &[c_out, c_in, k, k])?,
        stride,
        padding: k / 2,
    })
}

impl Conv2d {
    /// The conv of `x`, plus its LoRA adapter's update; `dropout` is the model's dropout
    /// stream in training (the adapter's input dropout draws from it).
    pub fn forward(
        &self,
        x: &Tensor,
        kernels: Kernels,
        dropout: Option<&Mutex<Rng>>,
    ) -> Result<Tensor> {
        let w = self.weight.tensor();
        let y = match kernels {
            Kernels::Fused => ops::conv2d(x, &w, self.stride, self.padding, 1)?,
            Kernels::Candle => x.conv2d(&w, self.padding, self.stride, 1, 1)?,
        };
        let Some(adapter) = self.weight.store().adapter(&self.name) else {
            return Ok(y);
        };
        let fused = kernels == Kernels::Fused;
        match dropout.filter(|_| adapter.dropout > 0.0) {
            Some(m) => {
                let mut rng = m.lock().unwrap_or_else(|p| p.into_inner());
                adapter.add_conv(&y, x, fused, Some(&mut rng))
            }
            None => adapter.add_conv(&y, x, fused, None),
        }
    }

    pub fn weight(&self) -> &Param {
        &self.weight
    }
}
