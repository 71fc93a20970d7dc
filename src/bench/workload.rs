//! The timed training step: a randomly initialised model of the spec's configuration, one
//! fixed random batch, and forward → loss → backward → optimizer step, built either from this
//! project's pieces (fused ops, in-place optimizers) or from candle's stock ones (the
//! baseline).

use super::spec::{Input, Mode, ModelConfig, OptimizerKind, TrainBenchSpec};
use crate::bert::{Architecture, Bert, BertBatch, BertConfig, EncoderConfig, SequenceClassifier};
use crate::resnet::{Kernels, ResNet, ResNetConfig};
use candle_core::{DType, Device, Tensor, Var};
use candle_nn::Optimizer as _;
use finetune_core::lora::{self, LoraConfig, LoraSettings};
use finetune_core::optim::{AdamW, Sgd};
use finetune_core::{
    Error, FreezeSpec, Grads, GroupBuilder, Optimizer, OptimizerConfig, ParamStore, Result, Rng,
};
use finetune_core::{ParamLayout, TrainModel};
use finetune_distilbert::{DistilBert, DistilBertConfig};
use finetune_kernels::ops::OpSet;
use finetune_kernels::tape::Recording;
use finetune_roberta::{Roberta, RobertaConfig};
use finetune_vit::{ViT, ViTConfig};
use std::time::Instant;

/// Which implementation a step is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// This project: fused ops ([`OpSet::Fused`]) and its in-place optimizers.
    Ours,
    /// Plain candle: stock differentiable ops ([`OpSet::Stock`] for BERT, [`Kernels::Candle`]
    /// for ResNet) and `candle_nn::AdamW` / `candle_nn::SGD`.
    Baseline,
}

/// The BERT-shaped configuration the bench builds for a text `model` (tiny: hidden 32,
/// 2 layers, 4 heads): the model's own for BERT, its widths and depth for the other text
/// families (and so their FLOPs: their heads cost what BERT's pooler and classifier do).
pub fn bert_config(model: ModelConfig, tiny: bool) -> BertConfig {
    let mut c = BertConfig::default(); // bert-base-uncased's shape
    match model {
        ModelConfig::MiniLm => {
            c.hidden_size = 384;
            c.num_hidden_layers = 6;
            c.num_attention_heads = 12;
            c.intermediate_size = 1536;
        }
        ModelConfig::DistilBert => c.num_hidden_layers = 6,
        ModelConfig::RobertaBase => {
            c.vocab_size = 50265;
            c.max_position_embeddings = 514;
            c.type_vocab_size = 1;
            c.pad_token_id = 1;
            c.layer_norm_eps = 1e-5;
        }
        _ => {}
    }
    if tiny {
        c.vocab_size = 100;
        c.hidden_size = 32;
        c.num_hidden_layers = 2;
        c.num_attention_heads = 4;
        c.intermediate_size = 64;
    }
    c.set_labels(&["negative", "positive"]);
    c
}

/// The ResNet configuration of `model` (1000 classes, as timm's ImageNet heads).
pub fn resnet_config(model: ModelConfig) -> Result<ResNetConfig> {
    ResNetConfig::from_name(model.name(), 1000)
}

/// Seconds spent in each phase of one step, and its loss.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepTimes {
    /// The step's loss (a bench whose loss is not finite stops with an error).
    pub loss: f32,
    /// Forward pass and loss.
    pub forward_s: f64,
    /// `loss.backward()`.
    pub backward_s: f64,
    /// Gradient collection and the optimizer update.
    pub optimizer_s: f64,
}

/// One training step, repeatable.
pub trait TrainStep {
    /// Runs forward, loss, backward and the optimizer update.
    fn step(&mut self) -> Result<StepTimes>;
    /// The model's parameters with their trainable mask (for FLOP counting).
    fn store(&self) -> &ParamStore;
}

/// Seeds the weights and the batch of every step.
const SEED: u64 = 0x0062_656e_6368;

