//! How a convolution's images are spread over threads and GEMMs, the one GEMM call every
//! algorithm makes, and the sum of per-thread weight-gradient partials.

use super::Geometry;
use crate::ops::gemm::{self, Mat, MatMut, Threads};
use crate::ops::kernel::Real;

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`, every matrix given by its pointer and
/// (row stride, column stride) in elements. Always in full precision: with `--bf16` the
/// convolutions' products stay f32 (their many per-tap and per-image products made the bf16
/// path slower than f32 on ResNet-50, the packing outweighing the faster multiply).
///
/// # Safety
/// Each pointer must address a buffer holding every element its strides reach for these
/// sizes; `dst` must not overlap `lhs` or `rhs`.
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn matmul<T: Real>(
    (m, n, k): (usize, usize, usize),
    dst: (*mut T, isize, isize),
    accumulate: bool,
    lhs: (*const T, isize, isize),
    rhs: (*const T, isize, isize),
    threads: usize,
) {
    let threads = if threads > 1 {
        Threads::Pool
    } else {
        Threads::One
    };
    gemm::gemm_full_precision(
        m,
        n,
        k,
        MatMut {
            ptr: dst.0,
            rs: dst.1,
            cs: dst.2,
        },
        accumulate,
        Mat {
            ptr: lhs.0,
            rs: lhs.1,
            cs: lhs.2,
        },
        Mat {
            ptr: rhs.0,
            rs: rhs.1,
            cs: rhs.2,
        },
        T::ONE,
        threads,
    )
}

/// How images are spread over threads: contiguous ranges of `per` images, each run by one
/// rayon task with `gemm_threads` threads in its GEMMs, in groups of `group` images whose
/// columns sit side by side in one GEMM (small feature maps make thin GEMMs otherwise).
pub(super) struct Plan {
    pub(super) per: usize,
    pub(super) group: usize,
    pub(super) gemm_threads: usize,
}

/// Columns one GEMM should have at least, when images can be grouped to reach it.
const MIN_GEMM_COLUMNS: usize = 1024;

impl Plan {
    pub(super) fn new(g: &Geometry) -> Self {
        Self::new_for_columns(g, g.p())
    }

    /// The plan for GEMMs of `cols` columns per image.
    pub(super) fn new_for_columns(g: &Geometry, cols: usize) -> Self {
        let n = g.n.max(1);
        let threads = rayon::current_num_threads().max(1);
        let (per, gemm_threads) = if n >= threads {
            (n.div_ceil(threads), 1)
        } else {
            (n, threads)
        };
        let group = MIN_GEMM_COLUMNS.div_ceil(cols.max(1)).clamp(1, per);
        Plan {
            per,
            group,
            gemm_threads,
        }
    }

    /// Whether `col` is the image itself (a pointwise conv, one image per GEMM).
    pub(super) fn direct(&self, g: &Geometry) -> bool {
        g.pointwise() && self.group == 1
    }
}

/// The element-wise sum of per-range weight gradients of `len` elements.
pub(super) fn sum_partials<T: Real>(partials: Vec<Vec<T>>, len: usize) -> Vec<T> {
    let mut parts = partials.into_iter();
    let mut dw = parts.next().unwrap_or_else(|| vec![T::ZERO; len]);
    for part in parts {
        for (a, b) in dw.iter_mut().zip(part) {
            *a += b;
        }
    }
    dw
}
