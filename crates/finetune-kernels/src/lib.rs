//! `finetune-kernels`: the differentiable fused ops that models train through, their CPU
//! kernels, and what makes them fast in a process.
//!
//! - [`ops`]: linear, attention, layer norm, softmax, GELU, conv2d, batch norm, ReLU, max
//!   pooling, dropout and the losses, each a candle custom op with a fused backward (checked
//!   against finite differences in the tests), with [`ops::OpSet`] choosing them or candle's
//!   stock compositions for a whole model.
//! - [`tape`]: the recorded backward over those ops (bit-identical to candle's).
//! - [`runtime`]: process tuning (allocator, candle's worker pool), applied once by `main`.
//! - [`mod@bench`]: forward + backward timings of each op against its stock composition.
//! - [`rng`]: the seedable generator dropout masks (and the rest of the project) draw from.
//!
//! It knows no parameter store, no optimizer, no model and no file: it takes tensors and
//! gives tensors and their gradients.
//!
//! # Example
//!
//! A fused op is a drop-in for its composed twin: the same values forward, the same gradients
//! backward through candle's ordinary `backward`.
//!
//! ```
//! use candle_core::{Device, Tensor, Var};
//! use finetune_kernels::ops;
//!
//! let dev = Device::Cpu;
//! let x = Var::new(&[[1f32, 2.0, 4.0, 8.0], [0.5, -1.0, 0.0, 3.0]], &dev)?;
//! let gamma = Var::new(&[1f32, 0.5, 2.0, 1.0], &dev)?;
//! let beta = Var::new(&[0f32, 0.1, 0.0, -0.1], &dev)?;
//!
//! // `torch.nn.functional.layer_norm(x, [4], gamma, beta, 1e-5)`, fused and composed.
//! let fused = ops::layer_norm(&x, &gamma, &beta, 1e-5)?;
//! let composed = ops::layer_norm_composed(&x, &gamma, &beta, 1e-5)?;
//! let max_diff = |a: &Tensor, b: &Tensor| -> candle_core::Result<f32> {
//!     (a - b)?.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()
//! };
//! assert!(max_diff(&fused, &composed)? < 1e-5);
//!
//! // Backward from a weighted sum, so that every input gets a non-trivial gradient.
//! let w = Tensor::new(&[[1f32, -2.0, 3.0, 0.5], [2.0, 1.0, -1.0, 0.0]], &dev)?;
//! let grads_fused = (fused * &w)?.sum_all()?.backward()?;
//! let grads_composed = (composed * &w)?.sum_all()?.backward()?;
//! for v in [&x, &gamma, &beta] {
//!     let (a, b) = (grads_fused.get(v).unwrap(), grads_composed.get(v).unwrap());
//!     assert_eq!(a.dims(), v.dims());
//!     assert!(max_diff(a, b)? < 1e-4);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod bench;
pub mod error;
pub mod ops;
pub mod rng;
pub mod runtime;
pub mod tape;

pub use error::{Error, Result};
pub use ops::OpSet;
pub use rng::Rng;
