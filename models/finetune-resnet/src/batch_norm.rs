//! `BatchNorm2d` with PyTorch's semantics, trainable.
//!
//! Training mode normalises with the batch statistics over `(N, H, W)` — the biased variance —
//! and updates the running estimates in place: `running = (1 − momentum)·running +
//! momentum·batch`, the variance term unbiased (`·n / (n − 1)`), and `num_batches_tracked`
//! incremented. Those updates are computed from detached tensors, so they never enter the
//! autograd graph. Eval mode normalises with the running statistics.
//!
//! A layer can keep its statistics frozen in training ([`BnMode::Frozen`], what timm's
//! `freeze_bn` and fastai's `train_bn=False` do for frozen layers): it then normalises with
//! the running statistics and updates nothing, while its affine weight and bias still train
//! unless frozen in the store. [`BnMode::FollowWeights`] freezes the statistics exactly while
//! the layer's weight is frozen, so freeze patterns and gradual unfreezing carry over.
//!
//! candle-nn's `BatchNorm` is not used: it keeps its statistics in its own `Var`s rather than
//! in the [`ParamStore`] and is not what export must write.

use crate::kernels::Kernels;
use candle_core::{DType, Tensor};
use finetune_core::nn::{join, param};
use finetune_core::{Error, Param, ParamStore, Result};
use finetune_kernels::ops;
use std::sync::atomic::{AtomicU8, Ordering};

/// What a BatchNorm layer does with its statistics in training mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BnMode {
    /// Batch statistics, running estimates updated (PyTorch's `train()`).
    #[default]
    Train,
    /// Running statistics, nothing updated (PyTorch's `eval()` for this layer).
    Frozen,
    /// `Frozen` while the layer's weight is frozen in the store, `Train` otherwise.
    FollowWeights,
}

impl BnMode {
    fn to_u8(self) -> u8 {
        match self {
            BnMode::Train => 0,
            BnMode::Frozen => 1,
            BnMode::FollowWeights => 2,
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            1 => BnMode::Frozen,
            2 => BnMode::FollowWeights,
            _ => BnMode::Train,
        }
    }
}

/// `torch.nn.BatchNorm2d` over `[N, C, H, W]` inputs, its five tensors held in a
/// [`ParamStore`]: `weight` and `bias` (parameters), `running_mean`, `running_var` and
/// `num_batches_tracked` (buffers, updated in place by training forwards). Its [`BnMode`] can
/// be changed through `&self`, so a shared model can be switched between epochs.
#[derive(Debug)]
pub struct BatchNorm2d {
    prefix: String,
    weight: Param,
    bias: Param,
    running_mean: Param,
    running_var: Param,
    num_batches_tracked: Param,
    eps: f64,
    momentum: f64,
    mode: AtomicU8,
}

/// The BatchNorm whose tensors are `{prefix}.{weight,bias,running_mean,running_var}` `[c]` and
/// `{prefix}.num_batches_tracked` `[]`.
pub fn batch_norm2d(
    store: &ParamStore,
    prefix: &str,
    c: usize,
    eps: f64,
    momentum: f64,
) -> Result<BatchNorm2d> {
    let p = |leaf: &str| param(store, &join(prefix, leaf), &[c]);
    Ok(BatchNorm2d {
        prefix: prefix.to_string(),
        weight: p("weight")?,
        bias: p("bias")?,
        running_mean: p("running_mean")?,
        running_var: p("running_var")?,
        num_batches_tracked: param(store, &join(prefix, "num_batches_tracked"), &[])?,
        eps,
        momentum,
        mode: AtomicU8::new(BnMode::Train.to_u8()),
    })
}

impl BatchNorm2d {
    /// The module path of the layer (`bn1`, `layer1.0.bn2`, `layer2.0.downsample.1`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Names of the layer's five tensors.
    pub fn tensor_names(&self) -> [String; 5] {
        [
            "weight",
            "bias",
            "running_mean",
            "running_var",
            "num_batches_tracked",
        ]
        .map(|l| join(&self.prefix, l))
    }

    /// What the layer does with its statistics in training mode ([`BnMode::Train`] unless
    /// set).
    pub fn mode(&self) -> BnMode {
        BnMode::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// Sets the training-mode statistics behaviour; takes effect at the next forward.
    pub fn set_mode(&self, mode: BnMode) {
        self.mode.store(mode.to_u8(), Ordering::Relaxed)
    }

    /// Whether a forward in mode `train` uses (and updates) batch statistics.
    pub fn uses_batch_stats(&self, train: bool) -> bool {
        train
            && match self.mode() {
                BnMode::Train => true,
                BnMode::Frozen => false,
                BnMode::FollowWeights => self.weight.is_trainable(),
            }
    }

    /// `[N, C, H, W]` → same shape.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_with(x, train, false, Kernels::default())
    }

