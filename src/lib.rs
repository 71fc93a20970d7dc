//! `candle-finetune`: fine-tune pretrained Hub models with candle. This facade re-exports the
//! workspace's crates and hosts the `finetune` binary, the examples and the end-to-end tests.

pub mod bench;
pub use finetune_bert as bert;
pub use finetune_core as core;
pub use finetune_data as data;
pub use finetune_hub as hub;
pub use finetune_train as train;
pub mod tasks;
pub use finetune_resnet as resnet;
