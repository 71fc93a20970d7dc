//! `finetune-vit`: the Vision Transformer for image classification that trains — the patch
//! embedding as one GEMM over the unfolded patches, pre-LayerNorm encoder layers on the fused
//! differentiable ops, dropout that drops in training — loaded from Hub safetensors in
//! transformers' naming (`ViTForImageClassification`, or the bare `ViTModel`) or timm's
//! (`vit_*`, with its stacked `qkv`), exported for transformers.
//!
//! Every ViT fact lives here: the config keys ([`ViTConfig`]) and timm's architectures and
//! `config.json` ([`timm`]), the tensor names, head and layer depths ([`naming`]), position
//! embeddings resampled for another input size ([`interpolate`]), the preprocessing a
//! checkpoint asks for, and the model as `finetune_core`'s `TrainModel`. It knows no training
//! loop, no CLI and no data files.
//!
//! # Example
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use finetune_vit::{ViT, ViTConfig};
//!
//! let config: ViTConfig = serde_json::from_str(
//!     r#"{"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
//!         "intermediate_size": 64, "image_size": 16, "patch_size": 4,
//!         "id2label": {"0": "cat", "1": "dog", "2": "frog"}}"#,
//! )?;
//! let dev = Device::Cpu;
//! let model = ViT::init(config, DType::F32, &dev, 0)?;
//! let images = Tensor::randn(0f32, 1.0, (2, 3, 16, 16), &dev)?;
//! assert_eq!(model.forward_t(&images, false)?.dims(), [2, 3]);
//! let loss = model.loss(&model.forward_t(&images, true)?, &Tensor::new(&[0u32, 2], &dev)?, 0.0)?;
//! let grads = loss.backward()?;
//! let patch = model.store().var("vit.embeddings.patch_embeddings.projection.weight")?;
//! assert_eq!(grads.get(&patch).unwrap().dims(), [32, 3, 4, 4]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod config;
mod embeddings;
pub mod export;
pub mod interpolate;
mod layer;
pub mod load;
pub mod model;
pub mod naming;
pub mod timm;
mod train_model;

pub use config::ViTConfig;
pub use load::LoadReport;
pub use model::{LoadOptions, ViT};
pub use naming::Naming;
