//! DistilBERT (`model_type: distilbert`; `finetune-distilbert`) for text classification,
//! loaded and tokenised as every family built on `finetune-bert` is ([`super::encoder`]).

use super::encoder::{labels, load};
use super::{Family, Loader};
use finetune_distilbert::DistilBert;

pub(super) static FAMILY: Family = Family {
    name: "DistilBERT",
    model_types: &["distilbert"],
    timm_architectures: &[],
    fresh: &[],
    labels: labels::<DistilBert>,
    training_name: finetune_distilbert::naming::canonical_name,
    layout: finetune_distilbert::naming::layout,
    library: "transformers",
    loader: Loader::Text(load::<DistilBert>),
};
