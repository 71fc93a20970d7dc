//! LoRA layers: an untrained adapter leaves the layer unchanged; the adapter's gradients (A,
//! B and the input's) against central finite differences in f64, through candle's backward
//! and the recorded one; merged weights equal the adapter's output; PEFT's folder written
//! and read back gives the same outputs; bad adapter folders are refused naming the problem.

use candle_core::{DType, Device, Tensor, Var};
use finetune_core::lora::{self, add_adapters, peft, LoraConfig, LoraSettings, ModuleKind};
use finetune_core::nn::linear;
use finetune_core::{ParamStore, Result, Rng, TensorKind};
use finetune_kernels::ops::OpSet;
use finetune_kernels::tape::Recording;

fn normal(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::seed_from_u64(seed);
    let v: Vec<f64> = (0..shape.iter().product()).map(|_| rng.normal()).collect();
    Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
}

fn values(t: &Tensor) -> Vec<f64> {
    t.flatten_all()
        .unwrap()
        .to_dtype(DType::F64)
        .unwrap()
        .to_vec1()
        .unwrap()
}

fn settings(target: &[&str], r: usize, modules: Vec<String>) -> LoraSettings {
    LoraSettings {
        config: LoraConfig {
            r,
            alpha: 3.0,
            dropout: 0.0,
            target: target.iter().map(|t| t.to_string()).collect(),
            use_rslora: false,
        },
        modules,
        modules_to_save: vec!["head".into()],
        base_model: "base".into(),
        revision: None,
        task_type: Some("SEQ_CLS".into()),
    }
}

/// A store with a `[4, 5]` linear `layer` and a `[2, 4]` linear `head`, an adapter of rank 2
/// on `layer` whose B is made non-zero.
fn linear_store() -> Result<(ParamStore, finetune_core::nn::Linear)> {
    let store = ParamStore::new();
    store.insert("layer.weight", &normal(&[4, 5], 1), TensorKind::Parameter)?;
    store.insert("layer.bias", &normal(&[4], 2), TensorKind::Parameter)?;
    store.insert("head.weight", &normal(&[2, 4], 3), TensorKind::Parameter)?;
    let layer = linear(&store, "layer", 5, 4, true)?;
    linear(&store, "head", 4, 2, false)?;
    let s = settings(&["layer"], 2, vec!["layer".into()]);
    add_adapters(&store, s, &mut Rng::seed_from_u64(9))?;
    Ok((store, layer))
}

#[test]
fn an_untrained_adapter_leaves_the_layer_as_it_was() -> Result<()> {
    let (store, layer) = linear_store()?;
    let x = normal(&[2, 3, 5], 4);
    let with = layer.forward_with(&x, OpSet::Fused)?;
    let without = x
        .broadcast_matmul(&store.get("layer.weight")?.t()?)?
        .broadcast_add(&store.get("layer.bias")?)?;
    assert_eq!(values(&with), values(&without), "B starts at zero");
    // A is kaiming-uniform: U(±1/√in), not zero.
    let a = values(&store.get("layer.lora_A.weight")?);
    let bound = 1.0 / 5f64.sqrt();
    assert!(a.iter().all(|v| v.abs() <= bound) && a.iter().any(|v| v.abs() > bound / 4.0));
    Ok(())
}

/// Central differences of `f` with respect to every element of the variable `v`.
fn numeric(v: &Var, f: &dyn Fn() -> Result<f64>) -> Result<Vec<f64>> {
    let base = v.as_tensor().flatten_all()?.to_vec1::<f64>()?;
    let shape = v.dims().to_vec();
    let eps = 1e-6;
    let mut out = Vec::new();
    for i in 0..base.len() {
        let at = |d: f64| -> Result<f64> {
            let mut p = base.clone();
            p[i] += d;
            v.set(&Tensor::from_vec(p, shape.as_slice(), &Device::Cpu)?)?;
            f()
        };
        out.push((at(eps)? - at(-eps)?) / (2.0 * eps));
    }
    v.set(&Tensor::from_vec(base, shape.as_slice(), &Device::Cpu)?)?;
    Ok(out)
}

fn assert_close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-6 + 1e-5 * w.abs(),
            "{what}[{i}]: {g} vs {w}"
        );
    }
}

