//! What one `finetune bench train` measurement is: the model configuration, the batch, which
//! parameters train, the optimizer, how many steps.

use candle_core::Device;
use finetune_core::{Error, Result};

/// A model configuration the bench can build with random weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelConfig {
    /// all-MiniLM-L6-v2's shape: hidden 384, 6 layers, 12 heads, intermediate 1536.
    MiniLm,
    /// bert-base-uncased's shape: hidden 768, 12 layers, 12 heads, intermediate 3072.
    BertBase,
    /// distilbert-base-uncased's shape: BERT-base's widths, 6 layers.
    DistilBert,
    /// roberta-base's shape: BERT-base's, with a 50265-token vocabulary.
    RobertaBase,
    /// timm's `resnet18`: basic blocks, stages of 2, 2, 2, 2.
    ResNet18,
    /// timm's `resnet50`: bottleneck blocks, stages of 3, 4, 6, 3.
    ResNet50,
    /// `google/vit-base-patch16-224`'s shape: ViT-B/16, hidden 768, 12 layers, 12 heads.
    VitB16,
}

impl ModelConfig {
    /// Reads the name `--model-config` takes (see [`ModelConfig::name`]); any other is an
    /// error listing them.
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "minilm" => Self::MiniLm,
            "bert-base" => Self::BertBase,
            "distilbert" => Self::DistilBert,
            "roberta-base" => Self::RobertaBase,
            "resnet18" => Self::ResNet18,
            "resnet50" => Self::ResNet50,
            "vit-b16" => Self::VitB16,
            other => {
                return Err(Error::config(format!(
                    "unknown model config `{other}`: expected minilm, bert-base, distilbert, \
                 roberta-base, resnet18, resnet50 or vit-b16"
                )))
            }
        })
    }

    /// The name `--model-config` takes and reports print: `minilm`, `bert-base`,
    /// `distilbert`, `roberta-base`, `resnet18`, `resnet50` or `vit-b16`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MiniLm => "minilm",
            Self::BertBase => "bert-base",
            Self::DistilBert => "distilbert",
            Self::RobertaBase => "roberta-base",
            Self::ResNet18 => "resnet18",
            Self::ResNet50 => "resnet50",
            Self::VitB16 => "vit-b16",
        }
    }

    /// Whether the configuration is a text encoder (token inputs) rather than an image model.
    pub fn is_bert(self) -> bool {
        matches!(
            self,
            Self::MiniLm | Self::BertBase | Self::DistilBert | Self::RobertaBase
        )
    }

    /// Whether the configuration is a transformer (text or ViT: AdamW by default) rather
    /// than a ResNet (SGD with momentum).
    pub fn is_transformer(self) -> bool {
        self.is_bert() || self == Self::VitB16
    }
}

/// Which parameters train.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every parameter.
    Full,
    /// The last two encoder layers (BERT) or stages (ResNet: `layer3`, `layer4`) and the head
    /// (BERT: pooler + classifier; ResNet: `fc`).
    Last2,
    /// The head only.
    Frozen,
    /// LoRA adapters (rank [`TrainBenchSpec::lora_r`], alpha 2r, dropout 0.1) on the family's
    /// default targets or [`TrainBenchSpec::lora_target`], plus the head.
    Lora,
}

impl Mode {
    /// Reads the name `--mode` takes (`full`, `last2` or `frozen`).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "full" => Self::Full,
            "last2" => Self::Last2,
            "frozen" => Self::Frozen,
            "lora" => Self::Lora,
            other => {
                return Err(Error::config(format!(
                    "unknown mode `{other}`: expected full, last2, frozen or lora"
                )))
            }
        })
    }

    /// The name `--mode` takes and reports print.
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Last2 => "last2",
            Self::Frozen => "frozen",
            Self::Lora => "lora",
        }
    }
}

/// The optimizer of the timed step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OptimizerKind {
    /// AdamW (betas 0.9/0.999, eps 1e-8, weight decay 0.01 on every parameter).
    AdamW,
    /// SGD with momentum 0.9 (the baseline: `candle_nn::SGD`, which has no momentum).
    Sgd,
}

impl OptimizerKind {
    /// Reads the name `--optimizer` takes (`adamw` or `sgd`).
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "adamw" => Self::AdamW,
            "sgd" => Self::Sgd,
            other => {
                return Err(Error::config(format!(
                    "unknown optimizer `{other}`: expected adamw or sgd"
                )))
            }
        })
    }

    /// The name `--optimizer` takes and reports print.
    pub fn name(self) -> &'static str {
        match self {
            Self::AdamW => "adamw",
            Self::Sgd => "sgd",
        }
    }
}

/// The input of one step: token sequences (text) or square RGB images (ResNet, ViT).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Random token ids `[batch, seq]` with a full attention mask (`--seq`).
    Tokens {
        /// Sequence length, tokens.
        seq: usize,
    },
    /// Random RGB images `[batch, 3, size, size]` (`--image`).
    Images {
        /// Height and width, pixels.
        size: usize,
    },
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct TrainBenchSpec {
    /// The model to build, with random weights.
    pub model: ModelConfig,
    /// Samples per step.
    pub batch: usize,
    /// Tokens for a BERT, images for a ResNet.
    pub input: Input,
    /// Which parameters train.
    pub mode: Mode,
    /// The optimizer of the step.
    pub optimizer: OptimizerKind,
    /// Timed steps (the median is reported).
    pub steps: usize,
    /// Untimed steps before them, per side (allocator and page-fault steady state).
    pub warmup: usize,
    /// A tiny BERT (hidden 32, 2 layers) instead of the named one: for the CLI's own tests.
    pub tiny: bool,
    /// The adapters' rank in [`Mode::Lora`].
    pub lora_r: usize,
    /// The adapted layers in [`Mode::Lora`] (`None`: the family's defaults).
    pub lora_target: Option<Vec<String>>,
    /// Run the measured side's matrix products in bf16 and time the same step in f32 beside it
    /// (alternated, same model).
    pub bf16: bool,
    /// Where the model, the batch and the optimizer state live (`--device`); off the CPU the
    /// fused ops run their candle compositions, as a training run there does.
    pub device: Device,
}

impl TrainBenchSpec {
    /// Checks the combination (tokens for BERT, images for ResNet, non-zero sizes).
    pub fn validate(&self) -> Result<()> {
        if self.batch == 0 || self.steps == 0 {
            return Err(Error::config(
                "bench train: --batch and --steps must be at least 1",
            ));
        }
        match (self.model.is_bert(), self.input) {
            (true, Input::Tokens { seq }) if seq > 0 => Ok(()),
            (false, Input::Images { size }) if size > 0 => Ok(()),
            (true, _) => Err(Error::config(format!(
                "bench train: {} takes --seq (a positive sequence length), not --image",
                self.model.name()
            ))),
            (false, _) => Err(Error::config(format!(
                "bench train: {} takes --image (a positive image size), not --seq",
                self.model.name()
            ))),
        }
    }
}
