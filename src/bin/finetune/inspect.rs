//! `finetune inspect PATH [--freeze P]... [--unfreeze P]... [--json]`

use anyhow::Result;

#[derive(clap::Args)]
pub struct Args {
    /// A safetensors file, or a folder holding model.safetensors or a sharded index.
    pub path: std::path::PathBuf,
}

pub fn run(_args: Args) -> Result<()> {
    anyhow::bail!("inspect: not wired yet")
}
