//! Which task a model folder (or Hub id) belongs to, from its `config.json`.

use anyhow::{bail, Context, Result};
use candle_finetune::hub::{resolve_model, HubConfig, ModelOptions};

pub enum ModelKind {
    /// transformers' BERT family (`model_type`).
    Text,
    /// timm (`architecture`) or transformers' ResNet (`model_type: resnet`).
    Image,
}

pub fn detect(model: &str) -> Result<ModelKind> {
    let files = resolve_model(model, &HubConfig::from_env(), &ModelOptions::default())?;
    let path = files.dir.join("config.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let config: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let model_type = config.get("model_type").and_then(|v| v.as_str());
    Ok(match model_type {
        Some("bert" | "roberta" | "distilbert" | "xlm-roberta" | "electra") => ModelKind::Text,
        Some("resnet") => ModelKind::Image,
        None if config.get("architecture").is_some() => ModelKind::Image,
        other => bail!(
            "{}: model_type {other:?} is not a supported model (BERT-family text models or ResNets)",
            path.display()
        ),
    })
}
