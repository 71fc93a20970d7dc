//! `finetune bench ops [--json] [--runs N]`: forward+backward timings of the fused ops against
//! candle's composed formulations. (`bench` takes nested subcommands; more benches will join.)

use anyhow::Result;
use finetune_core::ops::bench::{bench_ops, rayon_threads, BenchScale, OpTiming};

#[derive(clap::Subcommand)]
pub enum BenchCommand {
    /// Time each fused op (forward + backward) next to its composed candle formulation.
    Ops(OpsArgs),
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
