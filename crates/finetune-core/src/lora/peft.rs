//! PEFT's adapter folder: `adapter_config.json` (a `LoraConfig`) and
//! `adapter_model.safetensors`, tensors named `base_model.model.{module}.lora_A.weight` /
//! `.lora_B.weight` and, for the head PEFT trains whole (`modules_to_save`),
//! `base_model.model.{tensor}`. `PeftModel.from_pretrained(base, dir)` loads what [`save`]
//! writes; [`load`] reads what PEFT's `save_pretrained` writes.

use super::{a_name, b_name, Adapter, LoraConfig, LoraSettings, ModuleKind};
use crate::error::{Error, Result};
use crate::fsutil::write_bytes_atomically;
use crate::params::{ParamStore, TensorKind};
use crate::safetensors_io::{save_tensors, Checkpoint};
use candle_core::{DType, Tensor};
use serde_json::{json, Value};
use std::path::Path;

/// The adapter's configuration file.
pub const CONFIG_FILE: &str = "adapter_config.json";
/// The adapter's tensors.
pub const WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// What PEFT puts before a module path in the adapter file.
const PREFIX: &str = "base_model.model.";

/// A tensor's name in the model, from its name in an adapter file (`base_model.model.`
/// dropped); other names are returned as they are.
pub fn model_name(file_name: &str) -> &str {
    file_name.strip_prefix(PREFIX).unwrap_or(file_name)
}

/// Whether `dir` holds a PEFT adapter (an `adapter_config.json`).
pub fn is_adapter_dir(dir: &Path) -> bool {
    dir.join(CONFIG_FILE).is_file()
}

