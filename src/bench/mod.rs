//! `finetune bench train`: the wall time of one full training step (forward + loss +
//! backward + optimizer update) of a randomly initialised BERT or ResNet, optionally next to
//! the same step built from candle's stock pieces, measured in the same process with the two
//! sides' steps interleaved so that both see the same machine load.
//!
//! The binary only parses flags and prints; everything measured lives here:
//! [`spec`] (what to run), [`workload`] (the step of either side), [`flops`] (the analytic
//! FLOP count behind GFLOP/s) and [`rss`] (peak resident memory).

pub mod data;
pub mod flops;
pub mod gemm;
pub mod rss;
pub mod spec;
pub mod workload;

pub use spec::{Input, Mode, ModelConfig, OptimizerKind, TrainBenchSpec};
pub use workload::Side;

use finetune_core::{Error, Result};
use finetune_kernels::ops::MatmulPrecision;
use serde::Serialize;
use std::time::Instant;

/// What `finetune bench train --json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct TrainBenchReport {
    /// The model configuration's name (`minilm`, `bert-base`, `resnet18`, `resnet50`).
    pub config: String,
    /// Which parameters trained: `full`, `last2` or `frozen`.
    pub mode: String,
    /// Where the step ran: `cpu`, `cuda:N` or `metal:N`.
    pub device: String,
    /// Samples per step.
    pub batch: usize,
    /// Median seconds per step of the measured side.
    pub median_s: f64,
    /// `batch` over `median_s`.
    pub samples_per_s: f64,
    /// Analytic matrix-product FLOPs per step ([`flops`]) over the median step time.
    pub gflop_s: f64,
    /// Peak resident memory (VmHWM) of the process that ran the measured side alone, MiB.
    pub peak_rss_mb: Option<f64>,
    /// Median seconds per step of the baseline (candle's stock ops and optimizer), timed in
    /// the same run, interleaved step by step with the measured side.
    pub baseline_median_s: Option<f64>,
    /// Peak resident memory of the baseline run alone, when measured.
    pub baseline_peak_rss_mb: Option<f64>,
    /// The 1/5/15-minute load averages when the timing ended (a shared machine's noise).
    pub load_avg: Option<[f64; 3]>,
    /// Median seconds of the measured side's phases: `[forward + loss, backward, optimizer]`.
    pub phases_s: [f64; 3],
    /// The same for the baseline, when it ran.
    pub baseline_phases_s: Option<[f64; 3]>,
    /// Whether the measured side's matrix products ran in bf16 (`--bf16`).
    pub bf16: bool,
    /// With `--bf16`: median seconds per step of the same step with f32 products, alternated
    /// with the bf16 steps on the same model.
    pub f32_median_s: Option<f64>,
    /// With `--bf16` on the CPU: the bf16 kernel (`amx`, `avx512-bf16`).
    pub bf16_kernel: Option<String>,
    /// Analytic GFLOP of one step.
    #[serde(skip)]
    pub gflop_per_step: f64,
    /// Every timed step of the measured side, seconds.
    #[serde(skip)]
    pub step_s: Vec<f64>,
    /// Every timed step of the baseline, seconds.
    #[serde(skip)]
    pub baseline_step_s: Vec<f64>,
}

impl TrainBenchReport {
    /// `baseline_median_s / median_s`, when a baseline ran.
    pub fn speedup(&self) -> Option<f64> {
        self.baseline_median_s.map(|b| b / self.median_s)
    }
}

/// Runs `spec`: the `side` step, and when `baseline` also the baseline step, `spec.warmup`
/// untimed then `spec.steps` timed steps each, alternating. Peak memory is this process's
/// (both sides together when `baseline`; run each side in its own process for separate
/// peaks, as the CLI does).
pub fn run_train_bench(
    spec: &TrainBenchSpec,
    side: Side,
    baseline: bool,
) -> Result<TrainBenchReport> {
    spec.validate()?;
    if !spec.bf16 {
        return measure(spec, side, baseline);
    }
    set_precision(spec, MatmulPrecision::Bf16)?;
    let report = measure(spec, side, baseline);
    set_precision(spec, MatmulPrecision::F32)?;
    report
}

/// The products' precision for `spec`'s device: the CPU's fused kernels
/// ([`finetune_kernels::ops::set_matmul_precision`], its refusal as this crate's error) or,
/// off the CPU, the composed ops' casts.
fn set_precision(spec: &TrainBenchSpec, p: MatmulPrecision) -> Result<()> {
    if !spec.device.is_cpu() {
        finetune_kernels::ops::set_composed_precision(p);
        return Ok(());
    }
    finetune_kernels::ops::set_matmul_precision(p)
        .map_err(|e| Error::config(format!("bench train --bf16: {e}")))
}