/// Builds the step of `spec` for `side`. Both sides start from the same weights and batch.
pub fn build(spec: &TrainBenchSpec, side: Side) -> Result<Box<dyn TrainStep>> {
    spec.validate()?;
    let dev = &spec.device;
    let mut rng = Rng::seed_from_u64(SEED ^ 1);
    match spec.input {
        Input::Tokens { seq } => {
            let c = bert_config(spec.model, spec.tiny);
            match spec.model {
                ModelConfig::DistilBert => text_step::<DistilBert>(distilbert(&c), spec, seq, side),
                ModelConfig::RobertaBase => {
                    let mut c = RobertaConfig(c);
                    c.max_position_embeddings = c.max_position_embeddings.max(seq + 2);
                    text_step::<Roberta>(c, spec, seq, side)
                }
                _ => text_step::<Bert>(c, spec, seq, side),
            }
        }
        Input::Images { size } if spec.model == ModelConfig::VitB16 => vit_step(spec, size, side),
        Input::Images { size } => {
            let config = resnet_config(spec.model)?;
            let classes = config.num_classes;
            let model = ResNet::init(config, DType::F32, dev, SEED)?;
            model.set_kernels(match side {
                Side::Ours => Kernels::Fused,
                Side::Baseline => Kernels::Candle,
            });
            let keep: Vec<String> = match spec.mode {
                Mode::Full => Vec::new(),
                Mode::Last2 => vec!["layer3.*".into(), "layer4.*".into(), "fc.*".into()],
                Mode::Frozen => vec!["fc.*".into()],
                Mode::Lora => Vec::new(),
            };
            freeze(model.store(), &keep)?;
            if spec.mode == Mode::Lora {
                add_lora(model.store(), model.layout(), spec, &mut rng)?;
            }
            image_step(model, spec, size, classes, side, &mut rng)
        }
    }
}

/// The ViT-B/16 configuration at `size`×`size` input (1000 classes, as ImageNet heads; tiny:
/// hidden 32, 2 layers, 4 heads).
pub fn vit_config(size: usize, tiny: bool) -> Result<ViTConfig> {
    let mut c = finetune_vit::timm::config_of("vit_base_patch16_224", 1000)?;
    c.image_size = size;
    if tiny {
        (c.hidden_size, c.num_hidden_layers) = (32, 2);
        (c.num_attention_heads, c.intermediate_size) = (4, 64);
    }
    c.validate()?;
    Ok(c)
}

/// Trains the parameters `mode` says, by the layout's depths (`last2`: the top two layers and
/// everything without a depth: the head, a pooler or final norm).
fn train_by_depth(store: &ParamStore, layout: &ParamLayout, mode: Mode) -> Result<()> {
    let layers = layout.layers(&store.names());
    let lowest = match mode {
        Mode::Full | Mode::Lora => 0,
        Mode::Last2 => layers.saturating_sub(1),
        Mode::Frozen => usize::MAX,
    };
    for name in store.names() {
        let trains = (layout.depth)(&name).is_none_or(|d| d >= lowest);
        store.set_trainable(&name, trains)?;
    }
    Ok(())
}

/// The ViT step: a random ViT-B/16 at `size`, a random batch of images.
fn vit_step(spec: &TrainBenchSpec, size: usize, side: Side) -> Result<Box<dyn TrainStep>> {
    let config = vit_config(size, spec.tiny)?;
    let mut rng = Rng::seed_from_u64(SEED ^ 1);
    let classes = config.classifier.num_labels();
    let mut model = ViT::init(config, DType::F32, &spec.device, SEED)?;
    model.set_op_set(match side {
        Side::Ours => OpSet::Fused,
        Side::Baseline => OpSet::Stock,
    });
    let layout = model.layout();
    train_by_depth(model.store(), &layout, spec.mode)?;
    if spec.mode == Mode::Lora {
        add_lora(model.store(), layout, spec, &mut rng)?;
    }
    image_step(model, spec, size, classes, side, &mut rng)
}

/// Adapters as `spec` says (alpha 2r, dropout 0.1, PEFT's usual), everything else frozen but
/// the head, as a `--lora` run trains.
fn add_lora(
    store: &ParamStore,
    layout: ParamLayout,
    spec: &TrainBenchSpec,
    rng: &mut Rng,
) -> Result<()> {
    let config = LoraConfig {
        r: spec.lora_r,
        alpha: 2.0 * spec.lora_r as f64,
        dropout: 0.1,
        target: spec
            .lora_target
            .clone()
            .unwrap_or(layout.lora_targets.clone()),
        use_rslora: false,
    };
    let modules = lora::select_modules(&config.target, &store.modules(), &layout)?;
    let settings = LoraSettings {
        config,
        modules,
        modules_to_save: layout.head_modules(),
        base_model: "bench".into(),
        revision: None,
        task_type: None,
    };
    lora::add_adapters(store, settings, rng)?;
    if let Some(rules) = lora::train_rules(store)? {
        rules.apply_fresh(store)?;
    }
    Ok(())
}

