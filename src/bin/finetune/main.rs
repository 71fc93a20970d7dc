//! The `finetune` command line: parses flags and wires library calls together. No training
//! logic lives here.

use clap::{Parser, Subcommand};

mod bench;
mod inspect;

#[derive(Parser)]
#[command(
    name = "finetune",
    version,
    about = "Fine-tune pretrained Hub models with candle"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List a checkpoint's tensors, and which train under freeze patterns.
    Inspect(inspect::Args),
    /// Micro-benchmarks.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::Bench { command } => bench::run(command),
    };
    if let Err(e) = result {
        // One clear line, never a panic message.
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
