//! `finetune train`: the flags of [`RunSettings`] over an optional `--config` file (TOML, or a
//! run's `run_config.json`) become one run; the library runs it. A flag given on the command line
//! overrides the file; a flag's default does not. Settings that fail their checks (a settings
//! file that does not read, a missing or conflicting flag, `--push-to-hub` without a valid
//! repository id or a token) are usage errors. With `--push-to-hub` the output is pushed after
//! a run that was not interrupted.

use anyhow::Result;
use candle_finetune::settings::{RunSettings, HUB_HEADING};
use candle_finetune::tasks::push::{HubPush, END_OF_TRAINING};
use candle_finetune::tasks::{self, RunReport};
use candle_finetune::usage::usage;
use clap::ArgMatches;
use std::io::Write;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A settings file with the flags' names as keys (`learning_rate`-style aliases accepted):
    /// TOML, or JSON such as a run's `run_config.json`.
    #[arg(long, help_heading = "Run")]
    pub config: Option<PathBuf>,
    /// Print the run report as JSON on stdout.
    #[arg(long, help_heading = "Run")]
    pub json: bool,
    /// Check the settings and print them resolved (as `run_config.json` would hold them),
    /// without reading data, loading the model or writing anything.
    #[arg(long, help_heading = "Run")]
    pub dry_run: bool,
    #[command(flatten)]
    pub settings: RunSettings,
    /// The token for --push-to-hub (default: HF_TOKEN, else the token file of `huggingface-cli
    /// login`); never printed, never recorded in run_config.json.
    #[arg(long, help_heading = HUB_HEADING)]
    pub hub_token: Option<String>,
}

pub fn run(args: Args, matches: &ArgMatches) -> Result<()> {
    let (settings, given) =
        RunSettings::from_matches(matches, args.config.as_deref()).map_err(usage)?;
    let task = settings.check(&given).map_err(usage)?;
    let hub = HubPush::from_settings(&settings, args.hub_token.as_deref()).map_err(usage)?;
    if args.dry_run {
        let json = serde_json::to_string_pretty(&settings.resolved_json(task)?)?;
        return say(&mut std::io::stdout(), &json);
    }
    if let Some(hub) = &hub {
        hub.check_online()?;
    }
    let mut report = tasks::train(&settings)?;
    if report.rank != 0 {
        // A distributed run's other ranks: rank 0 reports (and pushes).
        return Ok(());
    }
    if let Some(hub) = hub.filter(|_| report.outcome != "interrupted") {
        report.hub = Some(push_output(&hub, &report)?);
    }
    print_report(&report, args.json)
}

/// Pushes the run's output; a failure says the model is safe and how to push it again.
fn push_output(
    hub: &HubPush,
    report: &RunReport,
) -> Result<candle_finetune::hub::upload::PushReport> {
    let out = &report.output;
    let mut tell = |line: &str| {
        let _ = say(&mut std::io::stderr(), line);
    };
    hub.push(out, END_OF_TRAINING, &mut tell).map_err(|e| {
        anyhow::anyhow!(
            "{e:#} (training {}: the model is in {}; push it with `finetune push --model {} \
             --repo {}`)",
            report.outcome,
            out.display(),
            out.display(),
            hub.repo
        )
    })
}

fn print_report(report: &RunReport, json: bool) -> Result<()> {
    let out = report.output.display();
    if json {
        say(
            &mut std::io::stdout(),
            &serde_json::to_string_pretty(report)?,
        )
    } else if report.outcome == "interrupted" {
        say(
            &mut std::io::stderr(),
            &format!(
                "interrupted: a checkpoint is saved in {out} (no export, no test); continue \
                 with `finetune train --output {out} --resume`"
            ),
        )
    } else {
        let pushed = match &report.hub {
            Some(h) => format!(" and pushed to {}", h.url),
            None => String::new(),
        };
        say(
            &mut std::io::stderr(),
            &format!("{}: model exported to {out}{pushed}", report.outcome),
        )
    }
}

/// A line on `to`; a reader that went away is no error (training keeps SIGPIPE ignored).
fn say(to: &mut dyn Write, line: &str) -> Result<()> {
    match writeln!(to, "{line}") {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
