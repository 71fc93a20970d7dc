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

pub mod bench;
pub mod error;
pub mod ops;
pub mod rng;
pub mod runtime;
pub mod tape;

pub use error::{Error, Result};
pub use ops::OpSet;
pub use rng::Rng;