/// Checks the gradients of `Σ c·layer(x)` for A, B and x, by candle's backward and the tape.
fn check_gradients(
    store: &ParamStore,
    x: &Var,
    forward: &dyn Fn(&Tensor) -> Result<Tensor>,
) -> Result<()> {
    store.set_trainable("layer.weight", false)?;
    store.set_trainable("layer.bias", false)?;
    let c = normal(forward(x.as_tensor())?.dims(), 77);
    let loss = || -> Result<Tensor> { Ok((forward(x.as_tensor())? * &c)?.sum_all()?) };
    let scalar = || -> Result<f64> { Ok(loss()?.to_scalar::<f64>()?) };
    let a = store.var("layer.lora_A.weight")?;
    let b = store.var("layer.lora_B.weight")?;
    let want = [
        numeric(&a, &scalar)?,
        numeric(&b, &scalar)?,
        numeric(x, &scalar)?,
    ];
    let by_candle = loss()?.backward()?;
    let rec = Recording::start();
    let by_tape = rec.backward(&loss()?)?;
    for (how, grads) in [("candle", by_candle), ("tape", by_tape)] {
        for ((v, name), want) in [(&a, "A"), (&b, "B"), (x, "x")].into_iter().zip(&want) {
            let g = grads.get(v.as_tensor()).expect("a gradient");
            assert_close(&values(g), want, &format!("{how}: d{name}"));
        }
        assert!(
            grads.get(store.var("layer.weight")?.as_tensor()).is_none(),
            "W is frozen"
        );
    }
    Ok(())
}

#[test]
fn linear_adapter_gradients_match_finite_differences() -> Result<()> {
    let (store, layer) = linear_store()?;
    store.set("layer.lora_B.weight", &normal(&[4, 2], 5))?;
    let x = Var::from_tensor(&normal(&[2, 3, 5], 6))?;
    for ops in [OpSet::Fused, OpSet::Stock] {
        check_gradients(&store, &x, &|x| layer.forward_with(x, ops))?;
    }
    Ok(())
}

#[test]
fn conv_adapter_gradients_match_finite_differences() -> Result<()> {
    let store = ParamStore::new();
    store.insert(
        "layer.weight",
        &normal(&[4, 3, 3, 3], 1),
        TensorKind::Parameter,
    )?;
    store.insert("layer.bias", &normal(&[4], 2), TensorKind::Parameter)?;
    let kind = ModuleKind::Conv2d {
        in_channels: 3,
        out_channels: 4,
        kernel: 3,
        stride: 2,
        padding: 1,
    };
    store.register_module("layer", kind);
    let s = settings(&["layer"], 2, vec!["layer".into()]);
    add_adapters(&store, s, &mut Rng::seed_from_u64(9))?;
    store.set("layer.lora_B.weight", &normal(&[4, 2, 1, 1], 5))?;
    let adapter = store.adapter("layer").expect("an adapter");
    assert_eq!(store.get("layer.lora_A.weight")?.dims(), [2, 3, 3, 3]);
    let x = Var::from_tensor(&normal(&[2, 3, 7, 7], 6))?;
    for fused in [true, false] {
        let forward = |x: &Tensor| -> Result<Tensor> {
            let w = store.get("layer.weight")?;
            let y = x.conv2d(&w, 1, 2, 1, 1)?;
            adapter.add_conv(&y, x, fused, None)
        };
        check_gradients(&store, &x, &forward)?;
        // The merged kernel computes the same map.
        let merged = lora::merged_weight(&store.get("layer.weight")?, &adapter)?;
        let direct = x.as_tensor().conv2d(&merged, 1, 2, 1, 1)?;
        let mut close = values(&direct)
            .into_iter()
            .zip(values(&forward(x.as_tensor())?));
        assert!(
            close.all(|(m, a)| (m - a).abs() < 1e-10),
            "merged conv differs"
        );
    }
    Ok(())
}

#[test]
fn merged_tensors_fold_the_adapter_in_and_leave_its_tensors_out() -> Result<()> {
    let (store, layer) = linear_store()?;
    store.set("layer.lora_B.weight", &normal(&[4, 2], 5))?;
    let merged: std::collections::HashMap<_, _> =
        lora::merged_tensors(&store)?.into_iter().collect();
    assert!(!merged.keys().any(|n| lora::is_adapter_tensor(n)));
    let x = normal(&[3, 5], 6);
    let direct = x
        .matmul(&merged["layer.weight"].t()?)?
        .broadcast_add(&merged["layer.bias"])?;
    let adapted = layer.forward_with(&x, OpSet::Fused)?;
    for (m, a) in values(&direct).into_iter().zip(values(&adapted)) {
        assert!((m - a).abs() < 1e-10, "{m} vs {a}");
    }
    // W + s·BA, with s = alpha / r = 1.5.
    let want = (store.get("layer.weight")?
        + (store
            .get("layer.lora_B.weight")?
            .matmul(&store.get("layer.lora_A.weight")?)?
            * 1.5)?)?;
    assert_eq!(values(&merged["layer.weight"]), values(&want));
    Ok(())
}

