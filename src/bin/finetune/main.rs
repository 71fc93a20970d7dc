//! The `finetune` command line: parses flags and wires library calls together. No training
//! logic lives here. Exit status: 0 on success, 2 for a usage error (clap's, or a
//! [`UsageError`](candle_finetune::usage::UsageError)), 1 for any other error; a closed stdout
//! ends the process by SIGPIPE.

use candle_finetune::usage::is_usage;
use clap::error::ErrorKind;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

mod bench;
mod eval;
mod export;
mod inspect;
mod lr_schedule;
mod meta_train;
mod predict;
mod push;
mod recorded;
mod train;

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
    /// Print the learning rate a schedule gives at each step.
    LrSchedule(Box<lr_schedule::Args>),
    /// Fine-tune a model: checkpoints, logs and the exported model go to --output.
    Train(Box<train::Args>),
    /// Meta-learn a few-shot initialisation with Reptile over N-way K-shot image tasks.
    MetaTrain(Box<meta_train::Args>),
    /// Metrics of a fine-tuned model on labelled data.
    Eval(eval::Args),
    /// Predictions of a fine-tuned model.
    Predict(predict::Args),
    /// Write a checkpoint as a transformers / timm model folder.
    Export(export::Args),
    /// Upload a model folder to a Hub repository in one commit.
    Push(push::Args),
    /// Micro-benchmarks.
    Bench {
        #[command(subcommand)]
        command: bench::BenchCommand,
    },
}

fn main() {
    // Before any thread starts: the allocator keeps freed memory for the next step and
    // candle's idle workers soon leave the cores to rayon's.
    candle_finetune::tasks::launch::share_cores_between_ranks();
    candle_finetune::init();
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        // --help, --version, and the help `finetune` alone prints.
        Err(e)
            if !e.use_stderr()
                || e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            // A usage error: clap's message on one line, exit status 2 (clap's convention).
            eprintln!("{}", one_line(&e.to_string()));
            std::process::exit(2);
        }
    };
    // A training run keeps SIGPIPE ignored: a reader of its log going away (Ctrl-C under
    // `| tee`) must not kill it before its Ctrl-C checkpoint; its writes ignore a closed pipe.
    if !matches!(cli.command, Command::Train(_)) {
        end_quietly_on_a_closed_pipe();
    }
    let result = match cli.command {
        Command::Inspect(a) => inspect::run(a),
        Command::LrSchedule(a) => lr_schedule::run(*a),
        Command::Train(a) => {
            let sub = matches
                .subcommand_matches("train")
                .expect("the train subcommand");
            train::run(*a, sub)
        }
        Command::MetaTrain(a) => {
            let sub = matches
                .subcommand_matches("meta-train")
                .expect("the meta-train subcommand");
            meta_train::run(*a, sub)
        }
        Command::Eval(a) => eval::run(a),
        Command::Predict(a) => predict::run(a),
        Command::Export(a) => export::run(a),
        Command::Push(a) => push::run(a),
        Command::Bench { command } => bench::run(command),
    };
    if let Err(e) = result {
        // One clear line, never a panic message; settings named by their keys in the
        // libraries' messages are named by this command's flags.
        let command = matches
            .subcommand_name()
            .and_then(|n| Cli::command().find_subcommand(n).cloned());
        let msg = format!("{e:#}");
        let msg = match command {
            Some(c) => flags_for_keys(&c, &msg),
            None => msg,
        };
        candle_finetune::tasks::launch::print_error(&msg);
        std::process::exit(if is_usage(&e) { 2 } else { 1 });
    }
}

/// A reader that goes away (`finetune predict … | head`) ends the process as it ends other
/// Unix tools: silently, by SIGPIPE (status 141 in a shell). Rust ignores SIGPIPE, which turns
/// every write to a closed pipe into an error and `println!` into a panic; restoring the
/// default once covers every output at once (reports, predictions, help, progress lines) where
/// checking each write would miss some. Sockets are unaffected: the standard library sends
/// with `MSG_NOSIGNAL`. `train` is the exception (see `main`).
fn end_quietly_on_a_closed_pipe() {
    #[cfg(unix)]
    // SAFETY: called in `main` before any thread exists; `SIG_DFL` is a valid action.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// `msg` with each `` `key` `` that names a setting of `cmd` (its id, or one of its flag's
/// aliases with `_` for `-`) written as that setting's flag (`--key`).
fn flags_for_keys(cmd: &clap::Command, msg: &str) -> String {
    let mut out = msg.to_string();
    for arg in cmd.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        let aliases = arg.get_all_aliases().unwrap_or_default();
        let keys = std::iter::once(arg.get_id().to_string())
            .chain(aliases.into_iter().map(|a| a.replace('-', "_")));
        for key in keys {
            out = out.replace(&format!("`{key}`"), &format!("--{long}"));
        }
    }
    out
}

/// clap's multi-line error (message, tips, usage) as one line: the lines before `Usage:`,
/// trimmed and joined, tips in parentheses.
fn one_line(rendered: &str) -> String {
    let mut parts: Vec<String> = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if line.is_empty() {
            continue;
        }
        parts.push(match line.strip_prefix("tip:") {
            Some(tip) => format!("({})", tip.trim()),
            None => line.to_string(),
        });
    }
    parts.join(" ")
}
