//! Strided matrix products for the fused kernels, through the `gemm` crate candle itself uses
//! (same version, so one copy of the crate is built).
//!
//! Calling it directly instead of `Tensor::matmul` lets a kernel read and write sub-matrices
//! in place — one attention head's columns of a `[B, T, H]` activation, a transposed weight —
//! without materialising contiguous copies, fold a scale into the product, and accumulate
//! onto a pre-filled destination (the bias of a linear layer).
//!
//! With the `avx512` feature (on by default) f32 products pick gemm's micro-kernel here
//! rather than in `gemm::gemm`: AVX-512 where the CPU has it, AVX2/FMA otherwise, and
//! `FINETUNE_GEMM_KERNEL=v3` forces AVX2 so both can be timed with one binary.

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
/// `[m, k]`, `rhs` `[k, n]`, `dst` `[m, n]`; f32 products in bf16 with f32 sums while
/// [`super::gemm_bf16`]'s precision says so (`--bf16`), else [`gemm_full_precision`].
///
/// # Safety
/// As [`gemm_full_precision`].
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
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>() && super::gemm_bf16::active() {
        // SAFETY: T is f32 (checked above), so the views are f32 views; bf16 products are
        // only switched on where the CPU runs them.
        return super::gemm_bf16::gemm(
            m,
            n,
            k,
            MatMut {
                ptr: dst.ptr as *mut f32,
                rs: dst.rs,
                cs: dst.cs,
            },
            accumulate,
            Mat {
                ptr: lhs.ptr as *const f32,
                rs: lhs.rs,
                cs: lhs.cs,
            },
            Mat {
                ptr: rhs.ptr as *const f32,
                rs: rhs.rs,
                cs: rhs.cs,
            },
            *(&scale as *const T as *const f32),
            threads,
        );
    }
    gemm_full_precision(m, n, k, dst, accumulate, lhs, rhs, scale, threads)
}

/// `dst ← scale · lhs · rhs` (or `dst + scale · lhs · rhs` when `accumulate`), with `lhs`
/// `[m, k]`, `rhs` `[k, n]`, `dst` `[m, n]`.
///
/// # Safety
/// Every view must address valid, initialised elements of `T` over its full extent
/// (`dst` writable and not overlapping `lhs`/`rhs`), and no other thread may touch `dst`'s
/// elements during the call.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_full_precision<T: 'static + Copy + super::kernel::Real>(
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
    #[cfg(all(feature = "avx512", target_arch = "x86_64"))]
    if let (true, Some(kernel)) = (
        std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>(),
        f32_kernels::chosen(),
    ) {
        // SAFETY: T is f32 (checked above); the views are the caller's, unchanged.
        return f32_kernels::gemm(
            kernel,
            m,
            n,
            k,
            (dst.ptr as *mut f32, dst.rs, dst.cs),
            accumulate,
            (lhs.ptr as *const f32, lhs.rs, lhs.cs),
            (rhs.ptr as *const f32, rhs.rs, rhs.cs),
            *(&scale as *const T as *const f32),
            parallelism,
        );
    }
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

