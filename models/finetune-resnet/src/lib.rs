//! `finetune-resnet`: ResNet-18/34/50/101/152 that trains — BatchNorm with PyTorch's
//! training semantics (batch statistics, running estimates, optional frozen statistics), the
//! stem max-pool through a differentiable kernel op — loaded from Hub safetensors in torchvision/
//! timm or transformers naming, with a replaceable head, exported for timm and torchvision.
//!
//! Every ResNet fact lives here: torchvision's tensor names and the mapping of transformers'
//! ([`naming`]), the head and each stage's depth ([`naming::layout`]), the model as
//! `finetune_core`'s `TrainModel` (BatchNorm frozen with its weights, the pooled features as
//! the backbone/head cut, export), and the preprocessing the checkpoint expects. It knows no
//! training loop, no CLI and no data files: decoding and transforming images is the data
//! crate's job.
//!
//! # Example
//!
//! A randomly initialised ResNet-18 with a 3-class head (a pretrained one comes from
//! [`ResNet::from_pretrained`] on a checkpoint folder), evaluated, then trained for one
//! forward + backward on a small batch:
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use finetune_resnet::{ResNet, ResNetConfig};
//!
//! let config = ResNetConfig::from_name("resnet18", 3)?;
//! assert_eq!(config.num_features(), 512);
//! let dev = Device::Cpu;
//! let model = ResNet::init(config, DType::F32, &dev, 0)?;
//!
//! // Two normalised RGB images; small for speed (ImageNet weights expect 3×224×224).
//! let images = Tensor::randn(0f32, 1.0, (2, 3, 32, 32), &dev)?;
//! let logits = model.forward_t(&images, false)?; // eval: BatchNorm uses running statistics
//! assert_eq!(logits.dims(), [2, 3]);
//!
//! // Training: batch statistics, running estimates updated (PyTorch's `model.train()`).
//! let logits = model.forward_t(&images, true)?;
//! let loss = model.loss(&logits, &Tensor::new(&[0u32, 2], &dev)?, 0.0)?;
//! let grads = loss.backward()?;
//! let fc = model.store().var("fc.weight")?;
//! assert_eq!(grads.get(&fc).unwrap().dims(), [3, 512]);
//! let steps = model.store().get("bn1.num_batches_tracked")?;
//! assert_eq!(steps.to_scalar::<i64>()?, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod batch_norm;
mod block;
pub mod config;
mod conv;
pub mod export;
pub mod init;
mod kernels;
pub mod load;
pub mod model;
pub mod naming;
pub use finetune_core::preprocess;
mod train_model;

pub use batch_norm::{batch_norm2d, BatchNorm2d, BnMode};
pub use config::{BlockKind, ResNetConfig};
pub use finetune_core::preprocess::Preprocessing;
pub use kernels::Kernels;
pub use load::{HeadPolicy, LoadReport};
pub use model::{LoadOptions, ResNet};
pub use naming::Naming;
