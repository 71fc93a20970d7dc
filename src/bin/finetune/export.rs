//! `finetune export`: a checkpoint (or training output) as a transformers / timm folder.

use anyhow::Result;
use candle_core::DType;
use candle_finetune::tasks;
use clap::ValueEnum;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportDtype {
    F32,
    F16,
    Bf16,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    /// A `checkpoint-STEP` folder or a training output folder.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The folder to write (replaced as a whole once complete).
    #[arg(long)]
    pub output: PathBuf,
    /// Floating-point dtype of the exported tensors.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: ExportDtype,
    /// A model with LoRA adapters: the merged model only (default: merged, plus `adapter/`).
    #[arg(long, conflicts_with = "adapter_only")]
    pub merge: bool,
    /// A model with LoRA adapters: PEFT's adapter folder only.
    #[arg(long)]
    pub adapter_only: bool,
}

pub fn run(a: Args) -> Result<()> {
    let dtype = match a.dtype {
        ExportDtype::F32 => DType::F32,
        ExportDtype::F16 => DType::F16,
        ExportDtype::Bf16 => DType::BF16,
    };
    let mode = match (a.merge, a.adapter_only) {
        (true, _) => tasks::ExportMode::Merged,
        (_, true) => tasks::ExportMode::AdapterOnly,
        _ => tasks::ExportMode::Both,
    };
    tasks::export_with(&a.checkpoint, &a.output, Some(dtype), mode)?;
    eprintln!(
        "exported {} to {}",
        a.checkpoint.display(),
        a.output.display()
    );
    Ok(())
}
