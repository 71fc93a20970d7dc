//! `finetune inspect MODEL [--freeze P]... [--unfreeze P]... [--json]`: every tensor of a
//! checkpoint with its shape, dtype, parameter count and whether it would train under the given
//! patterns. MODEL is a local path or a Hub id (resolved through the Hugging Face cache, downloaded
//! when missing). Reads headers only; no tensor data is loaded.

use anyhow::Result;
use finetune_core::params::thousands;
use finetune_core::safetensors_io::Checkpoint;
use finetune_core::{FreezeSpec, ParamCounts, TensorKind};
use finetune_hub::{resolve_hub_model, HubConfig, ModelOptions, RepoKind, Spec};
use serde::Serialize;

#[derive(clap::Args)]
pub struct Args {
    /// A safetensors file, a folder holding model.safetensors or model.safetensors.index.json,
    /// or a Hub id (`org/name`, `org/name@revision`): found in the Hugging Face cache or
    /// downloaded (HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE, HF_ENDPOINT, HF_TOKEN apply).
    #[arg(value_name = "MODEL")]
    pub model: String,
    /// Freeze parameters whose name matches this pattern (repeatable; `*`, `?`, `[0-7]`,
    /// `{0..11}`, `{a,b}`, leading `!` negates).
    #[arg(long, value_name = "PATTERN")]
    pub freeze: Vec<String>,
    /// Unfreeze parameters matching this pattern; applied after every --freeze.
    #[arg(long, value_name = "PATTERN")]
    pub unfreeze: Vec<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct TensorRow {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    params: usize,
    trainable: bool,
    kind: TensorKind,
}

#[derive(Serialize)]
struct Report {
    tensors: Vec<TensorRow>,
    total_params: usize,
    trainable_params: usize,
}

pub fn run(args: Args) -> Result<()> {
    let spec = FreezeSpec::from_patterns(&args.freeze, &args.unfreeze)?;
    let ckpt = match Spec::parse(&args.model, RepoKind::Model)? {
        Spec::Local(path) => Checkpoint::open(&path)?,
        Spec::Hub(repo) => {
            let files = resolve_hub_model(&repo, &HubConfig::from_env(), &ModelOptions::default())?;
            Checkpoint::open_files(&files.weights.files)?
        }
    };
    let names: Vec<String> = ckpt.headers().iter().map(|h| h.name.clone()).collect();
    spec.check_patterns_match(&names)?;
    let mut counts = ParamCounts {
        trainable: 0,
        total: 0,
    };
    let tensors: Vec<TensorRow> = ckpt
        .headers()
        .iter()
        .map(|h| {
            let kind = TensorKind::infer(&h.name, h.dtype);
            let params = h.shape.iter().product::<usize>();
            let trainable = kind == TensorKind::Parameter && spec.trainable(&h.name, true);
            if kind == TensorKind::Parameter {
                counts.total += params;
                counts.trainable += if trainable { params } else { 0 };
            }
            TensorRow {
                name: h.name.clone(),
                shape: h.shape.clone(),
                dtype: h.dtype.as_str().to_string(),
                params,
                trainable,
                kind,
            }
        })
        .collect();
    if args.json {
        let report = Report {
            tensors,
            total_params: counts.total,
            trainable_params: counts.trainable,
        };
        println!("{}", serde_json::to_string(&report)?);
        return Ok(());
    }
    let width = tensors
        .iter()
        .map(|t| t.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    println!(
        "{:<width$}  {:<18} {:<5} {:>12}  state",
        "name", "shape", "dtype", "params"
    );
    for t in &tensors {
        let state = match (t.kind, t.trainable) {
            (TensorKind::Buffer, _) => "buffer",
            (_, true) => "trainable",
            (_, false) => "frozen",
        };
        println!(
            "{:<width$}  {:<18} {:<5} {:>12}  {state}",
            t.name,
            format!("{:?}", t.shape),
            t.dtype,
            thousands(t.params)
        );
    }
    println!("{counts}");
    Ok(())
}
