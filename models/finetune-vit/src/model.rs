//! [`ViT`]: `ViTForImageClassification` that trains — embeddings, pre-LayerNorm encoder layers,
//! the final LayerNorm and `classifier` on the class token — with its preprocessing, loading,
//! the backbone/head cut and the loss.

use crate::config::ViTConfig;
use crate::embeddings::Embeddings;
use crate::layer::Layer;
use crate::load::{init_tensor, load_checkpoint, LoadReport, Resampled};
use crate::naming::expected_tensors;
use candle_core::{DType, Device, Tensor};
use finetune_bert::config_file::read_config;
use finetune_bert::dropout::DropoutRng;
use finetune_bert::{Pass, ProblemType};
use finetune_core::nn::{layer_norm, linear, LayerNorm, Linear};
use finetune_core::preprocess::Preprocessing;
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{Error, ParamStore, Result, Rng, TensorKind};
use finetune_kernels::ops::OpSet;
use std::path::Path;

/// How [`ViT::from_pretrained`] sets the model up.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Class names; when given they replace the checkpoint's labels (a head of another size is
    /// re-initialised and reported).
    pub labels: Option<Vec<String>>,
    /// Initialise a fresh classifier even when the checkpoint's fits.
    pub new_head: bool,
    /// Replaces the checkpoint's `problem_type` (and so the loss and the metrics).
    pub problem_type: Option<ProblemType>,
    /// Square input side replacing the checkpoint's `image_size`: the position embeddings are
    /// resampled to the new patch grid at load, so the model (and its export) is one for that
    /// size.
    pub image_size: Option<usize>,
    /// Replaces the checkpoint's dropout probabilities (`hidden_dropout_prob` and
    /// `attention_probs_dropout_prob`).
    pub dropout: Option<f64>,
    /// The floating dtype of every parameter; default `F32`.
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
            image_size: None,
            dropout: None,
            dtype: DType::F32,
            device: Device::Cpu,
            seed: 42,
        }
    }
}

/// A trainable ViT image classifier: every parameter in a [`ParamStore`] under transformers'
/// names, dropout live when the forward is asked for training, the fused ops underneath.
/// Inputs are normalised images `[B, C, S, S]` (`S` the config's `image_size`); outputs are
/// logits `[B, num_labels]`.
pub struct ViT {
    config: ViTConfig,
    preprocessing: Preprocessing,
    store: ParamStore,
    embeddings: Embeddings,
    layers: Vec<Layer>,
    norm: LayerNorm,
    classifier: Linear,
    rng: DropoutRng,
    ops: OpSet,
}

/// ViT's preprocessing when a checkpoint names none: `ViTImageProcessor`'s defaults (resize
/// straight to the input size, bilinear, mean and std 0.5).
pub fn default_preprocessing(c: &ViTConfig) -> Preprocessing {
    let n = c.num_channels;
    Preprocessing {
        input_size: [n, c.image_size, c.image_size],
        mean: vec![0.5; n],
        std: vec![0.5; n],
        crop_pct: 1.0,
        crop_mode: "squash".into(),
        interpolation: "bilinear".into(),
    }
}

/// A checkpoint folder's config and preprocessing: a timm `config.json` (`architecture`) or a
/// transformers one with `preprocessor_config.json` beside it. Errors name the file.
pub fn read_folder(dir: &Path) -> Result<(ViTConfig, Preprocessing)> {
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let named = |e: Error| Error::Record {
        path: path.clone(),
        msg: e.to_string(),
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Record {
        path: path.clone(),
        msg: format!("not valid JSON: {e}"),
    })?;
    if let Some(obj) = value.as_object().filter(|o| o.contains_key("architecture")) {
        return crate::timm::read(obj).map_err(named);
    }
    let config: ViTConfig = read_config(&path, "ViT", ViTConfig::validate)?;
    let pre_path = dir.join("preprocessor_config.json");
    let pre = if pre_path.is_file() {
        Preprocessing::from_preprocessor_config(&pre_path)?
    } else {
        default_preprocessing(&config)
    };
    Ok((config, pre))
}

impl ViT {
    /// Builds the model over a store holding every tensor of
    /// [`crate::naming::expected_tensors`]; shapes are checked.
    pub fn new(
        store: ParamStore,
        config: ViTConfig,
        pre: Preprocessing,
        seed: u64,
    ) -> Result<Self> {
        config.validate()?;
        let h = config.hidden_size;
        let layers = (0..config.num_hidden_layers)
            .map(|i| Layer::new(&store, &config, &format!("vit.encoder.layer.{i}")))
            .collect::<Result<_>>()?;
        for (module, _) in store.modules() {
            if let Some(path) = crate::naming::peft_module(&module) {
                store.set_peft_path(&module, &path);
            }
        }
        Ok(Self {
            embeddings: Embeddings::new(&store, &config)?,
            layers,
            norm: layer_norm(&store, "vit.layernorm", h, config.layer_norm_eps)?,
            classifier: linear(
                &store,
                "classifier",
                h,
                config.classifier.num_labels(),
                true,
            )?,
            rng: DropoutRng::new(seed),
            ops: OpSet::default(),
            preprocessing: pre,
            config,
            store,
        })
    }