/// DistilBERT with `c`'s widths and depth.
fn distilbert(c: &BertConfig) -> DistilBertConfig {
    let mut d = DistilBertConfig {
        vocab_size: c.vocab_size,
        dim: c.hidden_size,
        n_layers: c.num_hidden_layers,
        n_heads: c.num_attention_heads,
        hidden_dim: c.intermediate_size,
        ..DistilBertConfig::default()
    };
    d.classifier.set_labels(&c.labels());
    d
}

/// The text step of architecture `A`: a random model of `config`, trainable as `spec.mode`
/// says (`last2`: the top two layers and everything without a depth: head, pooler), a
/// random batch of `seq` tokens.
fn text_step<A: Architecture>(
    config: A::Config,
    spec: &TrainBenchSpec,
    seq: usize,
    side: Side,
) -> Result<Box<dyn TrainStep>> {
    let limit = config.max_length();
    if seq > limit {
        return Err(Error::config(format!(
            "bench train: --seq {seq} exceeds the model's {limit} positions"
        )));
    }
    let mut rng = Rng::seed_from_u64(SEED ^ 1);
    let vocab = config.vocab_size() as u64;
    let dev = &spec.device;
    let mut model = SequenceClassifier::<A>::init(config, DType::F32, dev, SEED)?;
    model.set_op_set(match side {
        Side::Ours => OpSet::Fused,
        Side::Baseline => OpSet::Stock,
    });
    let layout = A::Config::layout();
    train_by_depth(model.store(), &layout, spec.mode)?;
    if spec.mode == Mode::Lora {
        add_lora(model.store(), layout, spec, &mut rng)?;
    }
    let n = spec.batch * seq;
    // Ids past the special tokens (RoBERTa's padding id is 1).
    let ids: Vec<u32> = (0..n).map(|_| 3 + rng.below(vocab - 3) as u32).collect();
    let batch = BertBatch {
        input_ids: Tensor::from_vec(ids, (spec.batch, seq), dev)?,
        token_type_ids: None,
        attention_mask: Some(Tensor::ones((spec.batch, seq), DType::U32, dev)?),
    };
    let targets = random_labels(spec.batch, 2, &mut rng, dev)?;
    let opt = StepOptimizer::new(model.store(), spec.optimizer, side)?;
    Ok(Box::new(TextStep {
        model,
        batch,
        targets,
        opt,
    }))
}

/// Freezes everything but the parameters matching `keep` (nothing when `keep` is empty).
fn freeze(store: &ParamStore, keep: &[String]) -> Result<()> {
    if !keep.is_empty() {
        FreezeSpec::freeze_all_but(keep)?.apply(store)?;
    }
    Ok(())
}

fn random_labels(n: usize, classes: usize, rng: &mut Rng, dev: &Device) -> Result<Tensor> {
    let v: Vec<u32> = (0..n).map(|_| rng.below(classes as u64) as u32).collect();
    Ok(Tensor::from_vec(v, n, dev)?)
}

/// The optimizer of one side: this project's (param groups, in-place update) or candle_nn's
/// over the trainable `Var`s.
enum StepOptimizer {
    Ours(Box<dyn Optimizer>),
    CandleAdamW(candle_nn::AdamW),
    CandleSgd(candle_nn::SGD),
}

const ADAMW_LR: f64 = 1e-5;
const SGD_LR: f64 = 1e-3;
const WEIGHT_DECAY: f64 = 0.01;

impl StepOptimizer {
    fn new(store: &ParamStore, kind: OptimizerKind, side: Side) -> Result<Self> {
        let vars: Vec<Var> = store.trainable_vars().into_iter().map(|(_, v)| v).collect();
        Ok(match (side, kind) {
            (Side::Ours, OptimizerKind::AdamW) => {
                // Decay on every parameter, as candle_nn::AdamW does: the same work.
                let groups = GroupBuilder::new(ADAMW_LR, WEIGHT_DECAY)
                    .no_decay(&[] as &[&str], false)?
                    .build(store)?;
                Self::Ours(OptimizerConfig::AdamW(AdamW::default()).build(groups)?)
            }
            (Side::Ours, OptimizerKind::Sgd) => {
                let groups = GroupBuilder::new(SGD_LR, 0.0).build(store)?;
                let sgd = Sgd {
                    momentum: 0.9,
                    ..Sgd::default()
                };
                Self::Ours(OptimizerConfig::Sgd(sgd).build(groups)?)
            }
            (Side::Baseline, OptimizerKind::AdamW) => {
                let params = candle_nn::ParamsAdamW {
                    lr: ADAMW_LR,
                    weight_decay: WEIGHT_DECAY,
                    ..Default::default()
                };
                Self::CandleAdamW(candle_nn::AdamW::new(vars, params)?)
            }
            (Side::Baseline, OptimizerKind::Sgd) => {
                Self::CandleSgd(candle_nn::SGD::new(vars, SGD_LR)?)
            }
        })
    }

