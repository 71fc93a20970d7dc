//! `finetune bench ops [--json] [--runs N]`: forward+backward timings of the fused ops against
//! candle's composed formulations. `finetune bench train ...`: the time of a whole training
//! step (the measuring lives in `candle_finetune::bench`).

use anyhow::{Context, Result};
use candle_finetune::bench::{
    run_train_bench, Input, Mode, ModelConfig, OptimizerKind, Side, TrainBenchReport,
    TrainBenchSpec,
};
use finetune_kernels::bench::{bench_ops, rayon_threads, BenchScale, OpTiming};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Time each fused op (forward + backward) next to its composed candle formulation.
    Ops(OpsArgs),
    /// Time a whole training step (forward, loss, backward, optimizer) of a random-init model.
    Train(TrainArgs),
    /// GFLOP/s of candle's f32 matmul at M×K by K×N (default 2048³).
    Gemm(GemmArgs),
    /// Images/s through an image run's training pipeline (decode, augment, collate).
    Data(DataArgs),
}

#[derive(clap::Args)]
pub struct DataArgs {
    /// Images to push through the pipeline.
    #[arg(long, default_value_t = 256)]
    pub images: usize,
    /// Images per batch.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct GemmArgs {
    #[arg(long, default_value_t = 2048)]
    pub m: usize,
    #[arg(long, default_value_t = 2048)]
    pub n: usize,
    #[arg(long, default_value_t = 2048)]
    pub k: usize,
    /// Timed repetitions (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Time the fused linear layer's product in f32 and in bf16 (f32 accumulation) instead,
    /// alternated (CPUs with AMX-BF16 or AVX512-BF16).
    #[arg(long)]
    pub bf16: bool,
}

#[derive(clap::Args)]
pub struct TrainArgs {
    /// minilm, bert-base, distilbert, roberta-base, resnet18, resnet50 or vit-b16.
    #[arg(long)]
    pub model_config: String,
    #[arg(long)]
    pub batch: usize,
    /// Sequence length (BERT).
    #[arg(long, conflicts_with = "image")]
    pub seq: Option<usize>,
    /// Image size N (ResNet, ViT: N×N RGB images).
    #[arg(long)]
    pub image: Option<usize>,
    /// full (all trainable), last2 (last 2 encoder layers / stages + head), frozen (head) or
    /// lora (LoRA adapters + head).
    #[arg(long, default_value = "full")]
    pub mode: String,
    /// Same as `--mode lora`.
    #[arg(long)]
    pub lora: bool,
    /// The adapters' rank (`--mode lora`).
    #[arg(long, default_value_t = 8)]
    pub lora_r: usize,
    /// The adapted layers (`--mode lora`; default: the family's, BERT `query,value`).
    #[arg(long, value_delimiter = ',')]
    pub lora_target: Option<Vec<String>>,
    /// adamw or sgd (momentum 0.9); default adamw for text models and ViT, sgd for ResNet.
    #[arg(long)]
    pub optimizer: Option<String>,
    /// Timed steps (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub steps: usize,
    /// Untimed warm-up steps before them.
    #[arg(long, default_value_t = 1)]
    pub warmup: usize,
    /// Also time the step built from candle's stock ops and optimizer, interleaved.
    #[arg(long)]
    pub baseline: bool,
    /// Run the matrix products in bf16 and time the same step with f32 products beside it,
    /// alternated (CPUs with AMX-BF16 or AVX512-BF16, and GPUs).
    #[arg(long)]
    pub bf16: bool,
    /// Where the step runs: `cpu`, `cuda`, `cuda:N` or `metal` (a build with that feature).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// A tiny BERT (hidden 32, 2 layers): only for the CLI's own tests.
    #[arg(long, hide = true)]
    pub tiny: bool,
    /// Run only this side (ours|baseline) in this process: how the peak memory of each side
    /// is measured in a child process.
    #[arg(long, hide = true)]
    pub side: Option<String>,
}

