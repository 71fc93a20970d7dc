//! RoBERTa and XLM-RoBERTa (`model_type: roberta`, `xlm-roberta`; `finetune-roberta`) for text
//! classification, loaded and tokenised as every family built on `finetune-bert` is
//! ([`super::encoder`]).

use super::encoder::{labels, load};
use super::{Family, Loader};
use finetune_roberta::Roberta;

pub(super) static FAMILY: Family = Family {
    name: "RoBERTa",
    model_types: &finetune_roberta::config::MODEL_TYPES,
    timm_architectures: &[],
    fresh: &[],
    labels: labels::<Roberta>,
    training_name: finetune_roberta::naming::canonical_name,
    layout: finetune_roberta::naming::layout,
    library: "transformers",
    loader: Loader::Text(load::<Roberta>),
};
