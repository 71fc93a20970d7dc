//! Strided matrix products for the fused kernels, through the `gemm` crate candle itself uses
//! (same version, so one copy of the crate is built).
//!
//! Calling it directly instead of `Tensor::matmul` lets a kernel read and write sub-matrices
//! in place — one attention head's columns of a `[B, T, H]` activation, a transposed weight —
//! without materialising contiguous copies, fold a scale into the product, and accumulate
//! onto a pre-filled destination (the bias of a linear layer).

use gemm::Parallelism;

/// A matrix view: element `(i, j)` lives at `ptr + i·rs + j·cs` (strides in elements).
#[derive(Clone, Copy)]
pub(crate) struct Mat<T> {
    pub ptr: *const T,
    pub rs: isize,
    pub cs: isize,
}

/// A mutable matrix view (same addressing as [`Mat`]).
#[derive(Clone, Copy)]
pub(crate) struct MatMut<T> {
    pub ptr: *mut T,
    pub rs: isize,
    pub cs: isize,
}

impl<T> Mat<T> {
    /// A row-major `[rows, cols]` block whose rows are `ld` elements apart.
    pub fn rows(ptr: *const T, ld: usize) -> Self {
        Self {
            ptr,
            rs: ld as isize,
            cs: 1,
        }
    }

    /// The transpose of [`Mat::rows`]`(ptr, ld)`.
    pub fn rows_t(ptr: *const T, ld: usize) -> Self {
        Self {
            ptr,
            rs: 1,
            cs: ld as isize,
        }
    }
}

impl<T> MatMut<T> {
    /// A row-major `[rows, cols]` block whose rows are `ld` elements apart.
    pub fn rows(ptr: *mut T, ld: usize) -> Self {
        Self {
            ptr,
            rs: ld as isize,
            cs: 1,
        }
    }
}

/// How many threads a product may use.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Threads {
    /// One thread (the caller already runs many products in parallel).
    One,
    /// rayon's global pool.
    Pool,
}

/// `dst ← scale · lhs · rhs` (or `dst + scale · lhs · rhs` when `accumulate`), with `lhs`
/// `[m, k]`, `rhs` `[k, n]`, `dst` `[m, n]`.
///
/// # Safety
/// Every view must address valid, initialised elements of `T` over its full extent
/// (`dst` writable and not overlapping `lhs`/`rhs`), and no other thread may touch `dst`'s
/// elements during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm<T: 'static + Copy + super::kernel::Real>(
    m: usize,
    n: usize,
    k: usize,
    dst: MatMut<T>,
    accumulate: bool,
    lhs: Mat<T>,
    rhs: Mat<T>,
    scale: T,
    threads: Threads,
) {
    if m == 0 || n == 0 {
        return;
    }
    let parallelism = match threads {
        Threads::Pool if rayon::current_num_threads() > 1 => {
            Parallelism::Rayon(rayon::current_num_threads())
        }
        _ => Parallelism::None,
    };
    // gemm computes dst = alpha·dst + beta·lhs·rhs, reading dst only when asked to.
    gemm::gemm(
        m,
        n,
        k,
        dst.ptr,
        dst.cs,
        dst.rs,
        accumulate,
        lhs.ptr,
        lhs.cs,
        lhs.rs,
        rhs.ptr,
        rhs.cs,
        rhs.rs,
        T::ONE,
        scale,
        false,
        false,
        false,
        parallelism,
    )
}

/// A raw pointer that may cross threads: each parallel task of a kernel writes a disjoint
/// block of the buffer it points into (the kernel's own proof obligation).
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);
// SAFETY: only used to hand disjoint regions of one buffer to rayon tasks (see above).
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    /// The pointer (a method, so closures capture the whole `Send` wrapper).
    #[inline(always)]
    pub fn get(self) -> *mut T {
        self.0
    }
}
