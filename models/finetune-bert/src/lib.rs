//! `finetune-bert`: BERT for sequence classification that trains — fused differentiable ops
//! from `finetune-kernels`, dropout that really drops in training — loaded from Hub safetensors in
//! either naming, tokenised with the checkpoint's tokenizer, exported for transformers.
//!
//! Every BERT fact lives here: the tensor names and how checkpoints' namings map onto them
//! ([`naming`]), which parameters make the head and how deep each one sits
//! ([`naming::layout`]), and the model as `finetune_core`'s `TrainModel` (problem, loss,
//! backbone/head cut, export). It knows no training loop, no data files and no CLI.

mod attention;
pub mod classifier;
pub mod config;
mod dropout;
mod embeddings;
mod encoder;
pub mod export;
pub mod load;
pub mod naming;
mod pass;
pub mod tokenizer;
mod train_model;

pub use classifier::{BertBatch, BertForSequenceClassification, LoadOptions};
pub use config::{BertConfig, HiddenAct, ProblemType};
pub use load::LoadReport;
pub use tokenizer::BertTokenizer;