    /// [`Self::forward_t`], then ReLU when `relu`, with the given kernel family (in training
    /// mode with batch statistics the fused kernel does both in one pass each way).
    pub fn forward_with(
        &self,
        x: &Tensor,
        train: bool,
        relu: bool,
        kernels: Kernels,
    ) -> Result<Tensor> {
        let (n, c, h, w) = x.dims4()?;
        let w_ = self.weight.tensor();
        if w_.dim(0)? != c {
            return Err(Error::config(format!(
                "{}: input has {c} channels, the layer {}",
                self.prefix,
                w_.dim(0)?
            )));
        }
        let b = self.bias.tensor();
        let bshape = (1, c, 1, 1);
        if !self.uses_batch_stats(train) {
            // y = x·s + (b − μ·s), s = w / √(σ² + ε): running statistics, gradient to w and b.
            let scale = (w_ / (self.running_var.tensor() + self.eps)?.sqrt()?)?;
            let shift = (b - (self.running_mean.tensor() * &scale)?)?;
            let y = x
                .broadcast_mul(&scale.reshape(bshape)?)?
                .broadcast_add(&shift.reshape(bshape)?)?;
            return Ok(match (relu, kernels) {
                (false, _) => y,
                (true, Kernels::Fused) => ops::relu(&y)?,
                (true, Kernels::Candle) => y.relu()?,
            });
        }
        let count = n * h * w;
        if count < 2 {
            return Err(Error::config(format!(
                "{}: expected more than 1 value per channel when training, got input {:?}",
                self.prefix,
                x.dims()
            )));
        }
        let out = match kernels {
            Kernels::Fused => ops::batch_norm_train(x, &w_, &b, self.eps, relu)?,
            Kernels::Candle => ops::batch_norm_train_composed(x, &w_, &b, self.eps, relu)?,
        };
        self.update_running(&out.mean, &out.var, count)?;
        Ok(out.y)
    }

