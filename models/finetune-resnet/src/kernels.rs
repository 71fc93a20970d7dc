//! Which kernels a ResNet runs: this project's fused CPU ops (im2col + GEMM convolution with
//! a GEMM backward, fused training-mode BatchNorm) or candle's stock compositions, kept for
//! benchmarks (`same run, both sides`) and cross-checks. Both compute the same function; on
//! devices other than the CPU the fused ops fall back to candle's anyway.

/// The kernel family of a forward pass; the default is [`Kernels::Fused`], or
/// [`Kernels::Candle`] under `FINETUNE_OPS=generic` (the path a GPU runs, on the CPU).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernels {
    /// `finetune_kernels::ops`.
    Fused,
    /// candle's `Tensor::conv2d` and BatchNorm composed of candle tensor ops.
    Candle,
}

impl Default for Kernels {
    fn default() -> Self {
        if finetune_kernels::ops::generic_requested() {
            Self::Candle
        } else {
            Self::Fused
        }
    }
}

impl Kernels {
    pub(crate) fn to_u8(self) -> u8 {
        match self {
            Kernels::Fused => 0,
            Kernels::Candle => 1,
        }
    }

    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Kernels::Candle,
            _ => Kernels::Fused,
        }
    }
}
