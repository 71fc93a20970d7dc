//! [`SequenceClassifier`]: a family's [`Architecture`] made a trainable sequence classifier —
//! parameters in a [`ParamStore`], the dropout stream, the fused ops, loading, the attention
//! mask, the backbone/head cut, the loss transformers picks from `problem_type`. BERT is
//! `SequenceClassifier<Bert>`; the other families of this crate's kind are too.

use crate::arch::{Architecture, EncoderConfig, Expected};
use crate::dropout::DropoutRng;
use crate::head_config::ProblemType;
use crate::load::{load_checkpoint, LoadReport};
use crate::pass::Pass;
use candle_core::{DType, Device, Tensor};
use finetune_core::nn::init;
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, ParamStore, Result, Rng, TensorKind};
use finetune_kernels::ops::OpSet;
use std::path::{Path, PathBuf};

/// One batch of token ids, `[B, T]` each (`u32`); absent token types mean all zeros and an
/// absent mask means "attend everywhere".
#[derive(Debug, Clone)]
pub struct BertBatch {
    /// Token ids `[B, T]` (`u32`), each below `vocab_size`; `T` at most
    /// `max_position_embeddings`.
    pub input_ids: Tensor,
    /// Segment ids `[B, T]` (`u32`, below `type_vocab_size`): 0 for the first text, 1 for the
    /// second of a pair.
    pub token_type_ids: Option<Tensor>,
    /// `[B, T]`, 1 for a real token and 0 for padding (any dtype; converted to the model's).
    pub attention_mask: Option<Tensor>,
}

/// How [`SequenceClassifier::from_pretrained`] sets the model up.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Class names; when given they replace the checkpoint's labels (a head of another size is
    /// re-initialised and reported).
    pub labels: Option<Vec<String>>,
    /// Initialise a fresh classifier even when the checkpoint's fits (new classes, same
    /// count); the replaced tensors are reported.
    pub new_head: bool,
    /// Replaces the config's `problem_type` (and so the loss).
    pub problem_type: Option<ProblemType>,
    /// Replaces the checkpoint's backbone dropout probabilities (BERT's
    /// `hidden_dropout_prob` and `attention_probs_dropout_prob`: transformers' meaning of
    /// overriding "dropout"); the head keeps its own when the config sets it.
    pub dropout: Option<f64>,
    /// The floating dtype of every parameter (the checkpoint's are converted); default `F32`.
    pub dtype: DType,
    /// Where the parameters live; default the CPU.
    pub device: Device,
    /// Seeds the head initialisation and the dropout stream.
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            labels: None,
            new_head: false,
            problem_type: None,
            dropout: None,
            dtype: DType::F32,
            device: Device::Cpu,
            seed: 42,
        }
    }
}

/// `dir`'s `config.json` with `opts`' labels, problem type and dropout applied, validated:
/// what every task model of this crate loads with.
pub(crate) fn configured<C: EncoderConfig>(dir: &Path, opts: &LoadOptions) -> Result<C> {
    let mut config = C::from_file(&dir.join("config.json"))?;
    if let Some(labels) = &opts.labels {
        if labels.is_empty() {
            return Err(Error::config("at least one label is needed"));
        }
        config.classifier_mut().set_labels(labels);
    }
    if opts.problem_type.is_some() {
        config.classifier_mut().problem_type = opts.problem_type;
    }
    if let Some(p) = opts.dropout {
        config.set_dropout(p);
    }
    config.validate()?;
    Ok(config)
}

/// A store of the `expected` tensors initialised as transformers' `_init_weights` does:
/// weights normal(0, `initializer_range`), biases zero, LayerNorm weights one.
pub(crate) fn init_store<C: EncoderConfig>(
    config: &C,
    expected: &[Expected],
    dtype: DType,
    device: &Device,
    rng: &mut Rng,
) -> Result<ParamStore> {
    let store = ParamStore::new();
    let std = config.initializer_range();
    for (name, shape, _) in expected {
        let t = if name.ends_with(".bias") {
            Tensor::zeros(shape.as_slice(), dtype, device)?
        } else if shape.len() == 1 {
            Tensor::ones(shape.as_slice(), dtype, device)?
        } else {
            init::normal(shape, 0.0, std, rng, dtype, device)?
        };
        store.insert(name, &t, TensorKind::Parameter)?;
    }
    Ok(store)
}

/// A trainable sequence classifier of architecture `A` (transformers'
/// `BertForSequenceClassification` for [`crate::Bert`]): every parameter lives in a
/// [`ParamStore`] under transformers' names, dropout is live when the forward is asked for
/// training, and the forward runs on `finetune_kernels`' fused ops (or candle's compositions,
/// see [`Self::set_op_set`]).
///
/// Build it with [`Self::from_pretrained`] (a checkpoint folder), [`Self::init`] (random
/// weights) or [`Self::new`] (a store you filled). Inputs are a [`BertBatch`]; outputs are
/// logits `[B, num_labels]`.
pub struct SequenceClassifier<A: Architecture> {
    config: A::Config,
    store: ParamStore,
    arch: A,
    rng: DropoutRng,
    ops: OpSet,
    /// The parameters' floating dtype (that of the first, the word embedding).
    dtype: DType,
    /// The folder the model was loaded from: its tokenizer files go with every export.
    source: Option<PathBuf>,
}

impl<A: Architecture> SequenceClassifier<A> {
    /// Builds the model over a store holding every tensor under the model's names
    /// ([`EncoderConfig::expected_tensors`]); shapes are checked.
    pub fn new(store: ParamStore, config: A::Config, seed: u64) -> Result<Self> {
        config.validate()?;
        let first = config.expected_tensors().swap_remove(0).0;
        Ok(Self {
            arch: A::build(&store, &config)?,
            dtype: store.get(&first)?.dtype(),
            rng: DropoutRng::new(seed),
            ops: OpSet::default(),
            source: None,
            config,
            store,
        })
    }

