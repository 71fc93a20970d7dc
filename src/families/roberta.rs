//! RoBERTa and XLM-RoBERTa (`model_type: roberta`, `xlm-roberta`; `finetune-roberta`) for text
//! classification, loaded and tokenised as every family built on `finetune-bert` is
//! ([`super::encoder`]).

use super::encoder::text_family;
use super::Family;
use finetune_roberta::config::MODEL_TYPES;
use finetune_roberta::Roberta;

pub(super) static FAMILY: Family = text_family::<Roberta>("RoBERTa", &MODEL_TYPES);