fn tmp(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("ft-lora-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn a_peft_folder_round_trips_and_names_what_is_wrong() -> Result<()> {
    let (store, layer) = linear_store()?;
    store.set("layer.lora_B.weight", &normal(&[4, 2], 5))?;
    store.set("head.weight", &normal(&[2, 4], 8))?;
    let dir = tmp("roundtrip");
    peft::save(&store, &dir, None)?;
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(peft::CONFIG_FILE)).unwrap())
            .unwrap();
    assert_eq!(config["peft_type"], "LORA");
    assert_eq!(config["target_modules"], serde_json::json!(["layer"]));
    assert_eq!(config["modules_to_save"], serde_json::json!(["head"]));

    // A fresh base gets the adapter and the head from the folder.
    let fresh = ParamStore::new();
    fresh.insert(
        "layer.weight",
        &store.get("layer.weight")?,
        TensorKind::Parameter,
    )?;
    fresh.insert(
        "layer.bias",
        &store.get("layer.bias")?,
        TensorKind::Parameter,
    )?;
    fresh.insert("head.weight", &normal(&[2, 4], 3), TensorKind::Parameter)?;
    let again = linear(&fresh, "layer", 5, 4, true)?;
    linear(&fresh, "head", 4, 2, false)?;
    let s = peft::read_config(&dir)?;
    let s = peft::load(&fresh, &dir, s)?;
    assert_eq!(s.modules, ["layer"]);
    let x = normal(&[3, 5], 6);
    assert_eq!(
        values(&again.forward_with(&x, OpSet::Fused)?),
        values(&layer.forward_with(&x, OpSet::Fused)?)
    );
    assert_eq!(
        values(&fresh.get("head.weight")?),
        values(&store.get("head.weight")?)
    );

    // Bad folders: each refused with what is wrong.
    let edit = |key: &str, value: serde_json::Value| {
        let mut c = config.clone();
        c[key] = value;
        std::fs::write(dir.join(peft::CONFIG_FILE), serde_json::to_vec(&c).unwrap()).unwrap();
        peft::read_config(&dir).map(|_| ()).unwrap_err().to_string()
    };
    assert!(edit("peft_type", "IA3".into()).contains("peft_type IA3 is not supported"));
    assert!(edit("use_dora", true.into()).contains("DoRA adapters are not supported"));
    assert!(edit("r", 0.into()).contains("r must be at least 1"));
    let mut c = config.clone();
    c["target_modules"] = serde_json::json!(["layer", "head2"]);
    std::fs::write(dir.join(peft::CONFIG_FILE), serde_json::to_vec(&c).unwrap()).unwrap();
    let other = ParamStore::new();
    other.insert("layer.weight", &normal(&[4, 6], 1), TensorKind::Parameter)?;
    other.insert("head.weight", &normal(&[2, 4], 1), TensorKind::Parameter)?;
    linear(&other, "layer", 6, 4, false)?;
    let err = peft::load(&other, &dir, peft::read_config(&dir)?)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("lora_A.weight` has shape [2, 5], the base model needs [2, 6]"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn an_adapter_file_missing_a_tensor_its_config_implies_is_refused() -> Result<()> {
    let store = ParamStore::new();
    for m in ["a.query", "a.value"] {
        store.insert(
            &format!("{m}.weight"),
            &normal(&[3, 3], 1),
            TensorKind::Parameter,
        )?;
        linear(&store, m, 3, 3, false)?;
    }
    let s = settings(&["query"], 1, vec!["a.query".into()]);
    add_adapters(
        &store,
        LoraSettings {
            modules_to_save: vec![],
            ..s
        },
        &mut Rng::seed_from_u64(1),
    )?;
    let dir = tmp("implied");
    peft::save(&store, &dir, None)?;
    let mut c: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join(peft::CONFIG_FILE)).unwrap())
            .unwrap();
    c["target_modules"] = serde_json::json!(["query", "value"]);
    std::fs::write(dir.join(peft::CONFIG_FILE), serde_json::to_vec(&c).unwrap()).unwrap();
    let base = ParamStore::new();
    for m in ["a.query", "a.value"] {
        base.insert(
            &format!("{m}.weight"),
            &normal(&[3, 3], 1),
            TensorKind::Parameter,
        )?;
        linear(&base, m, 3, 3, false)?;
    }
    let err = peft::load(&base, &dir, peft::read_config(&dir)?)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("base_model.model.a.value.lora_A.weight` is missing"),
        "{err}"
    );
    assert!(err.contains(peft::WEIGHTS_FILE), "{err}");
    // Whole layer paths, as this project writes them for globs and `all-linear`, imply too.
    c["target_modules"] = serde_json::json!(["a.query", "a.value"]);
    std::fs::write(dir.join(peft::CONFIG_FILE), serde_json::to_vec(&c).unwrap()).unwrap();
    let fresh = ParamStore::new();
    for m in ["a.query", "a.value"] {
        fresh.insert(
            &format!("{m}.weight"),
            &normal(&[3, 3], 1),
            TensorKind::Parameter,
        )?;
        linear(&fresh, m, 3, 3, false)?;
    }
    let err = peft::load(&fresh, &dir, peft::read_config(&dir)?)
        .unwrap_err()
        .to_string();
    assert!(err.contains("a.value.lora_A.weight` is missing"), "{err}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