    /// A randomly initialised model of `config` (transformers' `_init_weights`: weights
    /// normal(0, `initializer_range`), biases zero, LayerNorm weights one): for benchmarks
    /// and tests that need no checkpoint.
    pub fn init(config: A::Config, dtype: DType, device: &Device, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let expected = config.expected_tensors();
        let store = init_store(&config, &expected, dtype, device, &mut rng)?;
        Self::new(store, config, rng.next_u64())
    }

    /// Which op implementations the forward runs on: the fused kernels (the default) or
    /// candle's stock compositions (the baseline of `finetune bench train --baseline`).
    pub fn set_op_set(&mut self, ops: OpSet) {
        self.ops = ops;
    }

    /// The op implementations the forward runs on (see [`Self::set_op_set`]).
    pub fn op_set(&self) -> OpSet {
        self.ops
    }

    /// Loads `dir` (`config.json` + `model.safetensors` or a sharded index).
    pub fn from_pretrained(dir: &Path, opts: &LoadOptions) -> Result<(Self, LoadReport)> {
        let config = configured::<A::Config>(dir, opts)?;
        let ckpt = Checkpoint::open(dir)?;
        let mut rng = Rng::seed_from_u64(opts.seed);
        let (store, report) = load_checkpoint(
            &ckpt,
            &config,
            opts.new_head,
            &opts.device,
            opts.dtype,
            &mut rng,
        )?;
        let mut model = Self::new(store, config, rng.next_u64())?;
        model.source = Some(dir.to_path_buf());
        Ok((model, report))
    }

    /// The model's configuration, with the labels and overrides applied at load.
    pub fn config(&self) -> &A::Config {
        &self.config
    }

    /// The folder the model was loaded from (`None` for a model built in memory), whose
    /// tokenizer files exports copy.
    pub fn source_dir(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Every parameter, under transformers' names; freezing and the optimizer work on it.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// The dropout stream's state, for checkpoints.
    pub fn rng_state(&self) -> Rng {
        self.rng.state()
    }

    /// Restores the dropout stream saved with [`Self::rng_state`], for an exact resume.
    pub fn set_rng_state(&self, rng: Rng) {
        self.rng.set_state(rng)
    }

    /// The encoder's last hidden states `[B, T, H]` (what the bare model returns first).
    pub fn encode(&self, b: &BertBatch, train: bool) -> Result<Tensor> {
        let (_, t) = b.input_ids.dims2()?;
        let limit = self.config.max_length();
        if t > limit {
            return Err(Error::config(format!(
                "sequence length {t} exceeds the model's limit of {limit} tokens"
            )));
        }
        let mask = additive_mask(b, self.dtype)?;
        self.arch.encode(b, mask.as_ref(), &self.pass(train))
    }

    fn pass(&self, train: bool) -> Pass<'_> {
        Pass {
            train,
            rng: &self.rng,
            ops: self.ops,
        }
    }

    /// Logits `[B, num_labels]`; dropout is active when `train`.
    pub fn forward_t(&self, b: &BertBatch, train: bool) -> Result<Tensor> {
        self.forward_head(&self.features(b, train)?, train)
    }

    /// What the head takes `[B, F]`: the first token's hidden state through the part of the
    /// model below the head (BERT: the pooler's dense + tanh).
    pub fn features(&self, b: &BertBatch, train: bool) -> Result<Tensor> {
        // The fused part ends here: the first-token slice and what follows are left to
        // candle's backward.
        let seq = finetune_kernels::tape::cut(&self.encode(b, train)?)?;
        // A row of its own, as the feature cache stores and gathers rows.
        let first = seq.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?;
        self.arch.pool(&first, &self.pass(train))
    }

    /// The head alone on [`Self::features`]' output (its dropout live when `train`).
    pub fn forward_head(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        self.arch.head(features, &self.pass(train))
    }

    /// Why [`Self::features`] in training mode is not a fixed function of its input: dropout
    /// below the head (`None`: there is none).
    pub fn features_randomness(&self) -> Option<String> {
        self.config.backbone_randomness()
    }

    /// The loss transformers computes for the config's `problem_type` (see
    /// [`ProblemType::loss`]).
    pub fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor> {
        self.config
            .classifier()
            .problem()
            .loss(logits, targets, label_smoothing)
    }
}

/// The additive key mask `[B, T]` of a batch for a model in `dtype`, or `None` when every
/// token is attended.
pub(crate) fn additive_mask(b: &BertBatch, dtype: DType) -> Result<Option<Tensor>> {
    let (bsz, t) = b.input_ids.dims2()?;
    match &b.attention_mask {
        None => Ok(None),
        Some(m) => {
            if m.dims() != [bsz, t] {
                return Err(Error::config(format!(
                    "attention_mask must be [{bsz}, {t}] like input_ids, got {:?}",
                    m.dims()
                )));
            }
            // (1 − mask) · finfo(dtype).min, as transformers' get_extended_attention_mask:
            // f32's minimum overflows to −∞ in half precision, and 0 · −∞ is NaN.
            let min = match dtype {
                DType::F16 => -65504.0,
                DType::BF16 => -3.389_531_389_251_535_5e38,
                _ => f32::MIN as f64,
            };
            let m = m.to_dtype(dtype)?;
            Ok(Some(((1.0 - m)? * min)?))
        }
    }
}
