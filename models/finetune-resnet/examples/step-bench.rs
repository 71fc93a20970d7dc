//! Whole ResNet training steps (forward + backward + SGD-momentum update, f32, CPU), this
//! project's fused kernels against candle's stock ones, measured in the same process with the
//! two alternating step by step so that both see the same machine load.
//!
//! ```sh
//! cargo run --release -p finetune-resnet --example step-bench -- --model resnet18 --batch 8 --size 224
//! cargo run --release -p finetune-resnet --example step-bench -- --model resnet18 --frozen   # fc only
//! cargo run --release -p finetune-resnet --example step-bench -- --kernels fused   # one side: peak memory
//! ```
//!
//! Prints one line per side: median seconds per step over `--steps` steps (after one warm-up
//! step each), the fused/candle ratio, the 1-minute load average before and after, and the
//! process's peak resident memory (meaningful per side only with `--kernels fused|candle`).

use candle_core::{DType, Device, Tensor};
use finetune_core::optim::OptimizerConfig;
use finetune_core::{FreezeSpec, Grads, GroupBuilder, Rng};
use finetune_kernels::tape::Recording;
use finetune_resnet::{BnMode, Kernels, ResNet, ResNetConfig};
use std::time::Instant;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// The process's peak resident set size (`VmHWM`), in bytes.
fn peak_memory_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    Some(line.split_whitespace().nth(1)?.parse::<u64>().ok()? * 1024)
}

struct Args {
    model: String,
    batch: usize,
    size: usize,
    steps: usize,
    frozen: bool,
    kernels: Vec<Kernels>,
}

fn parse() -> Result<Args> {
    let mut a = Args {
        model: "resnet18".into(),
        batch: 8,
        size: 224,
        steps: 5,
        frozen: false,
        kernels: vec![Kernels::Fused, Kernels::Candle],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut val = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--model" => a.model = val()?,
            "--batch" => a.batch = val()?.parse()?,
            "--size" => a.size = val()?.parse()?,
            "--steps" => a.steps = val()?.parse()?,
            "--frozen" => a.frozen = true,
            "--kernels" => {
                a.kernels = match val()?.as_str() {
                    "both" => vec![Kernels::Fused, Kernels::Candle],
                    "fused" => vec![Kernels::Fused],
                    "candle" => vec![Kernels::Candle],
                    other => return Err(format!("--kernels both|fused|candle, not {other}").into()),
                }
            }
            "--help" | "-h" => {
                println!(
                    "resnet-step-bench [--model resnet18|resnet50] [--batch 8] [--size 224] \
                     [--steps 5] [--frozen] [--kernels both|fused|candle]"
                );
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}").into()),
        }
    }
    Ok(a)
}

fn load_avg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn main() -> Result<()> {
    let a = parse()?;
    let dev = Device::Cpu;
    let labels: Vec<String> = (0..10).map(|i| i.to_string()).collect();
    let mut config = ResNetConfig::from_name(&a.model, labels.len())?;
    config.set_labels(&labels);
    let model = ResNet::init(config, DType::F32, &dev, 0)?;
    let store = model.store();
    if a.frozen {
        FreezeSpec::from_patterns(&["*"], &["fc.*"])?.apply_fresh(store)?;
        for bn in model.batch_norms() {
            bn.set_mode(BnMode::Frozen);
        }
    }
    let groups = GroupBuilder::new(1e-2, 0.0).build(store)?;
    let mut sgd = OptimizerConfig::default_for("sgd")?;
    if let OptimizerConfig::Sgd(s) = &mut sgd {
        s.momentum = 0.9;
    }
    let mut opt = sgd.build(groups)?;
    let mut rng = Rng::seed_from_u64(1);
    let n = a.batch * 3 * a.size * a.size;
    let x: Vec<f32> = (0..n).map(|_| rng.normal() as f32).collect();
    let x = Tensor::from_vec(x, (a.batch, 3, a.size, a.size), &dev)?;
    let y: Vec<u32> = (0..a.batch).map(|i| (i % labels.len()) as u32).collect();
    let y = Tensor::new(y.as_slice(), &dev)?;

    let mut step = |k: Kernels| -> Result<f64> {
        model.set_kernels(k);
        let t = Instant::now();
        let recording = Recording::start();
        let logits = model.forward_t(&x, true)?;
        let loss = model.loss(&logits, &y, 0.0)?;
        let grads = Grads::from_backward(store, &recording.backward(&loss)?);
        opt.step(store, &grads)?;
        Ok(t.elapsed().as_secs_f64())
    };
    let load_before = load_avg();
    for &k in &a.kernels {
        step(k)?;
    }
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); a.kernels.len()];
    for _ in 0..a.steps {
        for (i, &k) in a.kernels.iter().enumerate() {
            times[i].push(step(k)?);
        }
    }
    let load_after = load_avg();
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    let what = format!(
        "{} {}x3x{}x{} {}",
        a.model,
        a.batch,
        a.size,
        a.size,
        if a.frozen { "fc only" } else { "all trainable" }
    );
    for (k, m) in a.kernels.iter().zip(&medians) {
        println!("{what}: {k:?} {m:.3} s/step (median of {})", a.steps);
    }
    if medians.len() == 2 {
        println!(
            "{what}: fused/candle {:.3} (candle {:.2}x slower)",
            medians[0] / medians[1],
            medians[1] / medians[0]
        );
    }
    println!(
        "load average (1 min) before {load_before}, after {load_after}; peak RSS {:.0} MiB",
        peak_memory_bytes().unwrap_or(0) as f64 / 1048576.0,
    );
    Ok(())
}
