//! `finetune meta-train`: the flags of [`MetaSettings`] over an optional `--config` file
//! become one Reptile meta-training run (see [`candle_finetune::tasks::meta`]). Settings that
//! fail their checks are usage errors.

use anyhow::Result;
use candle_finetune::tasks::meta::{self, MetaSettings};
use candle_finetune::usage::usage;
use clap::ArgMatches;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A settings file with the flags' names as keys: TOML, or JSON such as a meta-trained
    /// folder's `meta_config.json`.
    #[arg(long, help_heading = "Run")]
    pub config: Option<PathBuf>,
    /// Print the run report as JSON on stdout.
    #[arg(long, help_heading = "Run")]
    pub json: bool,
    #[command(flatten)]
    pub settings: MetaSettings,
}

pub fn run(args: Args, matches: &ArgMatches) -> Result<()> {
    let settings = MetaSettings::from_matches(matches, args.config.as_deref()).map_err(usage)?;
    settings.check().map_err(usage)?;
    if let Some((rank, size, _)) = candle_finetune::tasks::launch::launched_by_mpi() {
        anyhow::bail!(
            "meta-train does not run distributed: this process is rank {rank} of {size} of an \
             MPI job; start it without mpirun"
        );
    }
    let report = meta::meta_train(&settings, &mut |line| eprintln!("{line}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        eprintln!(
            "meta-trained in {:.0} s: model written to {}",
            report.runtime_s,
            report.output.display()
        );
    }
    Ok(())
}