/// [`run_train_bench`] at the precision already set.
fn measure(spec: &TrainBenchSpec, side: Side, baseline: bool) -> Result<TrainBenchReport> {
    let mut ours = workload::build(spec, side)?;
    let mut base = if baseline {
        Some(workload::build(spec, Side::Baseline)?)
    } else {
        None
    };
    for _ in 0..spec.warmup {
        checked(ours.as_mut())?;
        if let Some(b) = base.as_mut() {
            checked(b.as_mut())?;
        }
    }
    let (mut t_ours, mut t_base, mut t_f32) = (Vec::new(), Vec::new(), Vec::new());
    let (mut p_ours, mut p_base) = (Vec::new(), Vec::new());
    for _ in 0..spec.steps {
        let (s, p) = timed(ours.as_mut())?;
        t_ours.push(s);
        p_ours.push(p);
        if spec.bf16 {
            set_precision(spec, MatmulPrecision::F32)?;
            let f32_step = timed(ours.as_mut());
            set_precision(spec, MatmulPrecision::Bf16)?;
            t_f32.push(f32_step?.0);
        }
        if let Some(b) = base.as_mut() {
            let (s, p) = timed(b.as_mut())?;
            t_base.push(s);
            p_base.push(p);
        }
    }
    let gflop = match spec.input {
        Input::Tokens { seq } => {
            let c = workload::bert_config(spec.model, spec.tiny);
            flops::bert_step_flops(&c, spec.batch, seq, spec.mode)
        }
        Input::Images { size } if spec.model == ModelConfig::VitB16 => {
            let c = workload::vit_config(size, spec.tiny)?;
            flops::vit_step_flops(&c, spec.batch, spec.mode)
        }
        Input::Images { size } => {
            flops::resnet_step_flops(ours.store(), spec.batch, size, spec.mode)
        }
    } / 1e9;
    let median_s = median(&t_ours);
    Ok(TrainBenchReport {
        config: spec.model.name().to_string(),
        mode: spec.mode.name().to_string(),
        device: finetune_core::device::device_name(&spec.device),
        batch: spec.batch,
        median_s,
        samples_per_s: spec.batch as f64 / median_s,
        gflop_s: gflop / median_s,
        peak_rss_mb: rss::peak_rss_mb(),
        baseline_median_s: base.is_some().then(|| median(&t_base)),
        baseline_peak_rss_mb: None,
        load_avg: load_avg(),
        phases_s: phase_medians(&p_ours),
        baseline_phases_s: base.is_some().then(|| phase_medians(&p_base)),
        bf16: spec.bf16,
        f32_median_s: spec.bf16.then(|| median(&t_f32)),
        bf16_kernel: (spec.bf16 && spec.device.is_cpu())
            .then(|| finetune_kernels::ops::bf16_kernel().ok())
            .flatten()
            .map(|k| k.name().to_string()),
        gflop_per_step: gflop,
        step_s: t_ours,
        baseline_step_s: t_base,
    })
}

fn checked(step: &mut dyn workload::TrainStep) -> Result<workload::StepTimes> {
    let t = step.step()?;
    if !t.loss.is_finite() {
        return Err(Error::config(format!(
            "bench train: the loss became {}",
            t.loss
        )));
    }
    Ok(t)
}

/// The step's wall time and its phases.
fn timed(step: &mut dyn workload::TrainStep) -> Result<(f64, [f64; 3])> {
    let start = Instant::now();
    let t = checked(step)?;
    let wall = start.elapsed().as_secs_f64();
    Ok((wall, [t.forward_s, t.backward_s, t.optimizer_s]))
}

fn phase_medians(p: &[[f64; 3]]) -> [f64; 3] {
    [0, 1, 2].map(|i| median(&p.iter().map(|x| x[i]).collect::<Vec<_>>()))
}

/// Median of a non-empty list (mean of the middle two for an even count).
pub fn median(t: &[f64]) -> f64 {
    let mut t = t.to_vec();
    t.sort_by(f64::total_cmp);
    let m = t.len() / 2;
    match t.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => t[m],
        _ => (t[m - 1] + t[m]) / 2.0,
    }
}

/// The load averages from `/proc/loadavg` (Linux).
pub fn load_avg() -> Option<[f64; 3]> {
    let s = std::fs::read_to_string("/proc/loadavg").ok()?;
    let mut it = s.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some([it.next()??, it.next()??, it.next()??])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn minilm_full_step_flops_match_a_hand_count() {
        // 16 × 128 tokens, hidden 384, intermediate 1536, 6 layers, 12 heads of 32.
        let c = workload::bert_config(ModelConfig::MiniLm, false);
        let n = 2048.0;
        let layer = 2.0 * n * (4.0 * 384.0 * 384.0 + 2.0 * 384.0 * 1536.0)
            + 2.0 * 2.0 * 16.0 * 12.0 * 128.0 * 128.0 * 32.0;
        let head = 2.0 * 16.0 * 384.0 * (384.0 + 2.0);
        // Full mode: backward = twice the forward.
        let want = 3.0 * (6.0 * layer + head);
        let got = flops::bert_step_flops(&c, 16, 128, Mode::Full);
        assert!((got - want).abs() / want < 1e-12, "{got} vs {want}");
        // Frozen: forward everywhere, the head's weight gradients and the classifier's
        // input gradient (into the trainable pooler).
        let frozen = flops::bert_step_flops(&c, 16, 128, Mode::Frozen);
        let want = 6.0 * layer + 2.0 * head + 2.0 * 16.0 * 384.0 * 2.0;
        assert!((frozen - want).abs() / want < 1e-12, "{frozen} vs {want}");
    }

    #[test]
    fn vit_b16_forward_flops_match_the_published_count() {
        // timm lists vit_base_patch16_224 at 17.58 GMACs a 224×224 image (matrix products):
        // frozen mode is the forward plus the head's small gradients.
        let c = workload::vit_config(224, false).unwrap();
        let frozen = flops::vit_step_flops(&c, 1, Mode::Frozen);
        let forward = 2.0 * 17.58e9;
        assert!((frozen - forward).abs() / forward < 0.01, "{frozen}");
        // Full: the backward doubles everything but the patch embedding's input gradient.
        let full = flops::vit_step_flops(&c, 1, Mode::Full);
        assert!((full / frozen - 3.0).abs() < 0.02, "{full} vs {frozen}");
    }
}
