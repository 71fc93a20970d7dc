//! `Conv2d` without bias (every ResNet conv is followed by BatchNorm), over the core's fused
//! `ops::conv2d` (im2col + GEMM, GEMM backward) or candle's `Tensor::conv2d`.

use crate::kernels::Kernels;
use candle_core::Tensor;
use finetune_core::nn::param;
use finetune_core::{Param, ParamStore, Result};
use finetune_kernels::ops;

#[derive(Debug, Clone)]
pub struct Conv2d {
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
    Ok(Conv2d {
        weight: param(store, name, &[c_out, c_in, k, k])?,
        stride,
        padding: k / 2,
    })
}

impl Conv2d {
    pub fn forward(&self, x: &Tensor, kernels: Kernels) -> Result<Tensor> {
        let w = self.weight.tensor();
        match kernels {
            Kernels::Fused => Ok(ops::conv2d(x, &w, self.stride, self.padding, 1)?),
            Kernels::Candle => Ok(x.conv2d(&w, self.padding, self.stride, 1, 1)?),
        }
    }

    pub fn weight(&self) -> &Param {
        &self.weight
    }
}
