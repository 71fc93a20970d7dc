//! The model card (`README.md`) a training run writes beside its export, as transformers'
//! `Trainer.create_model_card` does: YAML front matter the Hub reads (`library_name`,
//! `base_model`, `tags`, `datasets`, `metrics`, `pipeline_tag`, `license`, `model-index` with
//! the final results), then the training hyperparameters, the results of every evaluation, the
//! frozen patterns and the framework versions. `finetune export` carries the card over.

use crate::families::ModelSource;
use crate::settings::{RunSettings, Task};
use anyhow::Result;
use finetune_hub::Origin;
use serde_json::{json, Value};
use std::path::Path;

/// The card's file name, as the Hub reads it.
pub const CARD: &str = "README.md";

/// What the card says about a run.
pub struct CardFacts<'a> {
    /// The run's settings.
    pub settings: &'a RunSettings,
    /// Its task.
    pub task: Task,
    /// The model it started from.
    pub source: &'a ModelSource,
    /// The final results: the test split's metrics, else the last evaluation's.
    pub results: Option<Value>,
    /// Every record of `metrics.jsonl`.
    pub history: &'a [Value],
}

/// Writes `output/README.md` (atomically), and the adapter's own card (`library_name: peft`)
/// into `output/adapter/` when the run exported one.
pub fn write(output: &Path, facts: &CardFacts<'_>) -> Result<()> {
    let name = output
        .file_name()
        .map_or("model".into(), |n| n.to_string_lossy().into_owned());
    let adapter = output.join(finetune_core::model_io::ADAPTER_DIR);
    let cards = [(output.to_path_buf(), false), (adapter.clone(), true)];
    for (dir, peft) in cards
        .into_iter()
        .filter(|(_, peft)| !peft || adapter.is_dir())
    {
        let text = format!(
            "{}\n{}",
            front_matter(&name, facts, peft),
            body(&name, facts)
        );
        finetune_core::fsutil::write_bytes_atomically(&dir.join(CARD), text.as_bytes())?;
    }
    Ok(())
}

/// Copies the card of the exported model's folder into `to` (an export), when it has one.
pub fn carry_over(source: &ModelSource, to: &Path) -> finetune_core::Result<()> {
    let Some(files) = &source.files else {
        return Ok(());
    };
    let card = files.dir.join(CARD);
    if card.is_file() {
        let bytes = std::fs::read(&card).map_err(|e| finetune_core::Error::io(&card, e))?;
        finetune_core::fsutil::write_bytes_atomically(&to.join(CARD), &bytes)?;
    }
    Ok(())
}

/// The Hub id the run started from; `None` for a local folder or a fresh network.
fn base_model(source: &ModelSource) -> Option<String> {
    match &source.files.as_ref()?.origin {
        Origin::Cache { repo, .. } | Origin::Downloaded { repo, .. } => Some(repo.name.clone()),
        _ => None,
    }
}

/// The base model card's `license:`, when its folder has a card that says it.
fn license(source: &ModelSource) -> Option<String> {
    let text = std::fs::read_to_string(source.files.as_ref()?.dir.join(CARD)).ok()?;
    let front = text.strip_prefix("---")?.split("\n---").next()?;
    front.lines().find_map(|l| {
        let v = l
            .strip_prefix("license:")?
            .trim()
            .trim_matches('"')
            .trim_matches('\'');
        (!v.is_empty()).then(|| v.to_string())
    })
}

/// The numeric metrics of an evaluation record, without the `eval_`/`test_` prefix or the
/// sample count.
fn metrics_of(results: &Value) -> Vec<(String, f64)> {
    let Some(obj) = results.as_object() else {
        return Vec::new();
    };
    obj.iter()
        .filter(|(k, _)| !matches!(k.as_str(), "samples" | "step" | "epoch"))
        .filter_map(|(k, v)| {
            let k = k.strip_prefix("eval_").unwrap_or(k);
            Some((k.to_string(), v.as_f64()?))
        })
        .collect()
}

/// YAML front matter, each value written as JSON (which YAML reads as it is); `peft` for the
/// card of a LoRA adapter folder.
fn front_matter(name: &str, f: &CardFacts<'_>, peft: bool) -> String {
    let pipeline = serde_json::to_value(f.task).unwrap_or(Value::Null);
    let library = if peft {
        "peft"
    } else {
        f.source.family.library
    };
    let mut tags = vec![json!("candle-finetune"), pipeline.clone()];
    if f.settings.lora.lora || f.source.adapter.is_some() {
        tags.push(json!("lora"));
    }
    tags.push(json!("generated_from_trainer"));
    let metrics: Vec<(String, f64)> = f.results.as_ref().map(metrics_of).unwrap_or_default();
    let dataset = f.settings.data.dataset.clone();
    let mut lines = vec![
        format!("library_name: {}", json!(library)),
        format!("tags: {}", json!(tags)),
        format!("pipeline_tag: {pipeline}"),
    ];
    if let Some(b) = base_model(f.source) {
        lines.push(format!("base_model: {}", json!(b)));
    }
    if let Some(l) = license(f.source) {
        lines.push(format!("license: {}", json!(l)));
    }
    if let Some(d) = &dataset {
        lines.push(format!("datasets: {}", json!([d])));
    }
    let names: Vec<&str> = metrics
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| *k != "loss")
        .collect();
    lines.push(format!("metrics: {}", json!(names)));
    let data_name = dataset.clone().unwrap_or_else(|| "custom".into());
    let index = json!([{
        "name": name,
        "results": [{
            "task": {"type": pipeline, "name": f.task.describe()},
            "dataset": {"name": data_name, "type": data_name},
            "metrics": metrics.iter().map(|(k, v)| json!({"type": k, "value": v, "name": k})).collect::<Vec<_>>(),
        }],
    }]);
    lines.push(format!("model-index: {index}"));
    format!("---\n{}\n---\n", lines.join("\n"))
}

