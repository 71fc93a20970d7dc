//! Eval-mode parity with candle-transformers' ResNet-18 and ResNet-50 on the same random
//! full-size weights: ResNet-18 loaded from torchvision names, ResNet-50 from transformers
//! names (so the full-size name mapping is checked too).

mod common;

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;
use common::*;
use finetune_core::Result;
use finetune_resnet::{LoadOptions, Naming, ResNet, ResNetConfig};
use std::collections::HashMap;

fn check(arch: &str, naming: Naming) -> Result<()> {
    let dev = Device::Cpu;
    let cfg = ResNetConfig::from_name(arch, 10)?;
    let weights = random_weights(&cfg, 21);
    let dir = tmpdir(arch);
    write_checkpoint(&dir, &cfg, &weights, naming);
    let (model, report) = ResNet::from_pretrained(&dir, &LoadOptions::default())?;
    assert_eq!(report.naming, naming);
    assert!(report.unused.is_empty() && report.newly_initialized.is_empty());
    assert_eq!(model.config().architecture, arch);

    // candle-transformers has no num_batches_tracked; it reads the float tensors only.
    let floats: HashMap<String, Tensor> = weights
        .iter()
        .filter(|(n, _)| !n.ends_with("num_batches_tracked"))
        .cloned()
        .collect();
    let vb = VarBuilder::from_tensors(floats, DType::F32, &dev);
    let reference = match arch {
        "resnet18" => candle_transformers::models::resnet::resnet18(10, vb)?,
        _ => candle_transformers::models::resnet::resnet50(10, vb)?,
    };
    let x = images(1, 3, 64, 64, 22, DType::F32);
    let want = reference.forward(&x)?;
    let got = model.forward_t(&x, false)?;
    let scale = max_abs_diff(&want, &want.zeros_like()?);
    assert!(scale > 0.1, "{arch}: degenerate logits");
    let diff = max_abs_diff(&got, &want);
    eprintln!("{arch}: max |Δ| {diff:.3e}, logits up to {scale:.3}");
    assert!(diff < 1e-4, "{arch}: max |Δ| {diff} (logits up to {scale})");
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn resnet18_eval_logits_match_candle_transformers() -> Result<()> {
    check("resnet18", Naming::Torchvision)
}

#[test]
fn resnet50_eval_logits_match_candle_transformers() -> Result<()> {
    check("resnet50", Naming::Transformers)
}
