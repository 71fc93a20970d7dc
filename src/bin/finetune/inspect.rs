//! `finetune inspect MODEL [--freeze P]... [--unfreeze P]... [--json]`: every tensor of a
//! checkpoint with its shape, dtype, parameter count and whether it would train under the given
//! patterns. MODEL is a local path or a Hub id (resolved through the Hugging Face cache, downloaded
//! when missing). Reads headers only; no tensor data is loaded.
//!
//! Names are the training names (what `--freeze` and exports use) when the checkpoint's family
//! is known, with the file's own name beside them where it differs; a pattern matches a tensor
//! when it matches either name.

use anyhow::Result;
use candle_finetune::families::{self, Family, ModelSource};
use finetune_core::lora::{self, peft};
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
    /// The name in the file.
    name: String,
    /// The name training, `--freeze` and exports use (the file's name when the family is not
    /// known or the model does not use the tensor).
    training_name: String,
    shape: Vec<usize>,
    dtype: String,
    params: usize,
    trainable: bool,
    kind: TensorKind,
    /// For a LoRA adapter's tensor, the base model's tensor it changes (a `lora_A`/`lora_B`
    /// pair adds to a layer's weight; a head tensor replaces the base's).
    #[serde(skip_serializing_if = "Option::is_none")]
    modifies: Option<String>,
}

#[derive(Serialize)]
struct Report {
    tensors: Vec<TensorRow>,
    total_params: usize,
    trainable_params: usize,
}

pub fn run(args: Args) -> Result<()> {
    let spec = FreezeSpec::from_patterns(&args.freeze, &args.unfreeze)?;
    // A model folder or Hub id whose family is known shows training names; a bare file, the
    // file's names.
    // An adapter folder shows the adapter's tensors and what of its base they change.
    let (ckpt, family) = match families::resolve(&args.model, false, None) {
        Ok(ModelSource {
            adapter: Some(dir),
            family,
            ..
        }) => (
            Checkpoint::open(&dir.join(peft::WEIGHTS_FILE))?,
            Some(family),
        ),
        Ok(ModelSource {
            files: Some(files),
            family,
            ..
        }) => (Checkpoint::open_files(&files.weights.files)?, Some(family)),
        _ => (open_checkpoint(&args.model)?, None),
    };
    let report = rows(&ckpt, family, &spec)?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Every tensor of `ckpt` with its names and state under `spec`. A pattern matches a tensor
/// when it matches its training name or that name in the family's other naming — as
/// `train` matches them.
fn rows(ckpt: &Checkpoint, family: Option<&Family>, spec: &FreezeSpec) -> Result<Report> {
    let alias = family.and_then(|f| (f.layout)().alias);
    let names_of = |file_name: &str| {
        let file_name = peft::model_name(file_name);
        let training = family
            .and_then(|f| (f.training_name)(file_name))
            .unwrap_or_else(|| file_name.to_string());
        let other = alias.as_ref().and_then(|a| a(&training));
        (training, other)
    };
    let mut all: Vec<String> = Vec::new();
    for h in ckpt.headers() {
        let (training, other) = names_of(&h.name);
        for n in [Some(training), other].into_iter().flatten() {
            if !all.contains(&n) {
                all.push(n);
            }
        }
    }
    spec.check_patterns_match(&all)?;
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
            let (training_name, other) = names_of(&h.name);
            let names = [Some(&training_name), other.as_ref()];
            let trainable = kind == TensorKind::Parameter
                && trainable_any(spec, &training_name, names.into_iter().flatten());
            if kind == TensorKind::Parameter {
                counts.total += params;
                counts.trainable += if trainable { params } else { 0 };
            }
            TensorRow {
                name: h.name.clone(),
                modifies: (h.name != peft::model_name(&h.name))
                    .then(|| lora::modified_tensor(&training_name)),
                training_name,
                shape: h.shape.clone(),
                dtype: h.dtype.as_str().to_string(),
                params,
                trainable,
                kind,
            }
        })
        .collect();
    Ok(Report {
        tensors,
        total_params: counts.total,
        trainable_params: counts.trainable,
    })
}

/// The table: training names, with the file's name in a last column where it differs.
fn print_table(report: &Report) {
    let tensors = &report.tensors;
    let width = tensors
        .iter()
        .map(|t| t.training_name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let renamed = tensors.iter().any(|t| t.name != t.training_name);
    println!(
        "{:<width$}  {:<18} {:<5} {:>12}  state{}",
        "name",
        "shape",
        "dtype",
        "params",
        if renamed {
            "      name in the file"
        } else {
            ""
        }
    );
    for t in tensors {
        let state = match (t.kind, t.trainable) {
            (TensorKind::Buffer, _) => "buffer",
            (_, true) => "trainable",
            (_, false) => "frozen",
        };
        let state = match (renamed, t.name != t.training_name) {
            (true, true) => format!("{state:<11}{}", t.name),
            _ => state.to_string(),
        };
        let state = match &t.modifies {
            Some(m) => format!("{state}  (modifies {m})"),
            None => state,
        };
        println!(
            "{:<width$}  {:<18} {:<5} {:>12}  {state}",
            t.training_name,
            format!("{:?}", t.shape),
            t.dtype,
            thousands(t.params)
        );
    }
    let counts = ParamCounts {
        trainable: report.trainable_params,
        total: report.total_params,
    };
    println!("{counts}");
}

/// A checkpoint named by a path or a Hub id, read as it is (no family).
fn open_checkpoint(model: &str) -> Result<Checkpoint> {
    Ok(match Spec::parse(model, RepoKind::Model)? {
        Spec::Local(path) => Checkpoint::open(&path)?,
        Spec::Hub(repo) => {
            let files = resolve_hub_model(&repo, &HubConfig::from_env(), &ModelOptions::default())?;
            Checkpoint::open_files(&files.weights.files)?
        }
    })
}

/// Whether a tensor trains under `spec` when a rule applies if it matches any of its names; a
/// negated pattern (`!…`) is matched against the training name only, as `train` does.
fn trainable_any<'a>(
    spec: &FreezeSpec,
    training: &str,
    names: impl Iterator<Item = &'a String> + Clone,
) -> bool {
    spec.trainable_where(true, |p| match p.as_str().starts_with('!') {
        true => p.matches(training),
        false => names.clone().any(|n| p.matches(n)),
    })
}
