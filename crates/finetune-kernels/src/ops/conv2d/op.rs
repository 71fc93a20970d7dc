//! The custom op that carries each pass of a convolution into candle's autograd: the forward
//! (inputs `x`, `w`), whose backward applies the same op as the input gradient (inputs `w`,
//! `dy`) and the weight gradient (inputs `x`, `dy`), each only where autograd wants it.

use candle_core::{
    backend::BackendStorage, CpuStorage, CustomOp2, Layout, Shape, Tensor, WithDType,
};

use super::im2col::LiveWeights;
use super::{run, Geometry, Pass};
use crate::ops::kernel::{self, with_real};

/// Which pass an op application computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PassKind {
    Forward,
    Input,
    Weight,
}

/// One pass of one convolution. The forward and its input gradient share `cache`.
#[derive(Clone)]
pub(super) struct ConvOp {
    g: Geometry,
    pass: PassKind,
    cache: LiveWeights,
}

impl ConvOp {
    pub(super) fn new(g: Geometry, pass: PassKind) -> Self {
        Self {
            g,
            pass,
            cache: LiveWeights::default(),
        }
    }

    fn gradient(&self, pass: PassKind) -> Self {
        Self {
            pass,
            ..self.clone()
        }
    }
}

impl CustomOp2 for ConvOp {
    fn name(&self) -> &'static str {
        match self.pass {
            PassKind::Forward => "finetune-conv2d",
            PassKind::Input => "finetune-conv2d-bwd-input",
            PassKind::Weight => "finetune-conv2d-bwd-weight",
        }
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let g = &self.g;
        with_real!(s1.dtype(), self.name(), T => {
            let [a, b] = kernel::slices::<T, 2>([(s1, l1), (s2, l2)], self.name())?;
            if self.pass != PassKind::Forward && b.len() != g.n * g.plane_out() {
                candle_core::bail!(
                    "{}: gradient has {} elements, expected {}",
                    self.name(),
                    b.len(),
                    g.n * g.plane_out()
                );
            }
            let (pass, shape) = match self.pass {
                PassKind::Forward => (Pass::Forward { x: a, w: b }, g.out_shape()),
                PassKind::Input => (Pass::Input { w: a, dy: b }, Shape::from((g.n, g.c, g.h, g.w))),
                PassKind::Weight => (Pass::Weight { x: a, dy: b }, Shape::from((g.co, g.c, g.kh, g.kw))),
            };
            Ok((T::to_cpu_storage_owned(run(g, pass, &self.cache)), shape))
        })
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        if self.pass != PassKind::Forward {
            candle_core::bail!("{}: no second derivative", self.name());
        }
        let dy = dy.contiguous()?;
        // Whether autograd wants a gradient for an input: a variable or a tracked op's result.
        let dx = if x.track_op() {
            Some(w.apply_op2_no_bwd(&dy, &self.gradient(PassKind::Input))?)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(x.apply_op2_no_bwd(&dy, &self.gradient(PassKind::Weight))?)
        } else {
            None
        };
        Ok((dx, dw))
    }
}
