//! `finetune-roberta`: RoBERTa and XLM-RoBERTa for sequence classification that train, loaded
//! from Hub safetensors in either naming (`roberta.*` or the bare `RobertaModel`'s), exported
//! for transformers' `RobertaForSequenceClassification` /
//! `XLMRobertaForSequenceClassification`.
//!
//! Every RoBERTa fact lives here: its config ([`RobertaConfig`]: BERT's keys with RoBERTa's
//! defaults and `model_type`s), its names, head and layer depths ([`naming`]), position ids
//! counted from `pad_token_id + 1` past padding ([`positions`]), and its modules
//! ([`Roberta`]: BERT's embeddings and encoder under `roberta.`, the head `classifier.dense` +
//! tanh + `classifier.out_proj` on `<s>`). The encoder, the tokenizer (byte-level BPE and
//! SentencePiece `tokenizer.json`s alike) and the trainable classifier are `finetune-bert`'s.
//! It knows no training loop, no data files and no CLI.
//!
//! # Example
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use finetune_bert::BertBatch;
//! use finetune_roberta::{RobertaConfig, RobertaForSequenceClassification};
//!
//! let config: RobertaConfig = serde_json::from_str(
//!     r#"{"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
//!         "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 18,
//!         "type_vocab_size": 1, "model_type": "roberta"}"#,
//! )?;
//! let dev = Device::Cpu;
//! let model = RobertaForSequenceClassification::init(config, DType::F32, &dev, 0)?;
//! // `<s> … </s>` then padding (`pad_token_id` 1).
//! let batch = BertBatch {
//!     input_ids: Tensor::new(&[[0u32, 17, 42, 2], [0, 9, 2, 1]], &dev)?,
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
pub mod positions;

pub use config::RobertaConfig;
pub use model::{
    Roberta, RobertaEncoder, RobertaForSequenceClassification, RobertaForTokenClassification,
    TOKENIZER_FILES,
};
