//! ViT against transformers and timm: the tiny checkpoints of `scripts/make-vit-fixtures.py`
//! (random weights, hidden 36 with 3 heads, 20×20 images in 4×4 patches) and the logits each
//! library computed for them, in both namings, at the checkpoint's size and at another one
//! (position embeddings resampled); gradients against finite differences; export round trip.

use candle_core::{DType, Device, Tensor};
use finetune_core::safetensors_io::save_tensors;
use finetune_core::Grads;
use finetune_vit::interpolate::resample;
use finetune_vit::{LoadOptions, Naming, ViT};
use serde_json::Value;
use std::path::{Path, PathBuf};

type R = Result<(), Box<dyn std::error::Error>>;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn record(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("logits.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn tmpdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ft-vit-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A `[B, C, H, W]` tensor from nested JSON lists.
fn tensor4(v: &Value, dtype: DType) -> Tensor {
    let nested: Vec<Vec<Vec<Vec<f32>>>> = serde_json::from_value(v.clone()).unwrap();
    let dims = (
        nested.len(),
        nested[0].len(),
        nested[0][0].len(),
        nested[0][0][0].len(),
    );
    let flat: Vec<f32> = nested.into_iter().flatten().flatten().flatten().collect();
    Tensor::from_vec(flat, dims, &Device::Cpu)
        .unwrap()
        .to_dtype(dtype)
        .unwrap()
}

fn rows(v: &Value) -> Vec<Vec<f32>> {
    serde_json::from_value(v.clone()).unwrap()
}

fn max_diff(got: &Tensor, want: &[Vec<f32>]) -> f32 {
    let got = got.to_dtype(DType::F32).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!((got.len(), got[0].len()), (want.len(), want[0].len()));
    got.iter()
        .flatten()
        .zip(want.iter().flatten())
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

fn load(dir: &Path, opts: LoadOptions) -> (ViT, finetune_vit::LoadReport, Option<(usize, usize)>) {
    ViT::from_pretrained(dir, &opts).unwrap()
}

#[test]
fn logits_match_transformers() -> R {
    let rec = record("vit");
    let (m, report, resampled) = load(&fixture("vit"), LoadOptions::default());
    assert_eq!(report.naming, Naming::Transformers);
    assert!(
        report.newly_initialized.is_empty() && report.unused.is_empty(),
        "{report}"
    );
    assert_eq!(resampled, None);
    let logits = m.forward_t(&tensor4(&rec["pixel_values"], DType::F32), false)?;
    let d = max_diff(&logits, &rows(&rec["logits"]));
    assert!(d <= 1e-4, "logits differ from transformers' by {d}");
    assert_eq!(m.config().classifier.labels(), ["cat", "dog", "frog"]);
    Ok(())
}

#[test]
fn another_image_size_resamples_position_embeddings_as_transformers_interpolates() -> R {
    let rec = record("vit");
    let opts = LoadOptions {
        image_size: Some(28),
        ..LoadOptions::default()
    };
    let (m, _, resampled) = load(&fixture("vit"), opts);
    assert_eq!(resampled, Some((5, 7)));
    let pos = m.store().get("vit.embeddings.position_embeddings")?;
    let d = max_diff(&pos.squeeze(0)?, &rows(&rec["position_embeddings_28"]));
    assert!(d <= 1e-5, "resampled position embeddings differ by {d}");
    let logits = m.forward_t(&tensor4(&rec["pixel_values_28"], DType::F32), false)?;
    let d = max_diff(&logits, &rows(&rec["logits_28"]));
    assert!(d <= 1e-4, "28×28 logits differ from transformers' by {d}");
    // The same size resamples to itself.
    let same = resample(&pos, 7)?;
    assert_eq!(same.to_vec3::<f32>()?, pos.to_vec3::<f32>()?);
    // A size the patches do not tile is refused by name.
    let bad = LoadOptions {
        image_size: Some(30),
        ..LoadOptions::default()
    };
    let e = ViT::from_pretrained(&fixture("vit"), &bad)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("image_size") && e.contains("patch_size"), "{e}");
    Ok(())
}

#[test]
fn a_timm_checkpoint_loads_with_its_stacked_qkv_and_matches_timm() -> R {
    let rec = record("vit-timm");
    let (m, report, _) = load(&fixture("vit-timm"), LoadOptions::default());
    assert_eq!(report.naming, Naming::Timm);
    assert!(
        report.newly_initialized.is_empty() && report.unused.is_empty(),
        "{report}"
    );
    assert_eq!(m.config().layer_norm_eps, 1e-6);
    assert_eq!(m.config().classifier.labels(), ["cat", "dog", "frog"]);
    assert_eq!(m.preprocessing().interpolation, "bicubic");
    let logits = m.forward_t(&tensor4(&rec["pixel_values"], DType::F32), false)?;
    let d = max_diff(&logits, &rows(&rec["logits"]));
    assert!(d <= 1e-4, "logits differ from timm's by {d}");
    Ok(())
}

#[test]
fn the_bare_naming_loads_with_a_fresh_head_and_missing_tensors_are_named() -> R {
    let src = fixture("vit");
    let tensors = candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu)?;
    let bare: Vec<(String, Tensor)> = tensors
        .iter()
        .filter_map(|(n, t)| n.strip_prefix("vit.").map(|b| (b.to_string(), t.clone())))
        .collect();
    let dir = tmpdir("bare");
    save_tensors(&dir.join("model.safetensors"), &bare)?;
    std::fs::copy(src.join("config.json"), dir.join("config.json"))?;
    let (m, report, _) = load(&dir, LoadOptions::default());
    assert_eq!(report.naming, Naming::Bare);
    assert_eq!(
        report.newly_initialized,
        ["classifier.weight", "classifier.bias"]
    );
    let want = tensors["vit.encoder.layer.1.output.dense.weight"].to_vec2::<f32>()?;
    let got = m.store().get("vit.encoder.layer.1.output.dense.weight")?;
    assert_eq!(got.to_vec2::<f32>()?, want);
    // Without one backbone tensor: an error naming it.
    let lacking: Vec<(String, Tensor)> = bare
        .into_iter()
        .filter(|(n, _)| n != "encoder.layer.0.layernorm_after.bias")
        .collect();
    save_tensors(&dir.join("model.safetensors"), &lacking)?;
    let e = ViT::from_pretrained(&dir, &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("vit.encoder.layer.0.layernorm_after.bias")
            && e.contains("`encoder.layer.0.layernorm_after.bias`"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// Backward through the whole model (fused ops included) against central finite differences
/// in f64, at each probed tensor's largest gradient entry.
#[test]
fn gradients_match_finite_differences() -> R {
    let rec = record("vit");
    let opts = LoadOptions {
        dtype: DType::F64,
        ..LoadOptions::default()
    };
    let (m, _, _) = load(&fixture("vit"), opts);
    let x = tensor4(&rec["pixel_values"], DType::F64);
    let targets = Tensor::new(&[2u32, 0], &Device::Cpu)?;
    let loss_of = |m: &ViT| -> Result<f64, Box<dyn std::error::Error>> {
        Ok(m.loss(&m.forward_t(&x, false)?, &targets, 0.1)?
            .to_scalar::<f64>()?)
    };
    let loss = m.loss(&m.forward_t(&x, false)?, &targets, 0.1)?;
    let grads = Grads::from_backward(m.store(), &loss.backward()?);
    let h = 1e-5;
    for p in [
        "vit.embeddings.cls_token",
        "vit.embeddings.position_embeddings",
        "vit.embeddings.patch_embeddings.projection.weight",
        "vit.embeddings.patch_embeddings.projection.bias",
        "vit.encoder.layer.0.layernorm_before.weight",
        "vit.encoder.layer.0.attention.attention.query.weight",
        "vit.encoder.layer.0.attention.attention.value.bias",
        "vit.encoder.layer.1.attention.output.dense.weight",
        "vit.encoder.layer.1.layernorm_after.bias",
        "vit.encoder.layer.1.intermediate.dense.weight",
        "vit.encoder.layer.1.output.dense.bias",
        "vit.layernorm.weight",
        "classifier.weight",
    ] {
        let g = grads.get(p).unwrap_or_else(|| panic!("{p}: no gradient"));
        let g = g.flatten_all()?.to_vec1::<f64>()?;
        let idx = (0..g.len())
            .max_by(|&i, &j| g[i].abs().total_cmp(&g[j].abs()))
            .unwrap();
        let orig = m.store().get(p)?;
        let mut v = orig.flatten_all()?.to_vec1::<f64>()?;
        let x0 = v[idx];
        let mut at = |delta: f64| -> Result<f64, Box<dyn std::error::Error>> {
            v[idx] = x0 + delta;
            m.store()
                .set(p, &Tensor::from_vec(v.clone(), orig.dims(), &Device::Cpu)?)?;
            loss_of(&m)
        };
        let numeric = (at(h)? - at(-h)?) / (2.0 * h);
        at(0.0)?;
        assert!(
            (g[idx] - numeric).abs() <= 1e-6 + 1e-4 * numeric.abs(),
            "{p}[{idx}]: backward {} vs finite difference {numeric}",
            g[idx]
        );
        assert!(g[idx] != 0.0, "{p}[{idx}]: a zero gradient checks nothing");
    }
    Ok(())
}

#[test]
fn an_export_reloads_to_the_same_logits_with_its_labels_and_size() -> R {
    let rec = record("vit");
    let opts = LoadOptions {
        labels: Some(vec!["ant".into(), "bee".into()]),
        image_size: Some(28),
        ..LoadOptions::default()
    };
    let (m, report, _) = load(&fixture("vit"), opts);
    assert_eq!(report.resized.len(), 2, "{report}");
    let dir = tmpdir("export");
    m.export_as(&dir, None)?;
    let config: Value = serde_json::from_str(&std::fs::read_to_string(dir.join("config.json"))?)?;
    assert_eq!(config["architectures"][0], "ViTForImageClassification");
    assert_eq!(
        (
            config["image_size"].as_u64(),
            config["label2id"]["bee"].as_u64()
        ),
        (Some(28), Some(1))
    );
    let pre: Value = serde_json::from_str(&std::fs::read_to_string(
        dir.join("preprocessor_config.json"),
    )?)?;
    assert_eq!(pre["size"]["height"], 28);
    let (back, report, resampled) = load(&dir, LoadOptions::default());
    assert!(
        report.newly_initialized.is_empty() && report.resized.is_empty() && resampled.is_none()
    );
    let x = tensor4(&rec["pixel_values_28"], DType::F32);
    let (a, b) = (m.forward_t(&x, false)?, back.forward_t(&x, false)?);
    assert_eq!(a.to_vec2::<f32>()?, b.to_vec2::<f32>()?);
    assert_eq!(back.preprocessing(), m.preprocessing());
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn training_mode_drops_and_evaluation_does_not() -> R {
    let rec = record("vit");
    let (m, _, _) = load(&fixture("vit"), LoadOptions::default());
    let x = tensor4(&rec["pixel_values"], DType::F32);
    let eval = |m: &ViT| m.forward_t(&x, false).unwrap().to_vec2::<f32>().unwrap();
    assert_eq!(eval(&m), eval(&m));
    let a = m.forward_t(&x, true)?.to_vec2::<f32>()?;
    let b = m.forward_t(&x, true)?.to_vec2::<f32>()?;
    assert_ne!(a, b, "dropout 0.1 should change training forwards");
    assert!(m.features_randomness().is_some());
    Ok(())
}

/// The tiny ViT fixture with a 2-class head (`ant`, `bee`) for the PEFT adapter.
fn two_class_base() -> ViT {
    let opts = LoadOptions {
        labels: Some(vec!["ant".into(), "bee".into()]),
        ..LoadOptions::default()
    };
    load(&fixture("vit"), opts).0
}

#[test]
fn a_peft_adapter_of_transformers_5_applies_and_saves_under_its_module_names() -> R {
    use finetune_core::lora::peft;
    let rec = record("vit-lora");
    let x = tensor4(&rec["pixel_values"], DType::F32);
    let dir = fixture("vit-lora");
    let m = two_class_base();
    let s = peft::load(m.store(), &dir, peft::read_config(&dir)?)?;
    assert_eq!(s.modules.len(), 4, "{:?}", s.modules);
    assert!(s.modules[0].starts_with("vit.encoder.layer.0.attention.attention."));
    let d = max_diff(&m.forward_t(&x, false)?, &rows(&rec["logits"]));
    assert!(d <= 1e-4, "logits differ from PEFT's by {d}");
    // Saved again: transformers 5's module paths and target names, and it reloads.
    let out = tmpdir("peft-save");
    peft::save(m.store(), &out, None)?;
    let config: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("adapter_config.json"))?)?;
    assert_eq!(
        config["target_modules"],
        serde_json::json!(["q_proj", "v_proj"])
    );
    let names: Vec<String> =
        candle_core::safetensors::load(out.join("adapter_model.safetensors"), &Device::Cpu)?
            .into_keys()
            .collect();
    assert!(
        names.contains(&"base_model.model.vit.layers.1.attention.v_proj.lora_B.weight".to_string()),
        "{names:?}"
    );
    let again = two_class_base();
    peft::load(again.store(), &out, peft::read_config(&out)?)?;
    assert_eq!(
        again.forward_t(&x, false)?.to_vec2::<f32>()?,
        m.forward_t(&x, false)?.to_vec2::<f32>()?
    );
    // The state dict's names (transformers 4's module tree) load as well.
    let tensors =
        candle_core::safetensors::load(out.join("adapter_model.safetensors"), &Device::Cpu)?;
    let legacy: Vec<(String, Tensor)> = tensors
        .into_iter()
        .map(|(n, t)| {
            let n = n
                .replace("vit.layers.", "vit.encoder.layer.")
                .replace("attention.q_proj", "attention.attention.query")
                .replace("attention.v_proj", "attention.attention.value");
            (n, t)
        })
        .collect();
    assert!(legacy
        .iter()
        .any(|(n, _)| n.contains("encoder.layer.0.attention.attention.query.lora_A")));
    save_tensors(&out.join("adapter_model.safetensors"), &legacy)?;
    let mut config = config;
    config["target_modules"] = serde_json::json!(["query", "value"]);
    std::fs::write(out.join("adapter_config.json"), config.to_string())?;
    let legacy_model = two_class_base();
    peft::load(legacy_model.store(), &out, peft::read_config(&out)?)?;
    assert_eq!(
        legacy_model.forward_t(&x, false)?.to_vec2::<f32>()?,
        m.forward_t(&x, false)?.to_vec2::<f32>()?
    );
    std::fs::remove_dir_all(&out).ok();
    Ok(())
}
