//! AdamW, as `torch.optim.AdamW`: decoupled weight decay `θ ← θ(1 − γλ)` before the Adam
//! update, which then sees the raw gradient.

use super::adam::Adam;
use super::driver::{StepHyper, UpdateRule};
use crate::error::Result;
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

/// `torch.optim.AdamW`: [`Adam`]'s hyper-parameters (serialised as Adam's fields) with
/// decoupled weight decay `θ ← θ(1 − γλ)` before an Adam update that sees the raw gradient.
/// PyTorch's constructor defaults λ to 0.01; here λ comes from the param groups.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct AdamW(pub Adam);

impl UpdateRule for AdamW {
    const NAME: &'static str = "adamw";

    fn slot_names(&self) -> Vec<&'static str> {
        self.0.slots()
    }

    fn validate(&self) -> Result<()> {
        self.0.check(Self::NAME)
    }

    #[inline(always)]
    fn update(&self, h: &StepHyper, p: &mut [f32], g: &[f32], slots: &mut [&mut [f32]]) {
        self.0.run(true, h, p, g, slots)
    }

    fn update_tensors(
        &self,
        h: &StepHyper,
        p: &Tensor,
        g: &Tensor,
        slots: &[Tensor],
    ) -> Result<(Tensor, Vec<Tensor>)> {
        self.0.run_tensors(true, h, p, g, slots)
    }
}
