//! 2-D convolution of NCHW images with OIHW weights (one group, no bias), forward and both
//! gradients, by one of three algorithms chosen per geometry:
//!
//! | algorithm | used for | file |
//! |---|---|---|
//! | tap GEMMs on a pixel-major copy | stride 1 into maps up to 28 wide | `taps.rs` |
//! | shifted GEMMs over the padded images | stride 1 into wider maps, little padding | `shifted.rs` |
//! | im2col + GEMM | everything else (strided and pointwise convolutions) | `im2col.rs` |
//!
//! candle 0.11.1's CPU `conv2d` is several times slower than a GEMM-based convolution in its
//! forward, and its backward computes the input gradient with a transposed convolution that
//! runs as a plain loop. All three algorithms here run their products through the `gemm`
//! crate (candle's own matmul kernel). Images are split into one contiguous range per rayon
//! thread, each thread with its own scratch buffers (`ops/scratch.rs`) and a single-threaded
//! GEMM; with fewer images than threads, images run one after the other with a multithreaded
//! GEMM (`plan.rs`). The weight gradient's summation order across ranges depends on the thread
//! count (rounding only).
//!
//! The algorithm is decided once per geometry (`Geometry::algorithm`) and `run` is the one
//! place that maps a pass (forward, input gradient, weight gradient) to its implementation; a
//! single custom op (`op.rs`) carries each pass into candle's autograd. Each gradient is
//! computed only for an input that needs one (a variable, or the result of a tracked op): no
//! input gradient for the images fed to the stem, no weight gradient for a frozen layer.
//!
//! Semantics are `torch.nn.functional.conv2d` with `groups = 1` and symmetric stride, padding
//! and dilation: output size `(H + 2·pad − dil·(k − 1) − 1) / stride + 1`, zero padding.

mod geometry;
mod im2col;
mod op;
mod plan;
mod shifted;
mod taps;
mod transpose;

use candle_core::Tensor;

use super::kernel::{self, Real};
use crate::Result;
use geometry::Geometry;
use im2col::LiveWeights;
use op::{ConvOp, PassKind};

const NAME: &str = "conv2d";

/// `conv2d` of `x` `[N, C, H, W]` with weights `w` `[C_out, C, kh, kw]`, as
/// `torch.nn.functional.conv2d(x, w, stride=stride, padding=padding, dilation=dilation)`.
///
/// Differentiable in both arguments. Fused (GEMM-based) on CPU; on other devices it is
/// candle's own [`Tensor::conv2d`] ([`conv2d_candle`]). `f16`/`bf16` compute in `f32`.
pub fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<Tensor> {
    let g = Geometry::new(x, w, stride, padding, dilation)?;
    if !kernel::fused_on(x) || !kernel::fused_on(w) {
        return conv2d_candle(x, w, stride, padding, dilation);
    }
    let dtype = x.dtype();
    let cd = kernel::compute_dtype(dtype, NAME)?;
    let xs = kernel::kernel_input(x, cd)?;
    let ws = kernel::kernel_input(w, cd)?;
    let y = crate::tape::apply_op2(&xs, &ws, ConvOp::new(g, PassKind::Forward))?;
    Ok(y.to_dtype(dtype)?)
}

/// candle's own convolution with the same arguments (the baseline, and the fallback off CPU),
/// at [`super::composed_precision()`].
pub fn conv2d_candle(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Result<Tensor> {
    Geometry::new(x, w, stride, padding, dilation)?;
    super::composed_conv2d(x, w, padding, stride, dilation)
}

/// The algorithm a convolution runs with, the same for its forward and both gradients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Algorithm {
    Taps,
    Shifted,
    Im2col,
}

impl Geometry {
    fn algorithm(&self) -> Algorithm {
        if self.tapped() {
            Algorithm::Taps
        } else if self.shifted() {
            Algorithm::Shifted
        } else {
            Algorithm::Im2col
        }
    }
}

/// One pass of a convolution with its two operands (row-major, contiguous).
enum Pass<'a, T> {
    /// `y = conv(x, w)`.
    Forward { x: &'a [T], w: &'a [T] },
    /// `dx` from the weights and the output gradient.
    Input { w: &'a [T], dy: &'a [T] },
    /// `dW` from the input and the output gradient.
    Weight { x: &'a [T], dy: &'a [T] },
}

/// The result of `pass` (`y`, `dx` or `dW`, row-major), by the geometry's algorithm. `cache`
/// carries what a forward leaves for its input gradient (im2col's live-tap weights).
fn run<T: Real>(g: &Geometry, pass: Pass<'_, T>, cache: &LiveWeights) -> Vec<T> {
    let empty = g.n == 0 || g.p() == 0;
    match pass {
        Pass::Forward { .. } | Pass::Input { .. } if empty => Vec::new(),
        Pass::Weight { .. } if empty => vec![T::ZERO; g.co * g.ck()],
        Pass::Forward { x, w } => match g.algorithm() {
            Algorithm::Taps => taps::forward(g, x, w),
            Algorithm::Shifted => shifted::forward(g, x, w),
            Algorithm::Im2col => im2col::forward(g, x, w, cache),
        },
        Pass::Input { w, dy } => match g.algorithm() {
            Algorithm::Taps => taps::backward_input(g, w, dy),
            Algorithm::Shifted => shifted::backward_input(g, w, dy),
            Algorithm::Im2col => im2col::backward_input(g, w, dy, cache),
        },
        Pass::Weight { x, dy } => match g.algorithm() {
            Algorithm::Taps => taps::backward_weight(g, x, dy),
            Algorithm::Shifted => shifted::backward_weight(g, x, dy),
            Algorithm::Im2col => im2col::backward_weight(g, x, dy),
        },
    }
}
