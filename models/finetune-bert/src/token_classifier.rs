//! [`TokenClassifier`]: a family's encoder with a `classifier` on every token — transformers'
//! `…ForTokenClassification` (named entity recognition): encoder, dropout, `classifier`
//! (`[num_labels, hidden]`), logits `[B, T, num_labels]`, cross-entropy over the tokens whose
//! target is not [`IGNORE_INDEX`]. Generic over the family's [`Architecture`] as
//! [`crate::SequenceClassifier`] is; the family declares its encoder ([`Encoder`]), the
//! head's dropout ([`EncoderConfig::token_dropout`]) and its export name
//! ([`EncoderConfig::to_token_export_json`]).

use crate::arch::{Architecture, Encoder, EncoderConfig, Expected, Role};
use crate::backbone::Backbone;
use crate::classifier::{additive_mask, configured, init_store, BertBatch, LoadOptions};
use crate::dropout::DropoutRng;
use crate::load::{load_expected, LoadReport};
use crate::pass::Pass;
use candle_core::{DType, Tensor};
use finetune_core::model::IGNORE_INDEX;
use finetune_core::model_io::{export_folder, torch_dtype};
use finetune_core::nn::{linear, Linear};
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, Output, ParamLayout, ParamStore, Problem, Result, Rng, TrainModel};
use finetune_kernels::ops::{self, OpSet};
use std::path::{Path, PathBuf};

/// The token head's name in every family's `…ForTokenClassification` state dict.
pub const HEAD: &str = "classifier";

/// A trainable token classifier of architecture `A` (see the module doc). Build it with
/// [`Self::from_pretrained`] or [`Self::new`].
pub struct TokenClassifier<A: Architecture> {
    config: A::Config,
    store: ParamStore,
    encoder: A::Encoder,
    classifier: Linear,
    rng: DropoutRng,
    ops: OpSet,
    dtype: DType,
    source: Option<PathBuf>,
}

/// The tensors of a token classifier of `config`: the backbone's, then `classifier`.
pub fn expected_tensors<C: EncoderConfig>(config: &C) -> Vec<Expected> {
    let mut out = Backbone::tensors(config);
    let (h, n) = (config.encoder_spec().hidden, config.num_labels());
    out.push((format!("{HEAD}.weight"), vec![n, h], Role::Head));
    out.push((format!("{HEAD}.bias"), vec![n], Role::Head));
    out
}

impl<A: Architecture> TokenClassifier<A> {
    /// The model over a store holding every tensor of [`expected_tensors`]; shapes checked.
    pub fn new(store: ParamStore, config: A::Config, seed: u64) -> Result<Self> {
        config.validate()?;
        let first = expected_tensors(&config).swap_remove(0).0;
        let (h, n) = (config.encoder_spec().hidden, config.num_labels());
        Ok(Self {
            encoder: A::Encoder::build(&store, &config)?,
            classifier: linear(&store, HEAD, h, n, true)?,
            dtype: store.get(&first)?.dtype(),
            rng: DropoutRng::new(seed),
            ops: OpSet::default(),
            source: None,
            config,
            store,
        })
    }

    /// Loads `dir` (`config.json` + weights): the encoder must be there (either naming), the
    /// `classifier` is kept when its shape fits the labels, else initialised and reported; a
    /// sequence head or pooler in the checkpoint goes unused.
    pub fn from_pretrained(dir: &Path, opts: &LoadOptions) -> Result<(Self, LoadReport)> {
        let config = configured::<A::Config>(dir, opts)?;
        let ckpt = Checkpoint::open(dir)?;
        let mut rng = Rng::seed_from_u64(opts.seed);
        let expected = expected_tensors(&config);
        let (store, report) = load_expected(
            &ckpt,
            &config,
            &expected,
            opts.new_head,
            &opts.device,
            opts.dtype,
            &mut rng,
        )?;
        let mut model = Self::new(store, config, rng.next_u64())?;
        model.source = Some(dir.to_path_buf());
        Ok((model, report))
    }

    /// The configuration, with the labels and overrides applied at load.
    pub fn config(&self) -> &A::Config {
        &self.config
    }

