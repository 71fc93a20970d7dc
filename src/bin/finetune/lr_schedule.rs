//! `finetune lr-schedule --schedule NAME --lr LR --steps N [...] [--json]`: the learning rate
//! a schedule gives at each optimizer step `0..N-1`, as one JSON array or a table.
//!
//! Every argument goes into a [`ScheduleConfig`], which validates it (unknown name, missing or
//! out-of-range argument, an argument the schedule does not take); the curve is then streamed,
//! so a long run prints without being held in memory.

use std::io::{self, BufWriter, Write};

use anyhow::{anyhow, bail, Result};
use candle_finetune::usage::usage;
use finetune_core::schedule::{warmup_from_ratio, ScheduleConfig};
use finetune_train::ScheduleArgs;

#[derive(clap::Args)]
pub struct Args {
    /// constant, linear, cosine, cosine-restarts, polynomial, inverse-sqrt, step, multistep,
    /// exponential or one-cycle.
    #[arg(long, value_name = "NAME")]
    pub schedule: String,
    /// Base (peak) learning rate; `max_lr` for one-cycle.
    #[arg(long, allow_negative_numbers = true)]
    pub lr: f64,
    /// Optimizer steps in the run; the lr is printed for steps 0..N-1.
    #[arg(long, value_name = "N", alias = "total-steps")]
    pub steps: u64,
    /// Linear warm-up from 0 over this many steps (not for one-cycle).
    #[arg(long, value_name = "W", conflicts_with = "warmup_ratio")]
    pub warmup_steps: Option<u64>,
    /// Warm-up as a fraction of --steps: ceil(R × N) steps.
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub warmup_ratio: Option<f64>,
    /// The schedule's own arguments.
    #[command(flatten)]
    pub args: ScheduleArgs,
    /// Print one JSON array of numbers instead of a table.
    #[arg(long)]
    pub json: bool,
}

impl Args {
    fn config(&self) -> Result<ScheduleConfig> {
        let mut c = ScheduleConfig::new(self.schedule.clone(), self.steps);
        c.warmup_steps = match (self.warmup_steps, self.warmup_ratio) {
            (Some(w), _) => w,
            (None, Some(r)) => warmup_from_ratio(r, self.steps)?,
            (None, None) => 0,
        };
        self.args.apply(&mut c)?;
        Ok(c)
    }
}

pub fn run(args: Args) -> Result<()> {
    // Every input is a flag: what the schedule refuses is a usage error.
    let config = args.config().map_err(usage)?;
    let schedule = config.build().map_err(usage)?;
    schedule.check_base_lr(args.lr).map_err(usage)?;
    let lrs = || (0..config.total_steps).map(|step| (step, schedule.lr(step, args.lr)));
    // A first pass, so an overflow (`exponential` with gamma > 1) prints nothing but the error.
    if let Some((step, lr)) = lrs().find(|(_, lr)| !lr.is_finite()) {
        return Err(usage(anyhow!(
            "the learning rate at step {step} is {lr} (it overflows): check --gamma and --steps"
        )));
    }
    let out = BufWriter::new(io::stdout().lock());
    match print(out, config.total_steps, lrs(), args.json) {
        Ok(()) => Ok(()),
        // `finetune lr-schedule ... | head`: the reader left, nothing is wrong.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => bail!("cannot write to stdout: {e}"),
    }
}

fn print(
    mut w: impl Write,
    total_steps: u64,
    lrs: impl Iterator<Item = (u64, f64)>,
    json: bool,
) -> io::Result<()> {
    let width = total_steps.saturating_sub(1).to_string().len().max(4);
    if json {
        w.write_all(b"[")?;
    } else {
        writeln!(w, "{:>width$}  lr", "step")?;
    }
    for (step, lr) in lrs {
        if json {
            if step > 0 {
                w.write_all(b",")?;
            }
            // serde_json writes the shortest representation that reads back exactly.
            let number = serde_json::to_string(&lr).map_err(io::Error::other)?;
            w.write_all(number.as_bytes())?;
        } else {
            writeln!(w, "{step:>width$}  {lr:.9e}")?;
        }
    }
    if json {
        w.write_all(b"]\n")?;
    }
    w.flush()
}
