//! Fresh tensors, initialised as torchvision's `ResNet.__init__` (and timm's `init_weights`):
//! convolutions kaiming-normal (`fan_out`, ReLU gain), BatchNorm weight 1 and bias 0 (the last
//! BatchNorm of each residual branch 0 with `zero_init_last`), running mean 0 and variance 1,
//! `fc` as `torch.nn.Linear`'s default. Distributions match PyTorch's, not its random streams.

use crate::config::{BlockKind, ResNetConfig};
use crate::naming::Expected;
use candle_core::{DType, Device, Tensor};
use finetune_core::nn::init;
use finetune_core::{Result, Rng};

/// A fresh value for one model tensor.
pub fn init_tensor(
    e: &Expected,
    config: &ResNetConfig,
    rng: &mut Rng,
    dtype: DType,
    dev: &Device,
) -> Result<Tensor> {
    let shape = e.shape.as_slice();
    let leaf = e.name.rsplit('.').next().unwrap_or("");
    let fill = |v: f64| -> Result<Tensor> { Ok(Tensor::ones(shape, dtype, dev)?.affine(v, 0.0)?) };
    if e.name.starts_with("fc.") {
        let bound = 1.0 / (config.num_features() as f64).sqrt();
        return init::uniform(shape, -bound, bound, rng, dtype, dev);
    }
    match leaf {
        "num_batches_tracked" => Ok(Tensor::zeros(shape, DType::I64, dev)?),
        "running_mean" | "bias" => fill(0.0),
        "running_var" => fill(1.0),
        "weight" if shape.len() == 4 => {
            // kaiming_normal_(mode="fan_out", nonlinearity="relu"): std = √2 / √fan_out.
            let fan_out = shape[0] * shape[2] * shape[3];
            init::normal(shape, 0.0, (2.0 / fan_out as f64).sqrt(), rng, dtype, dev)
        }
        _ => {
            let last = match config.block {
                BlockKind::Basic => ".bn2.weight",
                BlockKind::Bottleneck => ".bn3.weight",
            };
            let zero =
                config.zero_init_last && e.name.starts_with("layer") && e.name.ends_with(last);
            fill(if zero { 0.0 } else { 1.0 })
        }
    }
}
