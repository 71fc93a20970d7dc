//! BERT (`model_type: bert`; `finetune-bert`) for text classification, loaded and tokenised as
//! every family built on `finetune-bert` is ([`super::encoder`]).

use super::encoder::{labels, load};
use super::{Family, Loader};
use finetune_bert::Bert;

pub(super) static FAMILY: Family = Family {
    name: "BERT",
    model_types: &["bert"],
    timm_architectures: &[],
    fresh: &[],
    labels: labels::<Bert>,
    training_name: finetune_bert::naming::canonical_name,
    layout: finetune_bert::naming::layout,
    library: "transformers",
    loader: Loader::Text(load::<Bert>),
};
