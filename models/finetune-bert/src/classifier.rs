//! `BertForSequenceClassification`: embeddings → encoder → pooler (dense + tanh on `[CLS]`) →
//! dropout → `classifier`, with the loss transformers picks from `problem_type`.

use crate::config::{BertConfig, ProblemType};
use crate::dropout::DropoutRng;
use crate::embeddings::Embeddings;
use crate::encoder::Encoder;
use crate::load::{load_checkpoint, LoadReport};
use crate::pass::Pass;
use candle_core::{DType, Device, Tensor};
use finetune_core::nn::{init, linear, Linear};
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, ParamStore, Result, Rng, TensorKind};
use finetune_kernels::ops::{self, OpSet};
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

/// How [`BertForSequenceClassification::from_pretrained`] sets the model up.
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
    /// Replaces the checkpoint's `hidden_dropout_prob` and `attention_probs_dropout_prob`
    /// (transformers' meaning of overriding "dropout"); the head keeps `classifier_dropout`
    /// when the config sets it.
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

/// transformers' `BertForSequenceClassification`, trainable: every parameter lives in a
/// [`ParamStore`] under transformers' names (`bert.*`, `classifier.*`), dropout is live when
/// the forward is asked for training, and the forward runs on `finetune_kernels`' fused ops
/// (or candle's compositions, see [`Self::set_op_set`]).
///
/// Build it with [`Self::from_pretrained`] (a checkpoint folder), [`Self::init`] (random
/// weights) or [`Self::new`] (a store you filled). Inputs are a [`BertBatch`]; outputs are
/// logits `[B, num_labels]`.
pub struct BertForSequenceClassification {
    config: BertConfig,
    store: ParamStore,
    embeddings: Embeddings,
    encoder: Encoder,
    pooler: Linear,
    classifier: Linear,
    rng: DropoutRng,
    ops: OpSet,
    /// The folder the model was loaded from: its tokenizer files go with every export.
    source: Option<PathBuf>,
}

impl BertForSequenceClassification {
    /// Builds the model over a store holding every tensor under the model's names
    /// ([`crate::naming::expected_tensors`]); shapes are checked.
    pub fn new(store: ParamStore, config: BertConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let h = config.hidden_size;
        Ok(Self {
            embeddings: Embeddings::new(&store, &config)?,
            encoder: Encoder::new(&store, &config)?,
            pooler: linear(&store, "bert.pooler.dense", h, h, true)?,
            classifier: linear(&store, "classifier", h, config.num_labels(), true)?,
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
    pub fn init(config: BertConfig, dtype: DType, device: &Device, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let store = ParamStore::new();
        for (name, shape, _) in crate::naming::expected_tensors(&config) {
            let t = if name.ends_with(".bias") {
                Tensor::zeros(shape.as_slice(), dtype, device)?
            } else if name.contains("LayerNorm") {
                Tensor::ones(shape.as_slice(), dtype, device)?
            } else {
                init::normal(
                    &shape,
                    0.0,
                    config.initializer_range,
                    &mut rng,
                    dtype,
                    device,
                )?
            };
            store.insert(&name, &t, TensorKind::Parameter)?;
        }
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
        let mut config = BertConfig::from_file(&dir.join("config.json"))?;
        if let Some(labels) = &opts.labels {
            if labels.is_empty() {
                return Err(Error::config("at least one label is needed"));
            }
            config.set_labels(labels);
        }
        if opts.problem_type.is_some() {
            config.problem_type = opts.problem_type;
        }
        if let Some(p) = opts.dropout {
            config.hidden_dropout_prob = p;
            config.attention_probs_dropout_prob = p;
        }
        config.validate()?;
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
    pub fn config(&self) -> &BertConfig {
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

    /// The additive key mask `[B, T]`, or `None` when every token is attended.
    fn extended_mask(&self, b: &BertBatch, dtype: DType) -> Result<Option<Tensor>> {
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
                // (1 − mask) · finfo.min, as transformers' get_extended_attention_mask.
                let m = m.to_dtype(dtype)?;
                Ok(Some(((1.0 - m)? * f32::MIN as f64)?))
            }
        }
    }

    /// The encoder's last hidden states `[B, T, H]` (what `BertModel` returns first).
    pub fn encode(&self, b: &BertBatch, train: bool) -> Result<Tensor> {
        let ids = &b.input_ids;
        let (bsz, t) = ids.dims2()?;
        if t > self.config.max_position_embeddings {
            return Err(Error::config(format!(
                "sequence length {t} exceeds max_position_embeddings {}",
                self.config.max_position_embeddings
            )));
        }
        let types = match &b.token_type_ids {
            Some(tt) => tt.clone(),
            None => Tensor::zeros((bsz, t), candle_core::DType::U32, ids.device())?,
        };
        let pass = self.pass(train);
        let x = self.embeddings.forward(ids, &types, &pass)?;
        let mask = self.extended_mask(b, x.dtype())?;
        self.encoder.forward(&x, mask.as_ref(), &pass)
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
        self.forward_head(&self.pooled(b, train)?, train)
    }

    /// The pooler's output `[B, H]` (dense + tanh on `[CLS]`), before the head's dropout.
    pub fn pooled(&self, b: &BertBatch, train: bool) -> Result<Tensor> {
        // The fused part ends here: the [CLS] slice, pooler and head are left to candle's
        // backward.
        let seq = finetune_kernels::tape::cut(&self.encode(b, train)?)?;
        let cls = seq.narrow(1, 0, 1)?.squeeze(1)?;
        Ok(self.pass(train).linear(&self.pooler, &cls)?.tanh()?)
    }

    /// The head alone on [`Self::pooled`]'s output: dropout (when `train`), then `classifier`.
    pub fn forward_head(&self, pooled: &Tensor, train: bool) -> Result<Tensor> {
        let pooled = self
            .pass(train)
            .dropout(pooled, self.config.classifier_dropout_prob())?;
        self.classifier.forward_with(&pooled, self.ops)
    }

    /// Why [`Self::pooled`] in training mode is not a fixed function of its input: dropout
    /// below the head (`None`: there is none).
    pub fn pooled_randomness(&self) -> Option<String> {
        let c = &self.config;
        (c.hidden_dropout_prob > 0.0 || c.attention_probs_dropout_prob > 0.0).then(|| {
            format!(
                "the encoder's dropout is live in training (hidden {}, attention {}; \
                 --dropout 0 turns it off)",
                c.hidden_dropout_prob, c.attention_probs_dropout_prob
            )
        })
    }

    /// The loss transformers computes for this `problem_type`: cross-entropy (with label
    /// smoothing) over class ids `[B]`; BCE-with-logits over `[B, num_labels]` 0/1 targets;
    /// MSE over `[B]` targets for regression.
    pub fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor> {
        match self.config.problem() {
            ProblemType::SingleLabelClassification => {
                Ok(ops::cross_entropy(logits, targets, label_smoothing, None)?)
            }
            ProblemType::MultiLabelClassification => Ok(ops::binary_cross_entropy_with_logits(
                logits,
                &targets.to_dtype(logits.dtype())?,
            )?),
            ProblemType::Regression => {
                let pred = logits.flatten_all()?;
                Ok(ops::mse(
                    &pred,
                    &targets.flatten_all()?.to_dtype(pred.dtype())?,
                )?)
            }
        }
    }
}