    /// The running-statistics update of one training forward, outside the graph.
    fn update_running(&self, mean: &Tensor, biased_var: &Tensor, count: usize) -> Result<()> {
        let m = self.momentum;
        let unbiased = (biased_var * (count as f64 / (count - 1) as f64))?;
        let rm = self.running_mean.tensor();
        let rv = self.running_var.tensor();
        let dtype = rm.dtype();
        let new_mean = ((rm * (1.0 - m))? + (mean.to_dtype(dtype)? * m)?)?;
        let new_var = ((rv * (1.0 - m))? + (unbiased.to_dtype(dtype)? * m)?)?;
        self.running_mean.set(&new_mean)?;
        self.running_var.set(&new_var)?;
        let nbt = self.num_batches_tracked.tensor();
        let steps = nbt.to_dtype(DType::I64)?.to_scalar::<i64>()?;
        self.num_batches_tracked
            .set(&Tensor::new(steps + 1, nbt.device())?.to_dtype(nbt.dtype())?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use finetune_core::TensorKind;

    fn layer(store: &ParamStore) -> Result<BatchNorm2d> {
        let dev = Device::Cpu;
        let f = |v: &[f64]| Tensor::new(v, &dev);
        store.insert("bn.weight", &f(&[1.5, 0.5])?, TensorKind::Parameter)?;
        store.insert("bn.bias", &f(&[0.1, -0.2])?, TensorKind::Parameter)?;
        store.insert("bn.running_mean", &f(&[0.3, -0.1])?, TensorKind::Buffer)?;
        store.insert("bn.running_var", &f(&[2.0, 0.5])?, TensorKind::Buffer)?;
        store.insert(
            "bn.num_batches_tracked",
            &Tensor::new(4i64, &dev)?,
            TensorKind::Buffer,
        )?;
        batch_norm2d(store, "bn", 2, 1e-5, 0.1)
    }

    /// `[2, 2, 1, 3]` input, channel-major values listed by hand.
    fn input() -> Result<Tensor> {
        let v = [1.0, 2.0, 4.0, 0.5, 0.0, -1.0, 3.0, -2.0, 6.0, 1.0, 1.0, 4.0];
        Ok(Tensor::new(&v, &Device::Cpu)?.reshape((2, 2, 1, 3))?)
    }

    #[test]
    fn training_normalises_with_biased_batch_variance_and_updates_stats_unbiased() -> Result<()> {
        let store = ParamStore::new();
        let bn = layer(&store)?;
        let y = bn.forward_t(&input()?, true)?;
        // Channel 0 holds x[0,0] = (1, 2, 4) and x[1,0] = (3, −2, 6).
        let c0 = [1.0, 2.0, 4.0, 3.0, -2.0, 6.0];
        let c1 = [0.5, 0.0, -1.0, 1.0, 1.0, 4.0];
        let stats = |c: &[f64]| {
            let m = c.iter().sum::<f64>() / 6.0;
            let v = c.iter().map(|x| (x - m).powi(2)).sum::<f64>() / 6.0;
            (m, v)
        };
        let (m0, v0) = stats(&c0);
        let (m1, v1) = stats(&c1);
        let y: Vec<f64> = y.flatten_all()?.to_vec1()?;
        let want0 = 1.5 * (c0[4] - m0) / (v0 + 1e-5).sqrt() + 0.1; // y[1, 0, 0, 1]
        let want1 = 0.5 * (c1[0] - m1) / (v1 + 1e-5).sqrt() - 0.2; // y[0, 1, 0, 0]
        assert!((y[7] - want0).abs() < 1e-12 && (y[3] - want1).abs() < 1e-12);
        let rm: Vec<f64> = store.get("bn.running_mean")?.to_vec1()?;
        let rv: Vec<f64> = store.get("bn.running_var")?.to_vec1()?;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
        assert!(close(rm[0], 0.9 * 0.3 + 0.1 * m0) && close(rm[1], 0.9 * -0.1 + 0.1 * m1));
        assert!(close(rv[0], 0.9 * 2.0 + 0.1 * v0 * 6.0 / 5.0));
        assert!(close(rv[1], 0.9 * 0.5 + 0.1 * v1 * 6.0 / 5.0));
        let nbt = store.get("bn.num_batches_tracked")?;
        assert_eq!((nbt.dtype(), nbt.to_scalar::<i64>()?), (DType::I64, 5));
        Ok(())
    }

    #[test]
    fn eval_and_frozen_modes_use_running_stats_and_update_nothing() -> Result<()> {
        let store = ParamStore::new();
        let bn = layer(&store)?;
        let eval = bn.forward_t(&input()?, false)?;
        let y: Vec<f64> = eval.flatten_all()?.to_vec1()?;
        assert!((y[0] - (1.5 * (1.0 - 0.3) / (2.0f64 + 1e-5).sqrt() + 0.1)).abs() < 1e-12);
        bn.set_mode(BnMode::Frozen);
        let frozen = bn.forward_t(&input()?, true)?;
        assert_eq!(frozen.flatten_all()?.to_vec1::<f64>()?, y);
        bn.set_mode(BnMode::FollowWeights);
        store.set_trainable("bn.weight", false)?;
        bn.forward_t(&input()?, true)?;
        assert_eq!(store.get("bn.num_batches_tracked")?.to_scalar::<i64>()?, 4);
        assert_eq!(
            store.get("bn.running_var")?.to_vec1::<f64>()?,
            vec![2.0, 0.5]
        );
        store.set_trainable("bn.weight", true)?;
        bn.forward_t(&input()?, true)?;
        assert_eq!(store.get("bn.num_batches_tracked")?.to_scalar::<i64>()?, 5);
        // One value per channel cannot train, as in PyTorch.
        let one = Tensor::ones((1, 2, 1, 1), DType::F64, &Device::Cpu)?;
        assert!(bn.forward_t(&one, true).is_err());
        assert!(bn.forward_t(&one, false).is_ok());
        Ok(())
    }

    #[test]
    fn running_stat_updates_stay_out_of_the_graph() -> Result<()> {
        let store = ParamStore::new();
        let bn = layer(&store)?;
        let x = candle_core::Var::from_tensor(&input()?)?;
        let loss = bn.forward_t(x.as_tensor(), true)?.sqr()?.sum_all()?;
        let grads = loss.backward()?;
        assert!(grads
            .get(store.var("bn.running_mean")?.as_tensor())
            .is_none());
        assert!(grads.get(store.var("bn.weight")?.as_tensor()).is_some());
        let g = grads.get(x.as_tensor()).expect("input gradient");
        assert!(g
            .flatten_all()?
            .to_vec1::<f64>()?
            .iter()
            .all(|v| v.is_finite()));
        Ok(())
    }
}
