//! BERT (`model_type: bert`; `finetune-bert`) for text classification, loaded and tokenised as
//! every family built on `finetune-bert` is ([`super::encoder`]).

use super::encoder::text_family;
use super::Family;
use finetune_bert::Bert;

pub(super) static FAMILY: Family = text_family::<Bert>("BERT", &["bert"]);
