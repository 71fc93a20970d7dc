//! Run-time choice of the vector instruction set for the fused kernels' loops.
//!
//! The crate is compiled for the target's baseline (SSE2 on x86-64), so a loop vectorises four
//! f32 lanes wide unless it runs inside a function compiled for a wider set. [`wide`] calls its
//! closure from such a function (AVX-512 or AVX2 + FMA, the widest this CPU has, detected
//! once); the closure's loops, inlined there, are compiled at that width. The GEMMs are not
//! concerned: the `gemm` crate picks its micro-kernels at run time itself.
//!
//! Rust never contracts `a·b + c` into a fused multiply-add and never reorders a reduction,
//! so every level computes bit-identical results; only the speed differs.
//!
//! `FINETUNE_SIMD=baseline|avx2|avx512` caps the level (for comparing, or for a CPU that
//! slows down under AVX-512); [`set_simd_level`] does the same from code.

use std::sync::atomic::{AtomicU8, Ordering};

/// The vector instruction sets [`wide`] compiles for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SimdLevel {
    /// The compile target's baseline (SSE2 on x86-64; every level on other architectures).
    Baseline,
    /// AVX2 and FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/BW/DQ/VL on top of AVX2 (x86-64-v4).
    Avx512,
}

impl SimdLevel {
    fn from_u8(v: u8) -> Option<Self> {
        match v {
            0 => Some(Self::Baseline),
            1 => Some(Self::Avx2),
            2 => Some(Self::Avx512),
            _ => None,
        }
    }

    fn to_u8(self) -> u8 {
        self as u8
    }

    /// `baseline`, `avx2` or `avx512`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Baseline => "baseline",
            Self::Avx2 => "avx2",
            Self::Avx512 => "avx512",
        }
    }
}

const UNSET: u8 = u8::MAX;
static LEVEL: AtomicU8 = AtomicU8::new(UNSET);

/// The widest level this CPU runs.
pub fn detected_simd_level() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let avx2 = has!("avx2") && has!("fma");
        let avx512 = has!("avx512f") && has!("avx512bw") && has!("avx512dq") && has!("avx512vl");
        if avx2 && avx512 {
            return SimdLevel::Avx512;
        }
        if avx2 {
            return SimdLevel::Avx2;
        }
    }
    SimdLevel::Baseline
}

/// The level the kernels run at: the detected one, capped by `FINETUNE_SIMD` (read once) or by
/// [`set_simd_level`].
pub fn simd_level() -> SimdLevel {
    if let Some(level) = SimdLevel::from_u8(LEVEL.load(Ordering::Relaxed)) {
        return level;
    }
    let cap = match std::env::var("FINETUNE_SIMD").as_deref() {
        Ok("baseline") => SimdLevel::Baseline,
        Ok("avx2") => SimdLevel::Avx2,
        _ => SimdLevel::Avx512,
    };
    let level = detected_simd_level().min(cap);
    LEVEL.store(level.to_u8(), Ordering::Relaxed);
    level
}

/// Caps the kernels' level at `level` (never above what the CPU runs) for the whole process;
/// returns the level now in effect.
pub fn set_simd_level(level: SimdLevel) -> SimdLevel {
    let level = detected_simd_level().min(level);
    LEVEL.store(level.to_u8(), Ordering::Relaxed);
    level
}

/// `f()`, compiled for [`simd_level`]: `f` should be a closure marked `#[inline(always)]` (or
/// small enough to inline), whose loops then vectorise at that width.
#[inline(always)]
pub fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    match simd_level() {
        // SAFETY: simd_level() never exceeds detected_simd_level(), so the CPU has every
        // feature the callee is compiled for.
        SimdLevel::Avx512 => return unsafe { x86::avx512(f) },
        // SAFETY: as above.
        SimdLevel::Avx2 => return unsafe { x86::avx2(f) },
        SimdLevel::Baseline => {}
    }
    f()
}

/// Defines `fn $name<T: Bound>(args)` as copies of `$body`, one compiled per level, and a
/// dispatcher by [`simd_level`]. Unlike [`wide`], each copy is a function of its own, so its
/// slice arguments keep the no-alias guarantees that references captured by a closure lose, and
/// its loops need no run-time overlap checks. (Loops with strided loads did not vectorise
/// either way in this crate: split such data into contiguous runs first, as max pooling and
/// im2col do.)
macro_rules! multiversion {
    (
        $(#[$m:meta])*
        $vis:vis fn $name:ident<$T:ident: $bound:path>($($arg:ident: $ty:ty),* $(,)?) $body:block
    ) => {
        $(#[$m])*
        $vis fn $name<$T: $bound>($($arg: $ty),*) {
            #[inline(always)]
            fn body<$T: $bound>($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
            fn avx512<$T: $bound>($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2<$T: $bound>($($arg: $ty),*) {
                body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            match $crate::ops::simd::simd_level() {
                // SAFETY: simd_level() never exceeds what the CPU runs.
                $crate::ops::simd::SimdLevel::Avx512 => return unsafe { avx512($($arg),*) },
                // SAFETY: as above.
                $crate::ops::simd::SimdLevel::Avx2 => return unsafe { avx2($($arg),*) },
                $crate::ops::simd::SimdLevel::Baseline => {}
            }
            body($($arg),*)
        }
    };
}
pub(crate) use multiversion;

#[cfg(target_arch = "x86_64")]
mod x86 {
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")]
    pub(super) fn avx512<R>(f: impl FnOnce() -> R) -> R {
        f()
    }

    #[target_feature(enable = "avx2,fma")]
    pub(super) fn avx2<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}