    /// The folder the model was loaded from, whose tokenizer files exports copy.
    pub fn source_dir(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// Which op implementations the forward runs on.
    pub fn set_op_set(&mut self, ops: OpSet) {
        self.ops = ops;
    }

    /// Logits `[B, T, num_labels]`, one row per token (padding included); dropout live when
    /// `train`.
    pub fn forward_t(&self, b: &BertBatch, train: bool) -> Result<Tensor> {
        let (bsz, t) = b.input_ids.dims2()?;
        let limit = self.config.max_length();
        if t > limit {
            return Err(Error::config(format!(
                "sequence length {t} exceeds the model's limit of {limit} tokens"
            )));
        }
        let pass = Pass {
            train,
            rng: &self.rng,
            ops: self.ops,
        };
        let mask = additive_mask(b, self.dtype)?;
        let seq = self.encoder.encode(b, mask.as_ref(), &pass)?;
        let seq = finetune_kernels::tape::cut(&seq)?;
        let h = seq.dim(2)?;
        let x = pass.dropout(&seq.reshape((bsz * t, h))?, self.config.token_dropout())?;
        let logits = pass.linear(&self.classifier, &x)?;
        Ok(logits.reshape((bsz, t, self.config.num_labels()))?)
    }

    /// Mean cross-entropy of `logits` `[B, T, L]` against `targets` `[B, T]` (integer class
    /// ids, [`IGNORE_INDEX`] for tokens without a label) over the labelled tokens.
    pub fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor> {
        self.weighted(logits, targets, label_smoothing, None)
    }

    /// [`Self::loss`] with a weight per class, or without when `weights` is `None`: PyTorch's
    /// weighted mean over the labelled tokens.
    pub fn weighted(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        label_smoothing: f64,
        weights: Option<&[f64]>,
    ) -> Result<Tensor> {
        let (b, t, l) = logits.dims3()?;
        if targets.dims() != [b, t] {
            return Err(Error::config(format!(
                "token targets must be [{b}, {t}] like the logits, got {:?}",
                targets.dims()
            )));
        }
        let flat = targets.flatten_all()?.to_dtype(DType::I64)?;
        let logits = logits.reshape((b * t, l))?;
        let ignore = Some(IGNORE_INDEX);
        Ok(match weights {
            Some(w) => ops::weighted_cross_entropy(&logits, &flat, label_smoothing, ignore, w)?,
            None => ops::cross_entropy(&logits, &flat, label_smoothing, ignore)?,
        })
    }

    /// Writes the model for transformers' `AutoModelForTokenClassification` into `dir`, in
    /// `dtype` when given, with the tokenizer files of the folder it came from.
    pub fn export_as(&self, dir: &Path, dtype: Option<DType>) -> Result<()> {
        let mut config = self.config.to_token_export_json();
        if let Some(d) = dtype {
            config["torch_dtype"] = serde_json::json!(torch_dtype(d));
        }
        let files = A::Config::TOKENIZER_FILES;
        export_folder(dir, &self.store, dtype, &config, self.source_dir(), files)
    }

    /// A randomly initialised model (transformers' `_init_weights`), for tests.
    pub fn init(config: A::Config, dtype: DType, seed: u64) -> Result<Self> {
        let mut rng = Rng::seed_from_u64(seed);
        let expected = expected_tensors(&config);
        let dev = candle_core::Device::Cpu;
        let store = init_store(&config, &expected, dtype, &dev, &mut rng)?;
        Self::new(store, config, rng.next_u64())
    }
}

impl<A: Architecture> TrainModel for TokenClassifier<A> {
    type Inputs = BertBatch;

    fn store(&self) -> &ParamStore {
        &self.store
    }

    fn forward_t(&self, inputs: &BertBatch, train: bool) -> Result<Tensor> {
        TokenClassifier::forward_t(self, inputs, train)
    }

    fn loss(&self, logits: &Tensor, targets: &Tensor, ls: f64) -> Result<Tensor> {
        TokenClassifier::loss(self, logits, targets, ls)
    }

    fn weighted_loss(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        ls: f64,
        w: &[f64],
    ) -> Result<Tensor> {
        self.weighted(logits, targets, ls, Some(w))
    }

    /// One class per token, out of the tags.
    fn problem(&self) -> Problem {
        Problem::SingleLabel {
            labels: self.config.labels(),
        }
    }

    fn output(&self) -> Output {
        Output::PerToken
    }

    /// The family's depths and other naming; the head is `classifier` alone.
    fn layout(&self) -> ParamLayout {
        let mut layout = A::Config::layout();
        layout.head = vec![format!("{HEAD}.*")];
        layout
    }

    fn rng_state(&self) -> Option<Rng> {
        Some(self.rng.state())
    }

    fn set_rng_state(&self, rng: Rng) {
        self.rng.set_state(rng)
    }

    fn export(&self, dir: &Path) -> Result<()> {
        self.export_as(dir, None)
    }
}
