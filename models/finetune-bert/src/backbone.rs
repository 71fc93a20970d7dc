//! The embeddings and encoder stack of a BERT-like family under its names
//! (`{prefix}.embeddings`, `{prefix}.{layers}.N`), and the two dense layers of its head: the
//! modules every family of this kind is made of, and the tensors its checkpoints hold.

use crate::arch::{EncoderConfig, Expected, Role};
use crate::embeddings::Embeddings;
use crate::encoder::Encoder;
use crate::pass::Pass;
use candle_core::Tensor;
use finetune_core::nn::{linear, Linear};
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
    /// The embeddings' and layers' tensors of `config`, in module order; all
    /// [`Role::Encoder`].
    pub fn tensors<C: EncoderConfig>(config: &C) -> Vec<Expected> {
        let (emb, layers) = prefixes::<C>();
        let spec = config.encoder_spec();
        let mut out = Embeddings::tensors(&emb, &config.embedding_spec());
        for l in 0..spec.layers {
            out.extend(C::LAYER.tensors(&format!("{layers}.{l}"), &spec));
        }
        out.into_iter()
            .map(|(n, s)| (n, s, Role::Encoder))
            .collect()
    }

    /// The backbone of config `C` in the store.
    pub fn new<C: EncoderConfig>(store: &ParamStore, config: &C) -> Result<Self> {
        let (emb, layers) = prefixes::<C>();
        Ok(Self {
            embeddings: Embeddings::new(store, &emb, &config.embedding_spec())?,
            encoder: Encoder::new(store, &config.encoder_spec(), &C::LAYER, &layers)?,
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

/// The names of a head's two dense layers: the hidden one (`[h, h]`: BERT's
/// `bert.pooler.dense`, DistilBERT's `pre_classifier`, RoBERTa's `classifier.dense`) and the
/// output one (`[labels, h]`: `classifier`, `classifier.out_proj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadNames {
    /// The hidden dense layer: initialised (and reported) when the checkpoint lacks it.
    pub hidden: &'static str,
    /// The output layer: also initialised when its shape differs (another number of labels).
    pub out: &'static str,
}

/// A head's two dense layers; each family applies its own activation and dropout around them.
pub struct DenseHead {
    hidden: Linear,
    out: Linear,
}

impl DenseHead {
    /// The head's tensors for width `h` and `labels` outputs.
    pub fn tensors(n: &HeadNames, h: usize, labels: usize) -> Vec<Expected> {
        vec![
            (format!("{}.weight", n.hidden), vec![h, h], Role::Pooler),
            (format!("{}.bias", n.hidden), vec![h], Role::Pooler),
            (format!("{}.weight", n.out), vec![labels, h], Role::Head),
            (format!("{}.bias", n.out), vec![labels], Role::Head),
        ]
    }

    /// The head of config `C` in the store.
    pub fn new<C: EncoderConfig>(store: &ParamStore, config: &C) -> Result<Self> {
        let (h, n) = (config.encoder_spec().hidden, config.num_labels());
        Ok(Self {
            hidden: linear(store, C::HEAD.hidden, h, h, true)?,
            out: linear(store, C::HEAD.out, h, n, true)?,
        })
    }

    /// The hidden layer on `x` `[B, H]`.
    pub fn hidden(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        pass.linear(&self.hidden, x)
    }

    /// The output layer on `x` `[B, H]`: logits `[B, labels]`.
    pub fn out(&self, x: &Tensor, pass: &Pass) -> Result<Tensor> {
        pass.linear(&self.out, x)
    }
}
