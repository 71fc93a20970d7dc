//! The residual blocks, as torchvision's: `BasicBlock` (3×3 → 3×3) and `Bottleneck`
//! (1×1 → 3×3 with the stride → 1×1 expanding ×4), each with a 1×1 conv + BatchNorm projection
//! shortcut (`downsample`) when the stride or the channel count changes.

use crate::batch_norm::{batch_norm2d, BatchNorm2d};
use crate::config::{BlockKind, ResNetConfig};
use crate::conv::{conv2d, Conv2d};
use crate::kernels::Kernels;
use crate::naming::BlockShape;
use candle_core::Tensor;
use finetune_core::{ParamStore, Result, Rng};
use finetune_kernels::ops;
use std::sync::Mutex;

/// What every layer of one forward shares: training or not, the model's dropout stream, the
/// kernels.
#[derive(Clone, Copy)]
pub struct Pass<'a> {
    pub train: bool,
    pub rng: &'a Mutex<Rng>,
    pub kernels: Kernels,
}

impl<'a> Pass<'a> {
    /// The dropout stream, in training only.
    pub fn dropout(&self) -> Option<&'a Mutex<Rng>> {
        self.train.then_some(self.rng)
    }
}

/// A conv followed by its BatchNorm.
#[derive(Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm2d,
}

impl ConvBn {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        store: &ParamStore,
        conv_name: &str,
        bn_prefix: &str,
        c_in: usize,
        c_out: usize,
        k: usize,
        stride: usize,
        cfg: &ResNetConfig,
    ) -> Result<Self> {
        Ok(Self {
            conv: conv2d(store, conv_name, c_in, c_out, k, stride)?,
            bn: batch_norm2d(store, bn_prefix, c_out, cfg.bn_eps, cfg.bn_momentum)?,
        })
    }

    /// conv → BatchNorm (→ ReLU when `relu`); `pass` says training or not and carries the
    /// dropout stream and the kernels.
    pub fn forward_t(&self, x: &Tensor, pass: Pass<'_>, relu: bool) -> Result<Tensor> {
        let y = self.conv.forward(x, pass.kernels, pass.dropout())?;
        self.bn.forward_with(&y, pass.train, relu, pass.kernels)
    }
}

/// One residual block `{prefix}` (`layer{s}.{i}`): a branch of 2 (basic) or 3 (bottleneck)
/// conv + BN units with ReLU between them, plus the shortcut, then ReLU.
#[derive(Debug)]
pub struct Block {
    branch: Vec<ConvBn>,
    downsample: Option<ConvBn>,
}

impl Block {
    pub fn new(
        store: &ParamStore,
        prefix: &str,
        s: &BlockShape,
        cfg: &ResNetConfig,
    ) -> Result<Self> {
        // (c_in, c_out, kernel, stride) of each unit of the branch.
        let units = match cfg.block {
            BlockKind::Basic => vec![(s.c_in, s.c_out, 3, s.stride), (s.c_out, s.c_out, 3, 1)],
            BlockKind::Bottleneck => vec![
                (s.c_in, s.width, 1, 1),
                (s.width, s.width, 3, s.stride),
                (s.width, s.c_out, 1, 1),
            ],
        };
        let branch = units
            .into_iter()
            .enumerate()
            .map(|(k, (ci, co, ks, st))| {
                ConvBn::new(
                    store,
                    &format!("{prefix}.conv{}.weight", k + 1),
                    &format!("{prefix}.bn{}", k + 1),
                    ci,
                    co,
                    ks,
                    st,
                    cfg,
                )
            })
            .collect::<Result<Vec<_>>>()?;
        let downsample = if s.downsample {
            Some(ConvBn::new(
                store,
                &format!("{prefix}.downsample.0.weight"),
                &format!("{prefix}.downsample.1"),
                s.c_in,
                s.c_out,
                1,
                s.stride,
                cfg,
            )?)
        } else {
            None
        };
        Ok(Self { branch, downsample })
    }

    pub fn forward_t(&self, x: &Tensor, pass: Pass<'_>) -> Result<Tensor> {
        let mut y = x.clone();
        let last = self.branch.len() - 1;
        for (k, unit) in self.branch.iter().enumerate() {
            y = unit.forward_t(&y, pass, k < last)?;
        }
        let shortcut = match &self.downsample {
            Some(d) => d.forward_t(x, pass, false)?,
            None => x.clone(),
        };
        match pass.kernels {
            Kernels::Fused => Ok(ops::add_relu(&y, &shortcut)?),
            Kernels::Candle => Ok(ops::add_relu_composed(&y, &shortcut)?),
        }
    }

    /// The block's BatchNorm layers, in module order.
    pub fn batch_norms(&self) -> impl Iterator<Item = &BatchNorm2d> {
        self.branch
            .iter()
            .chain(self.downsample.iter())
            .map(|u| &u.bn)
    }
}
