//! DistilBERT (`model_type: distilbert`; `finetune-distilbert`) for text classification,
//! loaded and tokenised as every family built on `finetune-bert` is ([`super::encoder`]).

use super::encoder::text_family;
use super::Family;
use finetune_distilbert::DistilBert;

pub(super) static FAMILY: Family = text_family::<DistilBert>("DistilBERT", &["distilbert"]);
