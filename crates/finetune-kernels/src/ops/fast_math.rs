//! Branch-free `exp`, `tanh` and `erf` for `f32` that the compiler can vectorise, for the
//! softmax and GELU kernels (libm's are opaque calls per element and dominate those kernels
//! otherwise). The f64 kernels keep libm's: the f64 path is the precise one.
//!
//! `exp`: range reduction `x = n·ln2 + r` with `n = round(x·log2 e)` and `|r| <= ln2/2`
//! (ln2 split in two parts, Cody–Waite, so `r` is exact), then `exp(r) = 1 + r + r²·P(r)` with the degree-5
//! minimax polynomial of Cephes' `expf`, and the result scaled by `2^n` built from its bits.
//! Relative error below 2e-7 (a few ulp) for normal results. Arguments below
//! `ln(f32::MIN_POSITIVE)` (≈ -87.34, results that would be subnormal) give 0, `-inf` gives 0,
//! NaN gives NaN. Only meant for arguments `<= 88` (the softmax kernels pass `x - max <= 0`);
//! larger ones return `exp(88)`.
//!
//! `tanh`: `1 - 2/(exp(2x) + 1)` with |x| clamped at 10 (where tanh rounds to ±1), and its
//! Taylor polynomial for |x| < 1/16 where that form would cancel; absolute error ~1e-7.
//!
//! `erf`: Abramowitz & Stegun 7.1.26, `1 - (a1·t + … + a5·t⁵)·exp(-x²)` with
//! `t = 1/(1 + p·|x|)`, odd-extended (absolute error below 1.5e-7 for the formula, 4e-7
//! with f32 rounding); its Maclaurin series for |x| < 1/2, where that form would cancel.

