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