/// The `target_modules` PEFT gets: the user's names when every target is a plain name (PEFT
/// matches them the same way), otherwise the modules actually adapted; both as PEFT names
/// them in the model's module tree (see [`ParamStore::set_peft_path`]: a name whose modules
/// are renamed there becomes their renamed tail, `query` → `q_proj`).
fn target_modules(s: &LoraSettings, store: &ParamStore) -> Vec<String> {
    if !s.config.target.iter().all(|t| super::target::is_name(t)) {
        return s.modules.iter().map(|m| store.peft_path(m)).collect();
    }
    let mut out: Vec<String> = Vec::new();
    for t in &s.config.target {
        let depth = t.split('.').count();
        let mut names: Vec<String> = s
            .modules
            .iter()
            .filter(|m| *m == t || m.ends_with(&format!(".{t}")))
            .map(|m| {
                let p = store.peft_path(m);
                let parts: Vec<&str> = p.split('.').collect();
                parts[parts.len().saturating_sub(depth)..].join(".")
            })
            .collect();
        if names.is_empty() {
            names.push(t.clone());
        }
        for name in names {
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    out
}

/// The `adapter_config.json` of `s` for the model of `store`: only keys PEFT's `LoraConfig`
/// knows.
pub fn config_json(s: &LoraSettings, store: &ParamStore) -> Value {
    let c = &s.config;
    json!({
        "peft_type": "LORA",
        "task_type": s.task_type,
        "base_model_name_or_path": s.base_model,
        "revision": s.revision,
        "r": c.r,
        "lora_alpha": c.alpha,
        "lora_dropout": c.dropout,
        "target_modules": target_modules(s, store),
        "bias": "none",
        "fan_in_fan_out": false,
        "modules_to_save": s.modules_to_save,
        "init_lora_weights": true,
        "inference_mode": true,
        "use_rslora": c.use_rslora,
        "use_dora": false,
    })
}

/// An adapter tensor's name in PEFT's file (`{module}.lora_A.weight` with the module's PEFT
/// path), without the prefix.
fn file_name(store: &ParamStore, tensor: &str) -> String {
    let (module, leaf) = tensor
        .strip_suffix(".lora_A.weight")
        .map(|m| (m, "lora_A.weight"))
        .or_else(|| {
            tensor
                .strip_suffix(".lora_B.weight")
                .map(|m| (m, "lora_B.weight"))
        })
        .unwrap_or((tensor, ""));
    if leaf.is_empty() {
        return tensor.to_string();
    }
    format!("{}.{leaf}", store.peft_path(module))
}

/// Writes the store's adapters and head into `dir` as PEFT's `save_pretrained` does, in
/// `dtype` when given. Fails when the store carries no adapter.
pub fn save(store: &ParamStore, dir: &Path, dtype: Option<DType>) -> Result<()> {
    let lora = store
        .lora()
        .ok_or_else(|| Error::config("the model carries no LoRA adapter to save"))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let cast = |t: Tensor| -> Result<Tensor> {
        match dtype {
            Some(d) if t.dtype().is_float() => Ok(t.to_dtype(d)?),
            _ => Ok(t),
        }
    };
    let mut tensors = Vec::new();
    for (name, t) in store.tensors() {
        if super::is_adapter_tensor(&name) {
            tensors.push((format!("{PREFIX}{}", file_name(store, &name)), cast(t)?));
        } else if super::inject::in_head(&lora, &name) {
            tensors.push((format!("{PREFIX}{name}"), cast(t)?));
        }
    }
    save_tensors(&dir.join(WEIGHTS_FILE), &tensors)?;
    let text = serde_json::to_vec_pretty(&config_json(&lora, store))
        .map_err(|e| Error::config(e.to_string()))?;
    write_bytes_atomically(&dir.join(CONFIG_FILE), &text)
}

/// An adapter folder's `adapter_config.json`, read and checked: a LoRA adapter this project
/// applies as PEFT does, or one error naming the file and what is unsupported.
pub fn read_config(dir: &Path) -> Result<LoraSettings> {
    let path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
    let bad = |msg: String| Error::Record {
        path: path.clone(),
        msg,
    };
    let v: Value = serde_json::from_str(&text).map_err(|e| bad(format!("not JSON: {e}")))?;
    let peft_type = v["peft_type"].as_str().unwrap_or("(none)");
    if peft_type != "LORA" {
        return Err(bad(format!(
            "peft_type {peft_type} is not supported; only LoRA adapters (peft_type LORA) are"
        )));
    }
    refuse_unsupported(&v).map_err(bad)?;
    let r = v["r"].as_u64().unwrap_or(0) as usize;
    let config = LoraConfig {
        r,
        alpha: v["lora_alpha"].as_f64().unwrap_or(8.0),
        dropout: v["lora_dropout"].as_f64().unwrap_or(0.0),
        target: match &v["target_modules"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(a) => a
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
            _ => Vec::new(),
        },
        use_rslora: v["use_rslora"].as_bool().unwrap_or(false),
    };
    if r == 0 {
        return Err(bad("r must be at least 1 (got 0)".into()));
    }
    let strings = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(LoraSettings {
        config,
        modules: Vec::new(),
        modules_to_save: strings("modules_to_save"),
        base_model: v["base_model_name_or_path"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        revision: v["revision"].as_str().map(String::from),
        task_type: v["task_type"].as_str().map(String::from),
    })
}

/// The PEFT options that change what an adapter computes and that this project does not
/// apply: refused rather than silently ignored.
fn refuse_unsupported(v: &Value) -> std::result::Result<(), String> {
    let set = |k: &str| !v[k].is_null() && v[k] != json!(false) && v[k] != json!({});
    if v["use_dora"] == json!(true) {
        return Err("use_dora is true: DoRA adapters are not supported".into());
    }
    if v["bias"].as_str().is_some_and(|b| b != "none") {
        return Err(format!(
            "bias {} is not supported (only \"none\")",
            v["bias"]
        ));
    }
    for key in [
        "fan_in_fan_out",
        "rank_pattern",
        "alpha_pattern",
        "layers_to_transform",
        "layer_replication",
        "exclude_modules",
        "lora_bias",
        "target_parameters",
        "trainable_token_indices",
    ] {
        if set(key) {
            return Err(format!("{key} {} is not supported", v[key]));
        }
    }
    Ok(())
}

/// The head tensors an adapter file carries (`modules_to_save`), under the model's names,
/// with their shapes: what the base model's head must be sized to before [`load`].
pub fn head_tensors(dir: &Path) -> Result<Vec<(String, Vec<usize>)>> {
    let ckpt = Checkpoint::open(&dir.join(WEIGHTS_FILE))?;
    Ok(ckpt
        .headers()
        .iter()
        .filter_map(|h| {
            let name = h.name.strip_prefix(PREFIX)?;
            (!super::is_adapter_tensor(name)).then(|| (name.to_string(), h.shape.clone()))
        })
        .collect())
}

/// Applies the adapter folder `dir` to `store` (a base model whose layers are built): its
/// LoRA tensors become adapters of their modules, its head tensors replace the store's. Each
/// mismatch is one error naming the tensor: a module the model lacks or cannot adapt, a shape
/// that does not fit, a tensor the config implies but the file lacks.
pub fn load(store: &ParamStore, dir: &Path, mut settings: LoraSettings) -> Result<LoraSettings> {
    let file = dir.join(WEIGHTS_FILE);
    let ckpt = Checkpoint::open(&file)?;
    let in_file = |msg: String| Error::Record {
        path: file.clone(),
        msg,
    };
    let registered = store.modules();
    let names: Vec<String> = ckpt.headers().iter().map(|h| h.name.clone()).collect();
    // (module, its path in the file, kind)
    let mut modules = Vec::new();
    for name in &names {
        let inner = name
            .strip_prefix(PREFIX)
            .ok_or_else(|| in_file(format!("tensor `{name}` lacks PEFT's `{PREFIX}` prefix")))?;
        if let Some(p) = inner.strip_suffix(".lora_A.weight") {
            let m = store
                .module_of_peft_path(p)
                .unwrap_or_else(|| p.to_string());
            let kind = registered
                .iter()
                .find(|(n, _)| *n == m)
                .map(|(_, k)| *k)
                .ok_or_else(|| {
                    in_file(format!(
                        "tensor `{name}` adapts `{p}`, which is not a linear or conv layer of \
                         the base model"
                    ))
                })?;
            modules.push((m, p.to_string(), kind));
        } else if !inner.ends_with(".lora_B.weight") && !store.contains(inner) {
            return Err(in_file(format!(
                "tensor `{name}`: the base model has no `{inner}`"
            )));
        }
    }
    check_implied(store, &settings, &registered, &modules, &names).map_err(in_file)?;
    let device = store.device();
    let load = |file_name: &str, want: &[usize], dtype: DType| -> Result<Tensor> {
        let full = format!("{PREFIX}{file_name}");
        if !ckpt.contains(&full) {
            return Err(in_file(format!("tensor `{full}` is missing")));
        }
        let t = ckpt.load(&full, &device)?;
        if t.dims() != want {
            return Err(in_file(format!(
                "tensor `{full}` has shape {:?}, the base model needs {want:?}",
                t.dims()
            )));
        }
        Ok(t.to_dtype(dtype)?)
    };
    let (r, scale) = (settings.config.r, settings.config.scale());
    for (m, p, kind) in &modules {
        let dtype = store.get(&format!("{m}.weight"))?.dtype();
        let (a_shape, b_shape) = kind.adapter_shapes(r);
        let a = load(&a_name(p), &a_shape, dtype)?;
        let b = load(&b_name(p), &b_shape, dtype)?;
        let adapter = Adapter {
            a: store.insert(&a_name(m), &a, TensorKind::Parameter)?,
            b: store.insert(&b_name(m), &b, TensorKind::Parameter)?,
            scale,
            dropout: settings.config.dropout,
            kind: *kind,
        };
        store.set_adapter(m, adapter);
    }
    for name in names.iter().filter_map(|n| n.strip_prefix(PREFIX)) {
        if !super::is_adapter_tensor(name) {
            let want = store.get(name)?;
            store.set(name, &load(name, want.dims(), want.dtype())?)?;
        }
    }
    settings.modules = modules.into_iter().map(|(m, _, _)| m).collect();
    // PEFT lists every head name its task may use (`classifier`, `score`): keep the model's.
    let all = store.names();
    settings
        .modules_to_save
        .retain(|m| all.iter().any(|n| n.starts_with(&format!("{m}."))));
    store.set_lora(settings.clone());
    Ok(settings)
}

/// Every module the config's `target_modules` list names (PEFT's matching, on the module's
/// name or its PEFT path) must have both tensors in the file.
fn check_implied(
    store: &ParamStore,
    s: &LoraSettings,
    registered: &[(String, ModuleKind)],
    in_file: &[(String, String, ModuleKind)],
    names: &[String],
) -> std::result::Result<(), String> {
    // Our own adapters list whole layer paths (`bert.encoder.layer.0.attention.self.query`),
    // PEFT's usually names (`query`): both match by equality or a `.name` suffix.
    let plain = s.config.target.iter().all(|t| super::target::is_name(t));
    let matches = |m: &str, t: &str| m == t || m.ends_with(&format!(".{t}"));
    for (m, _) in registered {
        let peft = store.peft_path(m);
        let implied = plain
            && s.config
                .target
                .iter()
                .any(|t| matches(m, t) || matches(&peft, t))
            && !s.modules_to_save.iter().any(|h| h == m);
        let listed = in_file.iter().find(|(n, _, _)| n == m);
        if implied || listed.is_some() {
            let p = listed.map_or(peft.as_str(), |(_, p, _)| p.as_str());
            let has = |path: &str| {
                [a_name(path), b_name(path)]
                    .iter()
                    .all(|t| names.contains(&format!("{PREFIX}{t}")))
            };
            if !has(p) && !has(m) {
                return Err(format!(
                    "tensor `{PREFIX}{}` is missing (its adapter_config.json targets `{}`)",
                    a_name(p),
                    s.config.target.join(", ")
                ));
            }
        }
    }
    Ok(())
}