    /// Backward from `loss` (over the tape when the forward was recorded) and the update;
    /// fills the backward and optimizer times (each phase waits for the device to finish).
    fn step(
        &mut self,
        store: &ParamStore,
        loss: &Tensor,
        recording: Option<Recording>,
        t: &mut StepTimes,
    ) -> Result<()> {
        let start = Instant::now();
        let grads = match recording {
            Some(r) => r.backward(loss)?,
            None => loss.backward()?,
        };
        loss.device().synchronize()?;
        t.backward_s = start.elapsed().as_secs_f64();
        let start = Instant::now();
        match self {
            Self::Ours(opt) => opt.step(store, &Grads::from_backward(store, &grads))?,
            Self::CandleAdamW(opt) => opt.step(&grads)?,
            Self::CandleSgd(opt) => opt.step(&grads)?,
        }
        loss.device().synchronize()?;
        t.optimizer_s = start.elapsed().as_secs_f64();
        Ok(())
    }
}

struct TextStep<A: Architecture> {
    model: SequenceClassifier<A>,
    batch: BertBatch,
    targets: Tensor,
    opt: StepOptimizer,
}

impl<A: Architecture> TrainStep for TextStep<A> {
    fn step(&mut self) -> Result<StepTimes> {
        let start = Instant::now();
        let recording = (self.model.op_set() == OpSet::Fused).then(Recording::start);
        let logits = self.model.forward_t(&self.batch, true)?;
        let loss = match self.model.op_set() {
            OpSet::Fused => self.model.loss(&logits, &self.targets, 0.0)?,
            OpSet::Stock => candle_nn::loss::cross_entropy(&logits, &self.targets)?,
        };
        let mut t = StepTimes {
            loss: loss.to_scalar::<f32>()?,
            forward_s: start.elapsed().as_secs_f64(),
            ..StepTimes::default()
        };
        self.opt
            .step(self.model.store(), &loss, recording, &mut t)?;
        Ok(t)
    }

    fn store(&self) -> &ParamStore {
        self.model.store()
    }
}

/// The step of `model` on one random batch of `size`×`size` RGB images and labels of
/// `classes` classes.
fn image_step<M: TrainModel<Inputs = Tensor> + 'static>(
    model: M,
    spec: &TrainBenchSpec,
    size: usize,
    classes: usize,
    side: Side,
    rng: &mut Rng,
) -> Result<Box<dyn TrainStep>> {
    let n = spec.batch * 3 * size * size;
    let pixels: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    let dev = &spec.device;
    let images = Tensor::from_vec(pixels, (spec.batch, 3, size, size), dev)?;
    let targets = random_labels(spec.batch, classes, rng, dev)?;
    let opt = StepOptimizer::new(model.store(), spec.optimizer, side)?;
    Ok(Box::new(ImageStep {
        model,
        images,
        targets,
        opt,
        side,
    }))
}

/// The step of an image model (ResNet, ViT) on a fixed batch.
struct ImageStep<M> {
    model: M,
    images: Tensor,
    targets: Tensor,
    opt: StepOptimizer,
    side: Side,
}

impl<M: TrainModel<Inputs = Tensor>> TrainStep for ImageStep<M> {
    fn step(&mut self) -> Result<StepTimes> {
        let start = Instant::now();
        let recording = (self.side == Side::Ours).then(Recording::start);
        let logits = self.model.forward_t(&self.images, true)?;
        let loss = match self.side {
            Side::Ours => self.model.loss(&logits, &self.targets, 0.0)?,
            Side::Baseline => candle_nn::loss::cross_entropy(&logits, &self.targets)?,
        };
        let mut t = StepTimes {
            loss: loss.to_scalar::<f32>()?,
            forward_s: start.elapsed().as_secs_f64(),
            ..StepTimes::default()
        };
        self.opt
            .step(self.model.store(), &loss, recording, &mut t)?;
        Ok(t)
    }

    fn store(&self) -> &ParamStore {
        self.model.store()
    }
}