    /// A randomly initialised model of `config` (transformers' `_init_weights`), with ViT's
    /// default preprocessing: a network trained from scratch, benchmarks, tests.
    pub fn init(config: ViTConfig, dtype: DType, device: &Device, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = Rng::seed_from_u64(seed);
        let store = ParamStore::new();
        for (name, shape, _) in expected_tensors(&config) {
            let t = init_tensor(&name, &shape, &config, &mut rng, dtype, device)?;
            store.insert(&name, &t, TensorKind::Parameter)?;
        }
        let pre = default_preprocessing(&config);
        Self::new(store, config, pre, rng.next_u64())
    }

    /// Loads `dir` (`config.json` of transformers or timm + `model.safetensors` or a sharded
    /// index). Also returns the patch grid the position embeddings were resampled from and
    /// to, when `image_size` asked for another.
    pub fn from_pretrained(
        dir: &Path,
        opts: &LoadOptions,
    ) -> Result<(Self, LoadReport, Resampled)> {
        let (mut config, mut pre) = read_folder(dir)?;
        if let Some(labels) = &opts.labels {
            if labels.is_empty() {
                return Err(Error::config("at least one label is needed"));
            }
            config.classifier.set_labels(labels);
        }
        if let Some(p) = opts.problem_type {
            config.classifier.problem_type = Some(p);
        }
        if let Some(s) = opts.image_size {
            config.image_size = s;
        }
        if let Some(p) = opts.dropout {
            config.hidden_dropout_prob = p;
            config.attention_probs_dropout_prob = p;
        }
        config.validate()?;
        pre.input_size = [config.num_channels, config.image_size, config.image_size];
        pre.validate()?;
        let ckpt = Checkpoint::open(dir)?;
        let mut rng = Rng::seed_from_u64(opts.seed);
        let (store, report, resampled) = load_checkpoint(
            &ckpt,
            &config,
            opts.new_head,
            &opts.device,
            opts.dtype,
            &mut rng,
        )?;
        let model = Self::new(store, config, pre, rng.next_u64())?;
        Ok((model, report, resampled))
    }

    /// The configuration, with the labels and overrides applied at load.
    pub fn config(&self) -> &ViTConfig {
        &self.config
    }

    /// The preprocessing the model expects (input size = its `image_size`).
    pub fn preprocessing(&self) -> &Preprocessing {
        &self.preprocessing
    }

    /// Every parameter, under transformers' names.
    pub fn store(&self) -> &ParamStore {
        &self.store
    }

    /// Which op implementations the forward runs on (the fused kernels by default).
    pub fn set_op_set(&mut self, ops: OpSet) {
        self.ops = ops;
    }

    /// The dropout stream's state, for checkpoints.
    pub fn rng_state(&self) -> Rng {
        self.rng.state()
    }

    /// Restores a state saved with [`Self::rng_state`].
    pub fn set_rng_state(&self, rng: Rng) {
        self.rng.set_state(rng)
    }

    fn pass(&self, train: bool) -> Pass<'_> {
        Pass {
            train,
            rng: &self.rng,
            ops: self.ops,
        }
    }

    /// Logits `[B, num_labels]`; dropout is active when `train`.
    pub fn forward_t(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_head(&self.features(images, train)?, train)
    }

    /// What the head takes `[B, H]`: the class token's state after the final LayerNorm.
    pub fn features(&self, images: &Tensor, train: bool) -> Result<Tensor> {
        let pass = self.pass(train);
        let mut x = self.embeddings.forward(images, &pass)?;
        for layer in &self.layers {
            x = layer.forward(&x, &pass)?;
        }
        let x = self.norm.forward_with(&x, self.ops)?;
        // The fused part ends here: the class-token slice and the head are candle's.
        let x = finetune_kernels::tape::cut(&x)?;
        Ok(x.narrow(1, 0, 1)?.squeeze(1)?.contiguous()?)
    }

    /// The head alone on [`Self::features`]' output.
    pub fn forward_head(&self, features: &Tensor, train: bool) -> Result<Tensor> {
        self.pass(train).linear(&self.classifier, features)
    }

    /// Why [`Self::features`] in training is not a fixed function of its input: dropout in
    /// the encoder (`None`: there is none).
    pub fn features_randomness(&self) -> Option<String> {
        let c = &self.config;
        (c.hidden_dropout_prob > 0.0 || c.attention_probs_dropout_prob > 0.0).then(|| {
            format!(
                "dropout in the encoder (hidden_dropout_prob {}, attention_probs_dropout_prob {})",
                c.hidden_dropout_prob, c.attention_probs_dropout_prob
            )
        })
    }

    /// The loss transformers computes for the config's `problem_type`.
    pub fn loss(&self, logits: &Tensor, targets: &Tensor, label_smoothing: f64) -> Result<Tensor> {
        self.problem_type().loss(logits, targets, label_smoothing)
    }

    /// The config's problem type (single-label unless it says otherwise).
    pub fn problem_type(&self) -> ProblemType {
        self.config.classifier.problem()
    }
}
