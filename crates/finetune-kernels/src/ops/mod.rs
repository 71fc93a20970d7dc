//! Differentiable fused ops: linear layers, multi-head attention, layer norm, softmax /
//! log-softmax, GELU (erf and tanh forms), 2-D convolution (im2col + GEMM), training-mode batch
//! norm (+ ReLU), ReLU and the residual `relu(a + b)`, 2-D max pooling, dropout, and the training losses built on them; [`OpSet`]
//! picks them or candle's stock compositions for a whole model.
//!
//! Why they exist: in candle 0.11.1 the fused layer norm records no gradient, the fused
//! softmax has no backward, `max_pool2d` cannot backprop when kernel != stride, and the
//! differentiable compositions are several times slower than one fused pass. Each op here is a
//! candle custom op whose backward is itself a fused kernel (computed analytically, checked
//! against finite differences in the tests).
//!
//! Kernels run on CPU on contiguous `f32`/`f64` data, parallel over rows with rayon's pool and
//! vectorised at the widest level the CPU has ([`simd`]: AVX-512 or AVX2, chosen at run time);
//! strided inputs are made contiguous and `f16`/`bf16` go through `f32`. On CUDA/Metal every
//! op falls back to its `*_composed` twin, a composition of differentiable candle ops that
//! also runs on CPU (tests check the two agree; the bench measures both).

pub mod attention;
pub mod batch_norm;
pub mod composed_precision;
pub mod conv2d;
pub mod dropout;
mod fast_math;
pub mod gelu;
mod gemm;
pub mod gemm_bf16;
mod kernel;
pub mod layer_norm;
pub mod linear;
pub mod lora_linear;
pub mod loss;
pub mod max_pool;
pub mod op_set;
pub mod relu;
mod scratch;
pub mod simd;
pub mod softmax;

pub use attention::{attention, attention_composed};
pub use batch_norm::{batch_norm_train, batch_norm_train_composed, BatchNormOutput};
pub use composed_precision::{
    composed_conv2d, composed_matmul, composed_precision, set_composed_precision,
};
pub use conv2d::{conv2d, conv2d_candle};
pub use dropout::{dropout, dropout_composed};
pub use gelu::{gelu, gelu_composed, gelu_new, gelu_new_composed};
pub use gemm_bf16::{
    bf16_kernel, matmul_precision, set_matmul_precision, Bf16Kernel, MatmulPrecision,
};
pub use layer_norm::{layer_norm, layer_norm_composed};
pub use linear::{linear, linear_composed};
pub use lora_linear::{lora_linear, lora_linear_composed, LoraArgs};
pub use loss::{
    binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_weighted, cross_entropy,
    distillation_kl, mse, soft_target_cross_entropy, weighted_cross_entropy,
};
pub use max_pool::{max_pool2d, max_pool2d_composed};
pub use op_set::{generic_requested, OpSet};
pub use relu::{add_relu, add_relu_composed, relu};
pub use simd::{detected_simd_level, set_simd_level, simd_level, SimdLevel};
pub use softmax::{
    log_softmax_last_dim, log_softmax_last_dim_composed, softmax_last_dim,
    softmax_last_dim_composed,
};
