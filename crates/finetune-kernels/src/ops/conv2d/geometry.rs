//! The shapes of one convolution, checked once, and the sizes every algorithm derives from them.

use candle_core::{Shape, Tensor};

use super::NAME;
use crate::{Error, Result};

/// The shapes of one convolution.
#[derive(Clone, Copy, Debug)]
pub(super) struct Geometry {
    pub(super) n: usize,
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) co: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) stride: usize,
    pub(super) pad: usize,
    pub(super) dil: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
}

impl Geometry {
    pub(super) fn new(
        x: &Tensor,
        w: &Tensor,
        stride: usize,
        pad: usize,
        dil: usize,
    ) -> Result<Self> {
        let bad = |m: String| Err(Error::config(format!("{NAME}: {m}")));
        let Ok((n, c, h, wd)) = x.dims4() else {
            return bad(format!(
                "expected an [N, C, H, W] input, got {:?}",
                x.dims()
            ));
        };
        let Ok((co, ci, kh, kw)) = w.dims4() else {
            return bad(format!(
                "expected [C_out, C_in, kh, kw] weights, got {:?}",
                w.dims()
            ));
        };
        if ci != c {
            return bad(format!(
                "the input has {c} channels, the weights {ci} (groups are not supported)"
            ));
        }
        if x.dtype() != w.dtype() {
            return bad(format!(
                "input {:?} and weights {:?} differ in dtype",
                x.dtype(),
                w.dtype()
            ));
        }
        if h == 0 || wd == 0 || c == 0 {
            return bad(format!(
                "the input {:?} has an empty channel, height or width dimension",
                x.dims()
            ));
        }
        if stride == 0 || dil == 0 || kh == 0 || kw == 0 || co == 0 {
            return bad(format!(
                "stride {stride}, dilation {dil} and kernel {:?} must be positive",
                (co, kh, kw)
            ));
        }
        let (eh, ew) = (dil * (kh - 1) + 1, dil * (kw - 1) + 1);
        if h + 2 * pad < eh || wd + 2 * pad < ew {
            return bad(format!(
                "kernel {:?} (dilated) larger than the padded input {:?}",
                (eh, ew),
                (h + 2 * pad, wd + 2 * pad)
            ));
        }
        Ok(Self {
            n,
            c,
            h,
            w: wd,
            co,
            kh,
            kw,
            stride,
            pad,
            dil,
            oh: (h + 2 * pad - eh) / stride + 1,
            ow: (wd + 2 * pad - ew) / stride + 1,
        })
    }

    /// Rows of `col`: `C·kh·kw`.
    pub(super) fn ck(&self) -> usize {
        self.c * self.kh * self.kw
    }

    /// Output pixels per image: `OH·OW`.
    pub(super) fn p(&self) -> usize {
        self.oh * self.ow
    }

    pub(super) fn plane_in(&self) -> usize {
        self.c * self.h * self.w
    }

    pub(super) fn plane_out(&self) -> usize {
        self.co * self.p()
    }

    /// 1×1, stride 1, no padding: `col` is the image itself.
    pub(super) fn pointwise(&self) -> bool {
        self.kh == 1 && self.kw == 1 && self.stride == 1 && self.pad == 0
    }

    /// Padded input height and width.
    pub(super) fn padded(&self) -> (usize, usize) {
        (self.h + 2 * self.pad, self.w + 2 * self.pad)
    }

    /// The output columns `ox` whose input column `ox·stride + off` lies in `0..len`, as a
    /// range `lo..hi` within `0..out`.
    pub(super) fn valid(off: isize, stride: usize, len: usize, out: usize) -> (usize, usize) {
        let s = stride as isize;
        let lo = if off >= 0 { 0 } else { (-off + s - 1) / s };
        let hi = if len as isize - off <= 0 {
            0
        } else {
            (len as isize - off + s - 1) / s
        };
        let hi = (hi as usize).min(out);
        ((lo as usize).min(hi), hi)
    }

    pub(super) fn out_shape(&self) -> Shape {
        Shape::from((self.n, self.co, self.oh, self.ow))
    }
}
