//! `finetune-bert`: BERT for sequence classification that trains — fused differentiable ops
//! from `finetune-kernels`, dropout that really drops in training — loaded from Hub safetensors in
//! either naming, tokenised with the checkpoint's tokenizer, exported for transformers.
//!
//! Every BERT fact lives here: the tensor names and how checkpoints' namings map onto them
//! ([`naming`]), which parameters make the head and how deep each one sits
//! ([`naming::layout`]), and the model as `finetune_core`'s `TrainModel` (problem, loss,
//! backbone/head cut, export). It knows no training loop, no data files and no CLI.
//!
//! The pieces BERT shares with the families built like it (RoBERTa, DistilBERT: their own
//! crates) are public here, named by the family that uses them: the embedding block
//! ([`embeddings`]), the post-LayerNorm encoder with its layers' names as data ([`encoder`]),
//! the labels and loss ([`head_config`]), reading a config ([`config_file`]), the tokenizer,
//! and [`SequenceClassifier`], which makes a family's [`Architecture`] a trainable,
//! loadable, exportable classifier, and [`TokenClassifier`], the same for a `classifier` on
//! every token (named entity recognition). Those pieces know no family's names.
//!
//! # Example
//!
//! A tiny randomly initialised BERT (a real one comes from
//! [`BertForSequenceClassification::from_pretrained`] on a checkpoint folder), a forward on a
//! padded batch of token ids, and one loss with its gradients:
//!
//! ```
//! use candle_core::{DType, Device, Tensor};
//! use finetune_bert::{BertBatch, BertConfig, BertForSequenceClassification, EncoderConfig, ProblemType};
//!
//! // A `config.json`; missing keys take transformers' defaults.
//! let config: BertConfig = serde_json::from_str(
//!     r#"{"vocab_size": 100, "hidden_size": 32, "num_hidden_layers": 2,
//!         "num_attention_heads": 4, "intermediate_size": 64, "max_position_embeddings": 16,
//!         "id2label": {"0": "negative", "1": "positive"}}"#,
//! )?;
//! assert_eq!(config.problem(), ProblemType::SingleLabelClassification);
//! let dev = Device::Cpu;
//! let model = BertForSequenceClassification::init(config, DType::F32, &dev, 0)?;
//!
//! // Two sequences, `[CLS] … [SEP]` then padding, as `BertTokenizer::batch` makes them.
//! let batch = BertBatch {
//!     input_ids: Tensor::new(&[[2u32, 17, 42, 3, 0], [2, 9, 3, 0, 0]], &dev)?,
//!     token_type_ids: None,
//!     attention_mask: Some(Tensor::new(&[[1u32, 1, 1, 1, 0], [1, 1, 1, 0, 0]], &dev)?),
//! };
//! let logits = model.forward_t(&batch, false)?; // evaluation: no dropout
//! assert_eq!(logits.dims(), [2, 2]);
//!
//! // Training: dropout is live; cross-entropy against class ids reaches every parameter.
//! let logits = model.forward_t(&batch, true)?;
//! let loss = model.loss(&logits, &Tensor::new(&[1u32, 0], &dev)?, 0.0)?;
//! let grads = loss.backward()?;
//! let word_embeddings = model.store().var("bert.embeddings.word_embeddings.weight")?;
//! assert_eq!(grads.get(&word_embeddings).unwrap().dims(), [100, 32]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod arch;
mod attention;
pub mod backbone;
mod bert;
pub mod classifier;
pub mod config;
pub mod config_file;
pub mod dropout;
pub mod embeddings;
pub mod encoder;
pub mod export;
pub mod head_config;
pub mod load;
pub mod naming;
pub mod pass;
pub mod token_classifier;
pub mod tokenizer;
mod train_model;

pub use arch::{Architecture, Encoder, EncoderConfig, Expected, Role};
pub use backbone::{Backbone, DenseHead, HeadNames};
pub use bert::{
    Bert, BertEncoder, BertForSequenceClassification, BertForTokenClassification, TOKENIZER_FILES,
};
pub use classifier::{BertBatch, LoadOptions, SequenceClassifier};
pub use config::{BertConfig, HiddenAct};
pub use head_config::{ClassifierConfig, ProblemType};
pub use load::LoadReport;
pub use pass::Pass;
pub use token_classifier::TokenClassifier;
pub use tokenizer::{BertTokenizer, WordPieces};