const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 = LN2_HI + LN2_LO, LN2_HI with few significant bits so `n·LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `1.5·2^23`: adding and subtracting it rounds an f32 of magnitude < 2^22 to an integer.
const ROUND_MAGIC: f32 = 12_582_912.0;
/// Below this the result is subnormal: flushed to 0.
const MIN_ARG: f32 = -87.336_54;
const MAX_ARG: f32 = 88.0;
const P: [f32; 6] = [
    1.987_569_1e-4,
    1.398_199_9e-3,
    8.333_452e-3,
    4.166_579_6e-2,
    1.666_666_5e-1,
    0.5, // Cephes: 5.0000001201e-1, which rounds to 0.5 in f32
];

/// `exp(x)` for `x <= 88` (see the module docs for accuracy and edge cases).
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    let xc = x.clamp(MIN_ARG, MAX_ARG);
    let t = xc * LOG2E + ROUND_MAGIC;
    let n = t - ROUND_MAGIC;
    let r = (xc - n * LN2_HI) - n * LN2_LO;
    let p = ((((P[0] * r + P[1]) * r + P[2]) * r + P[3]) * r + P[4]) * r + P[5];
    let e = p * (r * r) + r + 1.0;
    // n is in [-126, 127]: 2^n is a normal f32 whose biased exponent is n + 127. n sits in
    // the low mantissa bits of t (t = 1.5·2^23 + n), so integer arithmetic on t's bits gives
    // it without a float-to-int conversion (whose saturating form does not vectorise).
    let n_bits = t.to_bits().wrapping_sub(ROUND_MAGIC.to_bits());
    let scale = f32::from_bits(n_bits.wrapping_add(127) << 23);
    if x < MIN_ARG {
        0.0
    } else {
        e * scale
    }
}

/// `tanh(x)`, absolute error ~1e-7; NaN gives NaN.
#[inline(always)]
pub(crate) fn tanh_f32(x: f32) -> f32 {
    let xc = x.clamp(-10.0, 10.0);
    let big = 1.0 - 2.0 / (exp_f32(2.0 * xc) + 1.0);
    let x2 = x * x;
    // x − x³/3 + 2x⁵/15 − 17x⁷/315: keeps relative accuracy near 0.
    let small = x * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 - x2 * (17.0 / 315.0))));
    if x.abs() < 0.0625 {
        small
    } else {
        big
    }
}

const ERF_P: f32 = 0.327_591_1;
const ERF_A: [f32; 5] = [
    0.254_829_6,
    -0.284_496_74,
    1.421_413_7,
    -1.453_152,
    1.061_405_4,
];

/// `erf(x)`, absolute error below 4e-7, relative below 1e-6 for |x| < 1/2; NaN gives NaN.
#[inline(always)]
pub(crate) fn erf_f32(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / (1.0 + ERF_P * a);
    let poly = ((((ERF_A[4] * t + ERF_A[3]) * t + ERF_A[2]) * t + ERF_A[1]) * t + ERF_A[0]) * t;
    let big = (1.0 - poly * exp_f32(-a * a)).copysign(x);
    // Maclaurin series (to x¹¹) near 0, where `1 - poly·exp` would cancel.
    let x2 = x * x;
    let series = x
        * std::f32::consts::FRAC_2_SQRT_PI
        * (1.0
            + x2 * (-1.0 / 3.0
                + x2 * (1.0 / 10.0
                    + x2 * (-1.0 / 42.0 + x2 * (1.0 / 216.0 - x2 * (1.0 / 1320.0))))));
    if a < 0.5 {
        series
    } else {
        big
    }
}

#[cfg(test)]
mod tests {
    use super::{erf_f32, exp_f32, tanh_f32};

    #[test]
    fn matches_f64_exp_to_a_few_ulp_over_the_range() {
        let mut worst = 0f64;
        let mut x = -87.3f64;
        while x <= 88.0 {
            let want = x.exp();
            let got = exp_f32(x as f32) as f64;
            // Compare to the exact exp of the f32 argument.
            let want_at_arg = ((x as f32) as f64).exp();
            let rel = ((got - want_at_arg) / want_at_arg).abs();
            worst = worst.max(rel);
            assert!(want.is_finite());
            x += 0.001_37;
        }
        assert!(worst < 2e-7, "worst relative error {worst:e}");
    }

    #[test]
    fn edge_cases() {
        assert_eq!(exp_f32(0.0), 1.0);
        assert_eq!(exp_f32(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(-87.4), 0.0);
        assert!(exp_f32(-87.3) > 0.0);
        assert!(exp_f32(f32::NAN).is_nan());
        assert!((exp_f32(1.0) - std::f32::consts::E).abs() <= f32::EPSILON * 3.0);
        assert!(exp_f32(88.0).is_finite());
    }

    #[test]
    fn tanh_matches_f64_to_about_1e7_absolute_and_keeps_small_values_relative() {
        let mut x = -12.0f64;
        while x <= 12.0 {
            let xf = x as f32;
            let want = (xf as f64).tanh();
            let got = tanh_f32(xf) as f64;
            assert!(
                (got - want).abs() < 2.5e-7,
                "tanh({xf}) = {got}, want {want}"
            );
            x += 0.000_97;
        }
        for x in [1e-3f32, -2e-5, 0.06, 1e-30] {
            let want = (x as f64).tanh();
            assert!(
                ((tanh_f32(x) as f64 - want) / want).abs() < 3e-7,
                "tanh({x})"
            );
        }
        assert_eq!(tanh_f32(0.0), 0.0);
        assert_eq!(tanh_f32(f32::INFINITY), 1.0);
        assert_eq!(tanh_f32(f32::NEG_INFINITY), -1.0);
        assert!(tanh_f32(f32::NAN).is_nan());
    }

    #[test]
    fn erf_matches_f64_to_4e7_absolute_and_1e6_relative_near_zero() {
        let mut x = -7.0f64;
        while x <= 7.0 {
            let xf = x as f32;
            let want = candle_core::cpu::erf::erf_f64(xf as f64);
            let got = erf_f32(xf) as f64;
            let ok = (got - want).abs() < 4e-7
                && (xf.abs() >= 0.5 || ((got - want) / want).abs() < 1e-6);
            assert!(ok, "erf({xf}) = {got}, want {want}");
            x += 0.000_77;
        }
        assert_eq!(erf_f32(0.0), 0.0);
        assert_eq!(erf_f32(f32::INFINITY), 1.0);
        assert_eq!(erf_f32(f32::NEG_INFINITY), -1.0);
        assert!(erf_f32(f32::NAN).is_nan());
    }
}