#[derive(clap::Args)]
pub struct OpsArgs {
    /// Print `[{"op", "shape", "fused_s", "composed_s"}]` as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Timed repetitions per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
    /// Tiny shapes instead of the BERT/ResNet ones: only for the CLI's own tests.
    #[arg(long, hide = true)]
    pub tiny: bool,
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Ops(args) => ops(args),
        BenchCommand::Data(a) => {
            let r = candle_finetune::bench::data::run_data_bench(a.images, a.batch)?;
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "{} images, 500x375 JPEG -> RandomResizedCrop(224) + flip + ToTensor + \
                     Normalize -> [{}, 3, 224, 224]; {} thread(s)",
                    r.images, r.batch, r.threads
                );
                println!("single-threaded loop: {:8.1} images/s", r.loop_images_per_s);
                println!(
                    "  decode alone:       {:8.1} images/s",
                    r.decode_images_per_s
                );
                println!(
                    "training pipeline:    {:8.1} images/s ({:.2}x the loop)",
                    r.pipeline_images_per_s,
                    r.pipeline_images_per_s / r.loop_images_per_s
                );
            }
            Ok(())
        }
        BenchCommand::Train(args) => train(args),
        BenchCommand::Gemm(a) if a.bf16 => {
            let (f32_s, bf16_s) =
                candle_finetune::bench::gemm::linear_f32_bf16(a.m, a.n, a.k, a.runs)?;
            let gf = |s: f64| 2.0 * (a.m * a.n * a.k) as f64 / s / 1e9;
            println!(
                "fused linear {}x{} by ({}x{})^T: f32 {f32_s:.4} s ({:.1} GFLOP/s), bf16 \
                 {bf16_s:.4} s ({:.1} GFLOP/s, {} kernel): bf16 {:.2}x faster ({} threads, load {})",
                a.m,
                a.k,
                a.n,
                a.k,
                gf(f32_s),
                gf(bf16_s),
                finetune_kernels::ops::bf16_kernel()?.name(),
                f32_s / bf16_s,
                candle_core::utils::get_num_threads(),
                load_text(),
            );
            Ok(())
        }
        BenchCommand::Gemm(a) => {
            let (gflops, s) = candle_finetune::bench::gemm::matmul_gflops(a.m, a.n, a.k, a.runs)?;
            let load = load_text();
            println!(
                "f32 matmul {}x{} by {}x{}: {:.4} s, {gflops:.1} GFLOP/s ({} threads, load {load})",
                a.m,
                a.k,
                a.k,
                a.n,
                s,
                candle_core::utils::get_num_threads()
            );
            Ok(())
        }
    }
}

/// The load averages as `1m 5m 15m`, or `n/a`.
fn load_text() -> String {
    candle_finetune::bench::load_avg()
        .map(|l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]))
        .unwrap_or_else(|| "n/a".into())
}

fn train_spec(a: &TrainArgs) -> Result<TrainBenchSpec> {
    let model = ModelConfig::parse(&a.model_config)?;
    let input = match (a.seq, a.image) {
        (Some(seq), None) => Input::Tokens { seq },
        (None, Some(size)) => Input::Images { size },
        _ if model.is_bert() => anyhow::bail!("bench train: {} needs --seq", model.name()),
        _ => anyhow::bail!("bench train: {} needs --image", model.name()),
    };
    let optimizer = match &a.optimizer {
        Some(o) => OptimizerKind::parse(o)?,
        None if model.is_transformer() => OptimizerKind::AdamW,
        None => OptimizerKind::Sgd,
    };
    let spec = TrainBenchSpec {
        model,
        batch: a.batch,
        input,
        mode: match a.lora {
            true => Mode::Lora,
            false => Mode::parse(&a.mode)?,
        },
        optimizer,
        steps: a.steps,
        warmup: a.warmup,
        tiny: a.tiny,
        lora_r: a.lora_r,
        lora_target: a.lora_target.clone(),
        bf16: a.bf16,
        device: finetune_core::device::select_device(&a.device)?,
    };
    spec.validate()?;
    Ok(spec)
}

fn train(args: TrainArgs) -> Result<()> {
    let spec = train_spec(&args)?;
    let side = match args.side.as_deref() {
        None | Some("ours") => Side::Ours,
        Some("baseline") => Side::Baseline,
        Some(other) => anyhow::bail!("bench train: unknown side `{other}`"),
    };
    let mut report = run_train_bench(&spec, side, args.baseline)?;
    if args.baseline {
        // Both models lived in this process: take each side's peak from a run of its own.
        report.peak_rss_mb = child_peak(&args, "ours")?;
        report.baseline_peak_rss_mb = child_peak(&args, "baseline")?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_train(&spec, &report);
    }
    Ok(())
}

