//! `finetune-distilbert`: DistilBERT for sequence classification that trains, loaded from Hub
//! safetensors in either naming (`distilbert.*` or the bare `DistilBertModel`'s), exported for
//! transformers' `DistilBertForSequenceClassification`.
//!
//! Every DistilBERT fact lives here: its config keys ([`DistilBertConfig`]), its tensor names,
//! head and layer depths ([`naming`]), and its modules ([`DistilBert`]: embeddings without
//! token types, the encoder under DistilBERT's names, `pre_classifier` + ReLU + dropout +
//! `classifier` on the first token). The encoder, the tokenizer and the trainable classifier
//! around the modules are `finetune-bert`'s, shared with BERT. It knows no training loop, no
//! data files and no CLI.
//!
//! # Example
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use finetune_bert::BertBatch;
//! use finetune_distilbert::{DistilBertConfig, DistilBertForSequenceClassification};
//!
//! let config: DistilBertConfig = serde_json::from_str(
//!     r#"{"vocab_size": 100, "dim": 32, "n_layers": 2, "n_heads": 4, "hidden_dim": 64,
//!         "max_position_embeddings": 16}"#,
//! )?;
//! let dev = Device::Cpu;
//! let model = DistilBertForSequenceClassification::init(config, DType::F32, &dev, 0)?;
//! let batch = BertBatch {
//!     input_ids: Tensor::new(&[[2u32, 17, 42, 3], [2, 9, 3, 0]], &dev)?,
//!     token_type_ids: None,
//!     attention_mask: Some(Tensor::new(&[[1u32, 1, 1, 1], [1, 1, 1, 0]], &dev)?),
//! };
//! assert_eq!(model.forward_t(&batch, false)?.dims(), [2, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod config;
mod model;
pub mod naming;

pub use config::DistilBertConfig;
pub use model::{
    DistilBert, DistilBertEncoder, DistilBertForSequenceClassification,
    DistilBertForTokenClassification,
};
