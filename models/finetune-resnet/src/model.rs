//! `ResNet`: stem (7×7/2 conv, BatchNorm, ReLU, 3×3/2 max-pool with padding 1) → four stages of
//! residual blocks → global average pooling → dropout (`drop_rate`, training only) → `fc`.

use crate::batch_norm::{BatchNorm2d, BnMode};
use crate::block::{Block, ConvBn, Pass};
use crate::config::ResNetConfig;
use crate::init::init_tensor;
use crate::kernels::Kernels;
use crate::load::{load_checkpoint, HeadPolicy, LoadReport};
use crate::naming::{block_shapes, canonical_name, expected_tensors, Role};
use candle_core::{DType, Device, Module, Tensor};
use finetune_core::nn::{linear, Linear};
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, NamePattern, ParamStore, ProblemType, Result, Rng};
use finetune_kernels::ops;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;

/// How [`ResNet::from_pretrained`] sets the model up.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Class names. They replace the checkpoint's labels; an `fc` of another size is replaced
    /// by a fresh one (reported).
    pub labels: Option<Vec<String>>,
    /// Number of classes when no names are given (same effect on `fc` as `labels`).
    pub num_classes: Option<usize>,
    /// Initialise a fresh `fc` even when the checkpoint's fits (new classes, same count).
    pub new_head: bool,
    /// The architecture (`resnet50`, …) when the folder has no `config.json`; when it has one,
    /// they must agree.
    pub architecture: Option<String>,
    /// Overrides the config's dropout before `fc`.
    pub drop_rate: Option<f64>,
    /// Replaces the config's `problem_type` (and so the loss).
    pub problem_type: Option<ProblemType>,
    /// Statistics mode of every BatchNorm layer in training (see [`ResNet::set_bn_mode`]).
    pub bn_mode: BnMode,
    /// The floating dtype of the parameters (the checkpoint's are converted; the
    /// `num_batches_tracked` counters stay integers); default `F32`.
    pub dtype: DType,
    /// Where the tensors live; default the CPU.
    pub device: Device,
    /// Seeds the head initialisation and the dropout stream.
    pub seed: u64,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            labels: None,
            num_classes: None,
            new_head: false,
            architecture: None,
            drop_rate: None,
            problem_type: None,
            bn_mode: BnMode::Train,
            dtype: DType::F32,
            device: Device::Cpu,
            seed: 42,
        }
    }
}

/// A torchvision/timm ResNet that trains: every tensor lives in a [`ParamStore`] under
/// torchvision's names (`conv1.weight`, `layer1.0.bn1.running_mean`, `fc.bias`, …),
/// BatchNorm follows PyTorch's training semantics (see [`BnMode`]), and dropout before `fc`
/// is live in training.
///
/// Build it with [`ResNet::from_pretrained`] (a checkpoint folder), [`ResNet::init`] (random
/// weights) or [`ResNet::new`] (a store you filled). Inputs are float images
/// `[N, in_chans, H, W]`, already normalised as [`ResNetConfig::preprocessing`] says;
/// outputs are logits `[N, num_classes]`.
pub struct ResNet {
    config: ResNetConfig,
    store: ParamStore,
    stem: ConvBn,
    stages: Vec<Vec<Block>>,
    fc: Linear,
    rng: Mutex<Rng>,
    kernels: AtomicU8,
}

