//! `Conv2d` without bias (every ResNet conv is followed by BatchNorm), over candle's
//! `Tensor::conv2d`, whose backward covers strided and padded convolutions.

use candle_core::Tensor;
use finetune_core::nn::param;
use finetune_core::{Param, ParamStore, Result};

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
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        Ok(x.conv2d(&self.weight.tensor(), self.padding, self.stride, 1, 1)?)
    }

    pub fn weight(&self) -> &Param {
        &self.weight
    }
}
