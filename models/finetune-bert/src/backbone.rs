//! The embeddings and encoder stack of a BERT-like family under its names
//! (`{prefix}.embeddings`, `{prefix}.{layers}.N`): what the families' modules start with, and
//! the tensors every checkpoint of theirs must hold.

use crate::arch::{EncoderConfig, Expected, Role};
use crate::embeddings::Embeddings;
use crate::encoder::{Encoder, LayerNames};
use crate::pass::Pass;
use candle_core::Tensor;
use finetune_core::{ParamStore, Result};

/// Embeddings, then the encoder layers.
pub struct Backbone {
    embeddings: Embeddings,
    encoder: Encoder,
}

/// `{prefix}.embeddings` and `{prefix}.{layers}` of config `C`'s naming.
fn prefixes<C: EncoderConfig>() -> (String, String) {
    let n = C::NAMING;
    (
        format!("{}.embeddings", n.prefix),
        format!("{}.{}", n.prefix, n.layers),
    )
}

impl Backbone {
    /// The embeddings' and layers' tensors of `config` (layers named by `layer`), in module
    /// order; all [`Role::Encoder`].
    pub fn tensors<C: EncoderConfig>(config: &C, layer: &LayerNames) -> Vec<Expected> {
        let (emb, layers) = prefixes::<C>();
        let spec = config.encoder_spec();
        let mut out = Embeddings::tensors(&emb, &config.embedding_spec());
        for l in 0..spec.layers {
            out.extend(layer.tensors(&format!("{layers}.{l}"), &spec));
        }
        out.into_iter()
            .map(|(n, s)| (n, s, Role::Encoder))
            .collect()
    }

    /// The backbone of the store, for `config` (layers named by `layer`).
    pub fn new<C: EncoderConfig>(
        store: &ParamStore,
        config: &C,
        layer: &LayerNames,
    ) -> Result<Self> {
        let (emb, layers) = prefixes::<C>();
        Ok(Self {
            embeddings: Embeddings::new(store, &emb, &config.embedding_spec())?,
            encoder: Encoder::new(store, &config.encoder_spec(), layer, &layers)?,
        })
    }

    /// The last hidden states `[B, T, H]` of `ids` `[B, T]`; `positions` and `token_types` as
    /// [`Embeddings::forward`] takes them, `mask` as [`Encoder::forward`].
    pub fn forward(
        &self,
        ids: &Tensor,
        positions: Option<&Tensor>,
        token_types: Option<&Tensor>,
        mask: Option<&Tensor>,
        pass: &Pass,
    ) -> Result<Tensor> {
        let x = self.embeddings.forward(ids, positions, token_types, pass)?;
        self.encoder.forward(&x, mask, pass)
    }
}

/// The head's tensors: a hidden dense layer `{hidden}` `[h, h]` (BERT's pooler, DistilBERT's
/// `pre_classifier`, RoBERTa's `classifier.dense`: initialised when absent) and the output
/// layer `{out}` `[labels, h]` (also initialised when its shape differs).
pub fn head_tensors(hidden: &str, out: &str, h: usize, labels: usize) -> Vec<Expected> {
    vec![
        (format!("{hidden}.weight"), vec![h, h], Role::Pooler),
        (format!("{hidden}.bias"), vec![h], Role::Pooler),
        (format!("{out}.weight"), vec![labels, h], Role::Head),
        (format!("{out}.bias"), vec![labels], Role::Head),
    ]
}