impl ResNet {
    /// Builds the model over a store holding every tensor of
    /// [`crate::naming::expected_tensors`]; shapes are checked.
    pub fn new(store: ParamStore, config: ResNetConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let stem = ConvBn::new(
            &store,
            "conv1.weight",
            "bn1",
            config.in_chans,
            config.stem_width,
            7,
            2,
            &config,
        )?;
        let stages = block_shapes(&config)
            .iter()
            .enumerate()
            .map(|(s, blocks)| {
                blocks
                    .iter()
                    .enumerate()
                    .map(|(i, b)| Block::new(&store, &format!("layer{}.{i}", s + 1), b, &config))
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let fc = linear(
            &store,
            "fc",
            config.num_features(),
            config.num_classes,
            true,
        )?;
        Ok(Self {
            stem,
            stages,
            fc,
            rng: Mutex::new(Rng::seed_from_u64(seed)),
            kernels: AtomicU8::new(Kernels::default().to_u8()),
            config,
            store,
        })
    }

    /// A randomly initialised model (torchvision's initialisation, see [`crate::init`]): for
    /// training from scratch.
    pub fn init(config: ResNetConfig, dtype: DType, device: &Device, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let store = ParamStore::new();
        for e in expected_tensors(&config) {
            let t = init_tensor(&e, &config, &mut rng, dtype, device)?;
            store.insert(&e.name, &t, e.kind)?;
        }
        Self::new(store, config, rng.next_u64())
    }

    /// Loads `dir`: `config.json` (timm or transformers format; optional when
    /// `opts.architecture` is given) and `model.safetensors` (or a sharded index), in either
    /// naming.
    pub fn from_pretrained(dir: &Path, opts: &LoadOptions) -> Result<(Self, LoadReport)> {
        let ckpt = Checkpoint::open(dir)?;
        let cfg_path = dir.join("config.json");
        let mut config = if cfg_path.is_file() {
            let c = ResNetConfig::from_file(&cfg_path)?;
            if let Some(a) = &opts.architecture {
                if a.split('.').next() != Some(c.architecture.as_str()) {
                    return Err(Error::config(format!(
                        "architecture `{a}` was asked for, but {} describes `{}`",
                        cfg_path.display(),
                        c.architecture
                    )));
                }
            }
            c
        } else {
            let arch = opts.architecture.as_deref().ok_or_else(|| {
                Error::config(format!(
                    "{} has no config.json: name the architecture (e.g. resnet50)",
                    dir.display()
                ))
            })?;
            // The class count of the checkpoint's head, if it has one.
            let head = ckpt
                .headers()
                .iter()
                .find(|h| canonical_name(&h.name).as_deref() == Some("fc.bias"))
                .map(|h| h.shape.first().copied().unwrap_or(0));
            let n = opts
                .labels
                .as_ref()
                .map(Vec::len)
                .or(opts.num_classes)
                .or(head)
                .ok_or_else(|| {
                    Error::config("the checkpoint has no head: give the labels or num_classes")
                })?;
            ResNetConfig::from_name(arch, n)?
        };
        match (&opts.labels, opts.num_classes) {
            (Some(l), Some(n)) if l.len() != n => {
                return Err(Error::config(format!(
                    "{} labels given for num_classes {n}",
                    l.len()
                )))
            }
            (Some(l), _) => {
                if l.is_empty() {
                    return Err(Error::config("at least one label is needed"));
                }
                config.set_labels(l);
            }
            (None, Some(n)) if n != config.num_classes => {
                config.num_classes = n;
                config.label_names = None;
            }
            _ => {}
        }
        if let Some(p) = opts.drop_rate {
            config.drop_rate = p;
        }
        if let Some(p) = opts.problem_type {
            config.problem_type = p;
        }
        config.validate()?;
        let head = if opts.new_head {
            HeadPolicy::Replace
        } else if opts.labels.is_some() || opts.num_classes.is_some() {
            HeadPolicy::ReplaceIfMismatched
        } else {
            HeadPolicy::Keep
        };
        let mut rng = Rng::seed_from_u64(opts.seed);
        let (store, report) =
            load_checkpoint(&ckpt, &config, head, &opts.device, opts.dtype, &mut rng)?;
        let model = Self::new(store, config, rng.next_u64())?;
        for bn in model.batch_norms() {
            bn.set_mode(opts.bn_mode);
        }
        Ok((model, report))
    }

    /// The model's configuration, with the labels and overrides applied at load.
    pub fn config(&self) -> &ResNetConfig {
        &self.config
    }

    /// Every parameter and BatchNorm buffer, under torchvision's names; freezing and the
    /// optimizer work on it.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// Replaces the preprocessing settings (e.g. another input size to fine-tune at); they go
    /// into the exported `pretrained_cfg`. The channel count must stay the model's.
    pub fn set_preprocessing(&mut self, preprocessing: crate::Preprocessing) -> Result<()> {
        let mut config = self.config.clone();
        config.preprocessing = preprocessing;
        config.preprocessing.validate()?;
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// Outputs of `fc` (the config's `num_classes`).
    pub fn num_classes(&self) -> usize {
        self.config.num_classes
    }

    /// The kernels the forward runs (fused by default; candle's for comparisons).
    pub fn kernels(&self) -> Kernels {
        Kernels::from_u8(self.kernels.load(Ordering::Relaxed))
    }

    /// Chooses the kernels later forwards run (see [`Kernels`]); the result is the same
    /// function either way.
    pub fn set_kernels(&self, kernels: Kernels) {
        self.kernels.store(kernels.to_u8(), Ordering::Relaxed)
    }

    /// The dropout stream's state, for checkpoints.
    pub fn rng_state(&self) -> Rng {
        self.lock_rng().clone()
    }

    /// Restores the dropout stream saved with [`Self::rng_state`], for an exact resume.
    pub fn set_rng_state(&self, rng: Rng) {
        *self.lock_rng() = rng;
    }

    fn lock_rng(&self) -> std::sync::MutexGuard<'_, Rng> {
        self.rng.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every BatchNorm layer, stem first, in module order.
    pub fn batch_norms(&self) -> Vec<&BatchNorm2d> {
        let mut out = vec![&self.stem.bn];
        for b in self.stages.iter().flatten() {
            out.extend(b.batch_norms());
        }
        out
    }

    /// Sets the training-mode statistics behaviour of the BatchNorm layers that own a tensor
    /// matching `pattern` (the freeze-pattern syntax over torchvision names: `*` for all,
    /// `layer1.*`, `{bn1,layer1.*}`); returns how many layers changed mode. A pattern that
    /// matches no BatchNorm tensor is an error.
    pub fn set_bn_mode(&self, mode: BnMode, pattern: &str) -> Result<usize> {
        let p = NamePattern::new(pattern)?;
        let mut matched = 0;
        let mut changed = 0;
        for bn in self.batch_norms() {
            if bn.tensor_names().iter().any(|n| p.matches(n)) {
                matched += 1;
                changed += usize::from(bn.mode() != mode);
                bn.set_mode(mode);
            }
        }
        if matched == 0 {
            return Err(Error::Pattern {
                pattern: pattern.to_string(),
                msg: "matches no BatchNorm layer (names look like `layer1.0.bn1.weight`)".into(),
            });
        }
        Ok(changed)
    }

    /// Pooled features `[N, num_features]` of images `[N, in_chans, H, W]`; BatchNorm layers
    /// use batch statistics when `train` (unless their mode says otherwise).
    pub fn forward_features(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let dims = x.dims();
        if dims.len() != 4 || dims[1] != self.config.in_chans || !x.dtype().is_float() {
            return Err(Error::config(format!(
                "expected float images [N, {}, H, W], got {:?} {:?}",
                self.config.in_chans,
                x.dtype(),
                dims
            )));
        }
        let x = x.to_dtype(self.stem.conv.weight().tensor().dtype())?;
        let pass = Pass {
            train,
            rng: &self.rng,
            kernels: self.kernels(),
        };
        let mut y = self.stem.forward_t(&x, pass, true)?;
        y = ops::max_pool2d(&y, (3, 3), (2, 2), (1, 1))?;
        for block in self.stages.iter().flatten() {
            y = block.forward_t(&y, pass)?;
        }
        // The fused part ends here: pooling, head and loss are left to candle's backward.
        Ok(finetune_kernels::tape::cut(&y)?.mean((2, 3))?)
    }

    /// Logits `[N, num_classes]`; dropout before `fc` is active when `train`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_head(&self.forward_features(x, train)?, train)
    }

    /// The head alone: dropout (when `train`) then `fc`, on pooled features
    /// `[N, num_features]` from [`Self::forward_features`].
    pub fn forward_head(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        let f = if train && self.config.drop_rate > 0.0 {
            ops::dropout(features, self.config.drop_rate, true, &mut self.lock_rng())?
        } else {
            features.clone()
        };
        Ok(self.fc.forward(&f)?)
    }

    /// Why [`Self::forward_features`] in training mode is not a fixed function of its input
    /// now: the BatchNorm layers that use batch statistics (`None`: none does).
    pub fn features_randomness(&self) -> Option<String> {
        let live: Vec<&str> = self
            .batch_norms()
            .into_iter()
            .filter(|bn| bn.uses_batch_stats(true))
            .map(|bn| bn.prefix())
            .collect();
        live.first().map(|first| {
            format!(
                "{} BatchNorm layers use batch statistics in training (`{first}`, ...; \
                 --freeze-bn keeps frozen layers' statistics fixed)",
                live.len()
            )
        })
    }

    /// The loss of the config's `problem_type`: mean cross-entropy of `logits` `[N, C]`
    /// against class ids `[N]` (with label smoothing), or BCE-with-logits against multi-hot
    /// `[N, C]` targets (see [`ProblemType::loss`]).
    pub fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor> {
        self.config
            .problem_type
            .loss(logits, targets, label_smoothing)
    }

    /// Replaces `fc` by a fresh one for `labels` (initialised like `torch.nn.Linear` from
    /// `seed`); the labels go into the config. The head keeps its trainable flag; optimizer
    /// state built for the old head no longer applies.
    pub fn replace_head<S: AsRef<str>>(&mut self, labels: &[S], seed: u64) -> Result<()> {
        if labels.is_empty() {
            return Err(Error::config("at least one label is needed"));
        }
        let mut config = self.config.clone();
        config.set_labels(labels);
        config.validate()?;
        let w = self.fc.weight().tensor();
        let (dtype, dev) = (w.dtype(), w.device().clone());
        let mut rng = Rng::seed_from_u64(seed);
        for e in expected_tensors(&config)
            .iter()
            .filter(|e| e.role == Role::Head)
        {
            let t = init_tensor(e, &config, &mut rng, dtype, &dev)?;
            self.store.replace(&e.name, &t)?;
        }
        self.fc = linear(
            &self.store,
            "fc",
            config.num_features(),
            config.num_classes,
            true,
        )?;
        self.config = config;
        Ok(())
    }
}