/// The peak RSS of `side` run alone (one warm-up and one timed step) in a child process.
fn child_peak(a: &TrainArgs, side: &str) -> Result<Option<f64>> {
    let exe = std::env::current_exe().context("locating the finetune binary")?;
    let mut cmd = std::process::Command::new(exe);
    cmd.args(["bench", "train", "--model-config", &a.model_config])
        .args(["--batch", &a.batch.to_string(), "--mode", &a.mode])
        .args(["--steps", "1", "--warmup", "1", "--json", "--side", side])
        .args(["--lora-r", &a.lora_r.to_string()]);
    if a.lora {
        cmd.arg("--lora");
    }
    if let Some(t) = &a.lora_target {
        cmd.args(["--lora-target", &t.join(",")]);
    }
    if let Some(seq) = a.seq {
        cmd.args(["--seq", &seq.to_string()]);
    }
    if let Some(image) = a.image {
        cmd.args(["--image", &image.to_string()]);
    }
    if let Some(o) = &a.optimizer {
        cmd.args(["--optimizer", o]);
    }
    if a.tiny {
        cmd.arg("--tiny");
    }
    if a.bf16 {
        cmd.arg("--bf16");
    }
    let out = cmd.output().context("running the peak-memory child")?;
    if !out.status.success() {
        anyhow::bail!(
            "bench train: the {side} peak-memory run failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    Ok(v["peak_rss_mb"].as_f64())
}

fn print_train(spec: &TrainBenchSpec, r: &TrainBenchReport) {
    let shape = match spec.input {
        Input::Tokens { seq } => format!("{}x{seq}", spec.batch),
        Input::Images { size } => format!("{}x3x{size}x{size}", spec.batch),
    };
    let load = r
        .load_avg
        .map(|l| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]))
        .unwrap_or_else(|| "n/a".into());
    println!(
        "{} {shape} {} {}: median of {} steps after {} warm-up, {} CPU, {} rayon threads, load {load}",
        r.config,
        r.mode,
        spec.optimizer.name(),
        spec.steps,
        spec.warmup,
        match &r.bf16_kernel {
            Some(k) => format!("bf16 products ({k})"),
            None => "f32".into(),
        },
        rayon_threads()
    );
    println!(
        "analytic {:.1} GFLOP per step (matmul/conv products of forward + backward)\n",
        r.gflop_per_step
    );
    println!(
        "{:<14} {:>11} {:>10} {:>9} {:>15}",
        "", "median (s)", "samples/s", "GFLOP/s", "peak RSS (MiB)"
    );
    let mib = |m: Option<f64>| m.map_or("n/a".to_string(), |m| format!("{m:.0}"));
    println!(
        "{:<14} {:>11.3} {:>10.1} {:>9.1} {:>15}",
        "this project",
        r.median_s,
        r.samples_per_s,
        r.gflop_s,
        mib(r.peak_rss_mb)
    );
    if let Some(b) = r.baseline_median_s {
        println!(
            "{:<14} {:>11.3} {:>10.1} {:>9.1} {:>15}",
            "plain candle",
            b,
            spec.batch as f64 / b,
            r.gflop_per_step / b,
            mib(r.baseline_peak_rss_mb)
        );
        println!("\nspeed-up {:.2}x", b / r.median_s);
    }
    if let Some(f) = r.f32_median_s {
        println!(
            "{:<14} {:>11.3} {:>10.1} {:>9.1}\n\nbf16 products {:.2}x faster than f32 (same \
             model, steps alternated)",
            "f32 products",
            f,
            spec.batch as f64 / f,
            r.gflop_per_step / f,
            f / r.median_s
        );
    }
    let phases = |p: [f64; 3]| {
        format!(
            "forward {:.3} s, backward {:.3} s, optimizer {:.3} s",
            p[0], p[1], p[2]
        )
    };
    println!("\nthis project: {}", phases(r.phases_s));
    if let Some(p) = r.baseline_phases_s {
        println!("plain candle: {}", phases(p));
    }
}

fn ops(args: OpsArgs) -> Result<()> {
    if args.runs == 0 {
        anyhow::bail!("bench ops: --runs must be at least 1");
    }
    let scale = if args.tiny {
        BenchScale::Tiny
    } else {
        BenchScale::Full
    };
    let timings = bench_ops(scale, args.runs)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&timings)?);
    } else {
        print_table(&timings, args.runs);
    }
    Ok(())
}

fn print_table(timings: &[OpTiming], runs: usize) {
    println!(
        "forward+backward, f32, CPU, median of {runs} runs ({} rayon threads)\n",
        rayon_threads()
    );
    println!(
        "{:<22} {:<18} {:>12} {:>14} {:>9}",
        "op", "shape", "fused (ms)", "composed (ms)", "speedup"
    );
    for t in timings {
        let shape = t
            .shape
            .iter()
            .map(|d| d.to_string())
            .collect::<Vec<_>>()
            .join("x");
        println!(
            "{:<22} {:<18} {:>12.2} {:>14.2} {:>8.1}x",
            t.op,
            shape,
            t.fused_s * 1e3,
            t.composed_s * 1e3,
            t.speedup()
        );
    }
    println!("\ncomposed baselines:");
    for t in timings {
        println!("  {:<22} {}", t.op, t.baseline);
    }
}
