//! `finetune-resnet`: ResNet-18/34/50/101/152 that trains — BatchNorm with PyTorch's
//! training semantics (batch statistics, running estimates, optional frozen statistics), the
//! stem max-pool through a differentiable core op — loaded from Hub safetensors in torchvision/
//! timm or transformers naming, with a replaceable head, exported for timm and torchvision.
//!
//! It knows no trainer, no CLI and no data files: it offers a model (forward in train/eval
//! mode, loss, its `ParamStore` under torchvision names, export) and the preprocessing settings
//! the checkpoint expects; decoding and transforming images is the data crate's job.

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
pub mod preprocess;
mod train_model;

pub use batch_norm::{batch_norm2d, BatchNorm2d, BnMode};
pub use config::{BlockKind, ResNetConfig};
pub use kernels::Kernels;
pub use load::{HeadPolicy, LoadReport};
pub use model::{LoadOptions, ResNet};
pub use naming::Naming;
pub use preprocess::Preprocessing;
