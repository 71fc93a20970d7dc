//! `finetune-bert`: BERT for sequence classification that trains — fused differentiable ops
//! from `finetune-core`, dropout that really drops in training — loaded from Hub safetensors in
//! either naming, tokenised with the checkpoint's tokenizer, exported for transformers.
//!
//! It knows no trainer and no CLI: it offers a model (forward in train/eval mode, loss, its
//! `ParamStore`, export) and a tokenizer.

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