/// A fresh `len`-element buffer that `write` fills through the pointer it is given, with no
/// zeroing pass first: a product with `accumulate` off writes its whole destination and
/// never reads it, so zeroing a gradient-sized buffer only to overwrite it cost a memory
/// pass (and evicted the operands from the cache) before every such product.
///
/// # Safety
/// `write` must initialise all `len` elements (and write nothing beyond them).
pub(crate) unsafe fn written_by<T: Copy>(len: usize, write: impl FnOnce(*mut T)) -> Vec<T> {
    let mut v = Vec::with_capacity(len);
    write(v.as_mut_ptr());
    // SAFETY: the caller's `write` initialised all `len` elements.
    v.set_len(len);
    v
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

/// gemm's f32 drivers with an explicit micro-kernel. In paired bench runs (README,
/// Performance) the AVX-512 one was faster than the AVX2 one or even with it, the ResNets'
/// small conv products included.
#[cfg(all(feature = "avx512", target_arch = "x86_64"))]
mod f32_kernels {
    use gemm::Parallelism;
    use std::sync::OnceLock;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum Kernel {
        /// AVX2 + FMA, 8 lanes (gemm's `V3`).
        V3,
        /// AVX-512F, 16 lanes (gemm's `V4`).
        V4,
    }

    /// The kernel for this process: the widest the CPU runs, or AVX2 when
    /// `FINETUNE_GEMM_KERNEL=v3` asks for it; `None` on a CPU without AVX2/FMA (the caller
    /// then leaves the choice to `gemm::gemm`, whose scalar path covers it).
    pub fn chosen() -> Option<Kernel> {
        static K: OnceLock<Option<Kernel>> = OnceLock::new();
        *K.get_or_init(|| {
            let v3 = gemm_common::simd::V3::try_new().is_some();
            let v4 = v3 && gemm_common::simd::V4::try_new().is_some();
            let force_v3 = std::env::var("FINETUNE_GEMM_KERNEL").is_ok_and(|v| v == "v3");
            match (v3, v4 && !force_v3) {
                (_, true) => Some(Kernel::V4),
                (true, false) => Some(Kernel::V3),
                (false, false) => None,
            }
        })
    }

    /// `dst = [dst +] beta·lhs·rhs` for `[m, k]·[k, n]`, each view `(ptr, row stride,
    /// column stride)`.
    ///
    /// # Safety
    /// As [`super::gemm`]; the CPU must support `kernel` (as [`chosen`] ensures: the
    /// `unwrap`s below cannot fail then).
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn gemm(
        kernel: Kernel,
        m: usize,
        n: usize,
        k: usize,
        (dst, dst_rs, dst_cs): (*mut f32, isize, isize),
        read_dst: bool,
        (lhs, lhs_rs, lhs_cs): (*const f32, isize, isize),
        (rhs, rhs_rs, rhs_cs): (*const f32, isize, isize),
        beta: f32,
        parallelism: Parallelism,
    ) {
        // The micro-kernels prefer a column-oriented destination: compute the transpose
        // (dstᵀ = rhsᵀ·lhsᵀ) when dst is row-oriented, as gemm::gemm does.
        let (m, n, dst_rs, dst_cs, lhs, lhs_rs, lhs_cs, rhs, rhs_rs, rhs_cs) =
            if dst_cs.abs() < dst_rs.abs() {
                (
                    n, m, dst_cs, dst_rs, rhs, rhs_cs, rhs_rs, lhs, lhs_cs, lhs_rs,
                )
            } else {
                (
                    m, n, dst_rs, dst_cs, lhs, lhs_rs, lhs_cs, rhs, rhs_rs, rhs_cs,
                )
            };
        // Every view of this crate has non-negative strides (gemm::gemm would flip them).
        debug_assert!(dst_rs >= 0 && dst_cs >= 0 && lhs_cs >= 0 && rhs_rs >= 0);
        macro_rules! run {
            ($simd:expr, $lanes:expr, $ukr:path) => {{
                use $ukr as u;
                gemm_common::gemm::gemm_basic_generic::<
                    _,
                    f32,
                    { $lanes },
                    { u::MR_DIV_N * $lanes },
                    { u::NR },
                    { u::MR_DIV_N },
                    { u::H_M },
                    { u::H_N },
                >(
                    $simd,
                    m,
                    n,
                    k,
                    dst,
                    dst_cs,
                    dst_rs,
                    read_dst,
                    lhs,
                    lhs_cs,
                    lhs_rs,
                    rhs,
                    rhs_cs,
                    rhs_rs,
                    1.0,
                    beta,
                    false,
                    false,
                    false,
                    |a, b, c| a * b + c,
                    &u::UKR,
                    &u::H_UKR,
                    false,
                    parallelism,
                )
            }};
        }
        match kernel {
            Kernel::V4 => run!(
                gemm_common::simd::V4::try_new().unwrap(),
                16,
                gemm_f32::microkernel::avx512f::f32
            ),
            Kernel::V3 => run!(
                gemm_common::simd::V3::try_new().unwrap(),
                8,
                gemm_f32::microkernel::fma::f32
            ),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A small deterministic sequence in [-1, 1).
    pub(crate) fn fill(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed;
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// A product under test: `dst (row-major m×n) [+]= scale · op(a) · op(b)` with `a`/`b`
    /// stored row-major or transposed, seeded operands and destination.
    pub(crate) struct Case {
        pub m: usize,
        pub n: usize,
        pub k: usize,
        pub a_t: bool,
        pub b_t: bool,
        pub acc: bool,
        pub scale: f32,
    }

    impl Case {
        /// Runs `product(dst, lhs, rhs)` over the case's views and checks every element
        /// against a triple loop in f64 over the operands as `round` sees them, within `tol`
        /// relative.
        pub(crate) fn check(
            &self,
            tol: f64,
            round: impl Fn(f32) -> f64,
            product: impl FnOnce(MatMut<f32>, Mat<f32>, Mat<f32>),
        ) {
            let Case {
                m,
                n,
                k,
                a_t,
                b_t,
                acc,
                scale,
            } = *self;
            let a = fill(m * k, 1 + m as u64);
            let b = fill(k * n, 2 + n as u64);
            let d0 = fill(m * n, 3 + k as u64);
            // a: m×k, stored as k×m when transposed; b: k×n, stored as n×k when transposed.
            let av = if a_t {
                Mat::rows_t(a.as_ptr(), m)
            } else {
                Mat::rows(a.as_ptr(), k)
            };
            let bv = if b_t {
                Mat::rows_t(b.as_ptr(), k)
            } else {
                Mat::rows(b.as_ptr(), n)
            };
            let mut d = d0.clone();
            product(MatMut::rows(d.as_mut_ptr(), n), av, bv);
            let at = |i: usize, p: usize| round(if a_t { a[p * m + i] } else { a[i * k + p] });
            let bt = |p: usize, j: usize| round(if b_t { b[j * k + p] } else { b[p * n + j] });
            for i in 0..m {
                for j in 0..n {
                    let dot: f64 = (0..k).map(|p| at(i, p) * bt(p, j)).sum();
                    let want = if acc { d0[i * n + j] as f64 } else { 0.0 } + scale as f64 * dot;
                    let got = d[i * n + j] as f64;
                    assert!(
                        (got - want).abs() <= tol * (1.0 + want.abs()),
                        "{m}×{n}×{k} a_t={a_t} b_t={b_t} acc={acc}: ({i},{j}) {got} vs {want}"
                    );
                }
            }
        }
    }

    /// [`gemm`] against the triple loop.
    fn check(m: usize, n: usize, k: usize, a_t: bool, b_t: bool, acc: bool, threads: Threads) {
        let scale = 0.75f32;
        let case = Case {
            m,
            n,
            k,
            a_t,
            b_t,
            acc,
            scale,
        };
        // SAFETY: the views cover exactly the case's buffers; d is distinct from a and b.
        case.check(
            1e-4,
            |x| x as f64,
            |d, a, b| unsafe { gemm(m, n, k, d, acc, a, b, scale, threads) },
        );
    }

    #[test]
    fn products_match_a_triple_loop_for_every_layout() {
        // Odd sizes exercise the micro-kernels' edge tiles; 1 the vector paths.
        for &(m, n, k) in &[
            (1, 1, 1),
            (7, 5, 3),
            (33, 17, 65),
            (64, 96, 40),
            (3, 130, 1),
        ] {
            for a_t in [false, true] {
                for b_t in [false, true] {
                    for acc in [false, true] {
                        check(m, n, k, a_t, b_t, acc, Threads::One);
                    }
                }
            }
        }
        check(150, 70, 90, true, false, true, Threads::Pool);
    }

    #[cfg(all(feature = "avx512", target_arch = "x86_64"))]
    #[test]
    fn both_micro_kernels_agree_with_gemm_crate() {
        use f32_kernels::Kernel;
        let (m, n, k) = (45, 37, 29);
        let a = fill(m * k, 11);
        let b = fill(k * n, 12);
        let mut want = vec![0f32; m * n];
        // SAFETY: row-major views over exactly these buffers.
        unsafe {
            gemm::gemm(
                m,
                n,
                k,
                want.as_mut_ptr(),
                1,
                n as isize,
                false,
                a.as_ptr(),
                1,
                k as isize,
                b.as_ptr(),
                1,
                n as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                Parallelism::None,
            )
        };
        // Each kernel this CPU runs (x86-64 CPUs without AVX2 are left to gemm::gemm).
        let kernels: Vec<Kernel> = [
            (Kernel::V3, gemm_common::simd::V3::try_new().is_some()),
            (Kernel::V4, gemm_common::simd::V4::try_new().is_some()),
        ]
        .into_iter()
        .filter_map(|(k, ok)| ok.then_some(k))
        .collect();
        for kernel in kernels {
            let mut d = vec![0f32; m * n];
            // SAFETY: as above; the kernel is supported by this CPU.
            unsafe {
                f32_kernels::gemm(
                    kernel,
                    m,
                    n,
                    k,
                    (d.as_mut_ptr(), n as isize, 1),
                    false,
                    (a.as_ptr(), k as isize, 1),
                    (b.as_ptr(), n as isize, 1),
                    1.0,
                    Parallelism::None,
                )
            };
            for (x, y) in d.iter().zip(&want) {
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{kernel:?}: {x} vs {y}"
                );
            }
        }
    }
}