/// The card's text: what the model is, its results, how it was trained.
fn body(name: &str, f: &CardFacts<'_>) -> String {
    let t = &f.settings.train;
    let from = match base_model(f.source) {
        Some(b) => format!("a fine-tuned version of [{b}](https://huggingface.co/{b})"),
        None => format!("fine-tuned from `{}`", f.source.name),
    };
    let mut out = format!("\n# {name}\n\nThis model is {from}, trained with candle-finetune.\n");
    if let Some(r) = &f.results {
        out += "It achieves the following results:\n";
        for (k, v) in metrics_of(r) {
            out += &format!("- {k}: {v:.4}\n");
        }
    }
    out += "\n## Training hyperparameters\n\n";
    let mut hp = vec![
        ("learning_rate", json!(t.lr)),
        ("train_batch_size", json!(t.batch_size)),
        ("eval_batch_size", json!(t.eval_batch_size)),
        ("gradient_accumulation_steps", json!(t.grad_accum)),
        ("seed", json!(t.seed)),
        ("optimizer", json!(t.optimizer.as_str())),
        ("weight_decay", json!(t.weight_decay)),
        ("lr_scheduler_type", json!(t.schedule.as_str())),
        ("num_epochs", json!(t.epochs)),
    ];
    if let Some(m) = t.max_steps {
        hp.push(("max_steps", json!(m)));
    }
    if let Some(w) = t.warmup_steps {
        hp.push(("warmup_steps", json!(w)));
    }
    if let Some(w) = t.warmup_ratio {
        hp.push(("warmup_ratio", json!(w)));
    }
    for (k, v) in hp {
        let shown = v.as_str().map_or_else(|| v.to_string(), str::to_string);
        out += &format!("- {k}: {shown}\n");
    }
    if !t.freeze.is_empty() {
        out += &format!("- frozen: `{}`\n", t.freeze.join("`, `"));
    }
    if let Some(teacher) = &t.teacher {
        out += &format!(
            "- distilled from `{teacher}`: alpha {}, temperature {}\n",
            t.distill_alpha, t.distill_temperature
        );
    }
    if f.settings.lora.lora {
        let l = &f.settings.lora;
        let targets = l
            .lora_target
            .as_ref()
            .map_or("the family's default".into(), |t| t.join(", "));
        out += &format!(
            "- LoRA: r {}, alpha {}, dropout {}, targets {targets}{}\n",
            l.lora_r,
            l.lora_alpha,
            l.lora_dropout,
            if l.use_rslora { ", rsLoRA" } else { "" }
        );
    }
    out += &results_table(f.history);
    out += &format!(
        "\n## Framework versions\n\n- candle-finetune {}\n- candle 0.11\n",
        env!("CARGO_PKG_VERSION")
    );
    out
}

/// The evaluations of the run, one row each, with the training loss last logged before it.
fn results_table(history: &[Value]) -> String {
    let evals: Vec<&Value> = history
        .iter()
        .filter(|r| r.get("eval_loss").is_some())
        .collect();
    let Some(first) = evals.first() else {
        return String::new();
    };
    let cols: Vec<String> = metrics_of(first).into_iter().map(|(k, _)| k).collect();
    let mut out = format!(
        "\n## Training results\n\n| Training Loss | Epoch | Step | {} |\n|{}\n",
        cols.join(" | "),
        "---|".repeat(cols.len() + 3)
    );
    let mut train_loss = None;
    let mut evals_iter = evals.iter().peekable();
    for r in history {
        if let Some(l) = r.get("loss").and_then(Value::as_f64) {
            train_loss = Some(l);
        }
        if evals_iter.peek().is_some_and(|e| std::ptr::eq(**e, r)) {
            evals_iter.next();
            let values = metrics_of(r);
            let cells: Vec<String> = cols
                .iter()
                .map(|c| {
                    values
                        .iter()
                        .find(|(k, _)| k == c)
                        .map_or(String::new(), |(_, v)| format!("{v:.4}"))
                })
                .collect();
            out += &format!(
                "| {} | {} | {} | {} |\n",
                train_loss.map_or("No log".into(), |l| format!("{l:.4}")),
                r.get("epoch")
                    .and_then(Value::as_f64)
                    .map_or(String::new(), |e| format!("{e:.2}")),
                r.get("step").and_then(Value::as_u64).unwrap_or(0),
                cells.join(" | ")
            );
        }
    }
    out
}
