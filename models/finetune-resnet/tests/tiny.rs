//! ResNet on tiny checkpoints written by the test: both namings, export round trip, head
//! replacement, load errors, train-mode BatchNorm statistics, a whole-model gradient check,
//! freezing with frozen statistics, dropout.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use finetune_core::optim::Sgd;
use finetune_core::{FreezeSpec, Grads, GroupBuilder, OptimizerConfig, Result};
use finetune_resnet::naming::expected_tensors;
use finetune_resnet::{BlockKind, BnMode, LoadOptions, Naming, ResNet};

const BLOCKS: [BlockKind; 2] = [BlockKind::Basic, BlockKind::Bottleneck];

#[test]
fn both_namings_load_and_export_round_trips_with_identical_logits() -> Result<()> {
    for block in BLOCKS {
        let cfg = tiny_config(block);
        let weights = random_weights(&cfg, 1);
        let x = images(2, 3, 32, 32, 9, DType::F32);
        let mut logits = Vec::new();
        for naming in [Naming::Torchvision, Naming::Transformers] {
            let dir = tmpdir(&format!("{block:?}-{}", naming.as_str()));
            write_checkpoint(&dir, &cfg, &weights, naming);
            let (model, report) = ResNet::from_pretrained(&dir, &LoadOptions::default())?;
            assert_eq!(report.naming, naming);
            assert!(report.newly_initialized.is_empty() && report.unused.is_empty());
            assert!(report.resized.is_empty(), "{report}");
            assert_eq!(model.config().labels(), vec!["ant", "bee", "cat"]);
            assert_eq!(model.config().layers, [1, 2, 1, 1]);
            let p = &model.config().preprocessing;
            assert_eq!(
                (p.input_size, p.interpolation.as_str()),
                ([3, 32, 32], "bicubic")
            );
            assert!((p.crop_pct - 0.9).abs() < 1e-12);
            // The store holds the checkpoint's values under torchvision names, in torchvision's
            // order, buffers as buffers.
            let names: Vec<String> = expected_tensors(&cfg).into_iter().map(|e| e.name).collect();
            assert_eq!(model.store().names(), names);
            for (n, t) in &weights {
                assert_eq!(max_abs_diff(&model.store().get(n)?, t), 0.0, "{n}");
            }
            let eval = model.forward_t(&x, false)?;
            assert_eq!(eval.dims(), &[2, 3]);

            let out = tmpdir(&format!("{block:?}-{}-export", naming.as_str()));
            model.export_as(&out, None)?;
            let (back, report) = ResNet::from_pretrained(&out, &LoadOptions::default())?;
            assert_eq!(report.naming, Naming::Torchvision);
            assert_eq!(max_abs_diff(&back.forward_t(&x, false)?, &eval), 0.0);
            assert_eq!(back.config().labels(), model.config().labels());
            assert_eq!(back.config().preprocessing, model.config().preprocessing);
            // File format: format=pt, i64 counters, timm config.
            let bytes = std::fs::read(out.join("model.safetensors")).unwrap();
            let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
            assert_eq!(meta.metadata().as_ref().unwrap()["format"], "pt");
            let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
            let nbt = st.tensor("layer2.1.bn1.num_batches_tracked").unwrap();
            assert_eq!(
                (nbt.dtype(), nbt.shape()),
                (safetensors::Dtype::I64, &[][..])
            );
            assert_eq!(st.len(), names.len());
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(out.join("config.json")).unwrap()).unwrap();
            assert_eq!(json["num_features"], cfg.num_features());
            assert_eq!(
                json["label_names"],
                serde_json::json!(["ant", "bee", "cat"])
            );
            assert_eq!(
                json["model_args"]["layers"],
                serde_json::json!([1, 2, 1, 1])
            );
            assert_eq!(json["stem_channels"], 4);
            assert_eq!(json["pretrained_cfg"]["classifier"], "fc");

            // Training-mode forwards move the statistics; export carries them.
            model.forward_t(&x, true)?;
            model.forward_t(&x, true)?;
            model.export_as(&out, None)?;
            let (back, _) = ResNet::from_pretrained(&out, &LoadOptions::default())?;
            assert_eq!(
                back.store()
                    .get("layer4.0.downsample.1.num_batches_tracked")?
                    .to_scalar::<i64>()?,
                9
            );
            assert_eq!(
                max_abs_diff(&back.forward_t(&x, false)?, &model.forward_t(&x, false)?),
                0.0
            );
            assert!(max_abs_diff(&model.forward_t(&x, false)?, &eval) > 1e-4);
            logits.push(eval);
            for d in [dir, out] {
                std::fs::remove_dir_all(d).ok();
            }
        }
        assert_eq!(max_abs_diff(&logits[0], &logits[1]), 0.0);
    }
    Ok(())
}

#[test]
fn head_is_replaced_only_when_asked_and_labels_travel_to_the_export() -> Result<()> {
    let cfg = tiny_config(BlockKind::Basic);
    let weights = random_weights(&cfg, 2);
    let dir = tmpdir("head");
    write_checkpoint(&dir, &cfg, &weights, Naming::Transformers);
    let x = images(2, 3, 32, 32, 3, DType::F32);

    // Five classes: fc replaced (reported), everything else loaded.
    let labels: Vec<String> = ["a", "b", "c", "d", "e"].map(String::from).to_vec();
    let opts = LoadOptions {
        labels: Some(labels.clone()),
        ..LoadOptions::default()
    };
    let (model, report) = ResNet::from_pretrained(&dir, &opts)?;
    assert_eq!(
        report.resized,
        vec![
            ("fc.weight".to_string(), vec![3, 8], vec![5, 8]),
            ("fc.bias".to_string(), vec![3], vec![5])
        ]
    );
    assert!(report.to_string().contains("fc.weight"));
    assert_eq!(model.forward_t(&x, false)?.dims(), &[2, 5]);
    // torch.nn.Linear's initialisation: U(±1/√in_features).
    let w: Vec<f32> = model.store().get("fc.weight")?.flatten_all()?.to_vec1()?;
    let bound = 1.0 / (8f32).sqrt();
    assert!(w.iter().all(|v| v.abs() <= bound) && w.iter().any(|v| v.abs() > 0.5 * bound));
    let out = tmpdir("head-export");
    model.export_as(&out, None)?;
    let (back, report) = ResNet::from_pretrained(&out, &LoadOptions::default())?;
    assert!(report.resized.is_empty() && report.newly_initialized.is_empty());
    assert_eq!(back.config().labels(), labels);
    assert_eq!(back.num_classes(), 5);

    // Same count: the checkpoint's head is kept, unless a new one is asked for.
    let opts = LoadOptions {
        labels: Some(["x", "y", "z"].map(String::from).to_vec()),
        ..LoadOptions::default()
    };
    let (kept, report) = ResNet::from_pretrained(&dir, &opts)?;
    assert!(report.resized.is_empty());
    assert_eq!(
        max_abs_diff(
            &kept.store().get("fc.weight")?,
            &weights.iter().find(|w| w.0 == "fc.weight").unwrap().1
        ),
        0.0
    );
    assert_eq!(kept.config().labels(), vec!["x", "y", "z"]);
    let (fresh, report) = ResNet::from_pretrained(
        &dir,
        &LoadOptions {
            new_head: true,
            ..opts
        },
    )?;
    assert_eq!(report.resized.len(), 2);
    assert!(
        max_abs_diff(
            &fresh.store().get("fc.weight")?,
            &kept.store().get("fc.weight")?
        ) > 0.0
    );

    // A misfit head nobody asked to replace is an error naming both shapes.
    let mut other = cfg.clone();
    other.set_labels(&["p", "q"]);
    let dir2 = tmpdir("head-misfit");
    write_checkpoint(&dir2, &cfg, &weights, Naming::Torchvision);
    let mut json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir2.join("config.json")).unwrap()).unwrap();
    json["num_classes"] = 2.into();
    json["label_names"] = serde_json::json!(["p", "q"]);
    std::fs::write(dir2.join("config.json"), json.to_string()).unwrap();
    let e = ResNet::from_pretrained(&dir2, &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("fc.weight") && e.contains("[2, 8]") && e.contains("[3, 8]"),
        "{e}"
    );

    // replace_head after loading.
    let (mut m, _) = ResNet::from_pretrained(&dir, &LoadOptions::default())?;
    m.replace_head(&["only", "two"], 7)?;
    assert_eq!(m.forward_t(&x, false)?.dims(), &[2, 2]);
    assert_eq!(m.config().labels(), vec!["only", "two"]);
    for d in [dir, dir2, out] {
        std::fs::remove_dir_all(d).ok();
    }
    Ok(())
}

#[test]
fn missing_or_misshapen_backbone_tensors_are_named_errors() -> Result<()> {
    let cfg = tiny_config(BlockKind::Bottleneck);
    let weights = random_weights(&cfg, 3);
    let without = |name: &str| -> Vec<(String, Tensor)> {
        weights.iter().filter(|w| w.0 != name).cloned().collect()
    };
    let dir = tmpdir("errors");
    write_checkpoint(
        &dir,
        &cfg,
        &without("layer2.0.downsample.0.weight"),
        Naming::Transformers,
    );
    let e = ResNet::from_pretrained(&dir, &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("layer2.0.downsample.0.weight")
            && e.contains("resnet.encoder.stages.1.layers.0.shortcut.convolution.weight"),
        "{e}"
    );
    let mut bad = weights.clone();
    let i = bad
        .iter()
        .position(|w| w.0 == "layer3.0.conv2.weight")
        .unwrap();
    bad[i].1 = Tensor::zeros((8, 8, 1, 1), DType::F32, &Device::Cpu)?;
    write_checkpoint(&dir, &cfg, &bad, Naming::Torchvision);
    let e = ResNet::from_pretrained(&dir, &LoadOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("layer3.0.conv2.weight")
            && e.contains("[8, 8, 3, 3]")
            && e.contains("[8, 8, 1, 1]"),
        "{e}"
    );
    // Old checkpoints without num_batches_tracked load, the counters reported as new.
    write_checkpoint(
        &dir,
        &cfg,
        &without("bn1.num_batches_tracked"),
        Naming::Torchvision,
    );
    let (_, report) = ResNet::from_pretrained(&dir, &LoadOptions::default())?;
    assert_eq!(report.newly_initialized, vec!["bn1.num_batches_tracked"]);
    // Weights alone: the architecture must be named, the class count comes from the head.
    std::fs::remove_file(dir.join("config.json")).unwrap();
    assert!(ResNet::from_pretrained(&dir, &LoadOptions::default()).is_err());
    let e = ResNet::from_pretrained(
        &dir,
        &LoadOptions {
            architecture: Some("resnet50".into()),
            ..LoadOptions::default()
        },
    )
    .err()
    .unwrap()
    .to_string();
    // The standard resnet50 is wider than this tiny one.
    assert!(
        e.contains("conv1.weight") && e.contains("[64, 3, 7, 7]"),
        "{e}"
    );
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

/// Per-channel mean and biased variance of `[N, C, H, W]` values, computed on the host.
fn channel_stats(t: &Tensor) -> (Vec<f64>, Vec<f64>, usize) {
    let (n, c, h, w) = t.dims4().unwrap();
    let v: Vec<f64> = t.flatten_all().unwrap().to_vec1().unwrap();
    let count = n * h * w;
    let mut mean = vec![0.0; c];
    let mut var = vec![0.0; c];
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| v[(i * c + ch) * h * w..(i * c + ch + 1) * h * w].to_vec())
            .collect();
        mean[ch] = vals.iter().sum::<f64>() / count as f64;
        var[ch] = vals.iter().map(|x| (x - mean[ch]).powi(2)).sum::<f64>() / count as f64;
    }
    (mean, var, count)
}

#[test]
fn one_training_step_updates_running_stats_by_pytorchs_formula() -> Result<()> {
    let cfg = tiny_config(BlockKind::Basic);
    let dir = tmpdir("stats");
    write_checkpoint(&dir, &cfg, &random_weights(&cfg, 4), Naming::Torchvision);
    let opts = LoadOptions {
        dtype: DType::F64,
        ..LoadOptions::default()
    };
    let (model, _) = ResNet::from_pretrained(&dir, &opts)?;
    let store = model.store();
    let x = images(3, 3, 32, 32, 5, DType::F64);
    let before = snapshot(store);
    // Eval forwards touch nothing.
    model.forward_t(&x, false)?;
    assert_eq!(snapshot(store), before);

    // The stem BatchNorm sees conv1(x), computed here independently.
    let conv1 = x.conv2d(&store.get("conv1.weight")?, 3, 2, 1, 1)?;
    let (mean, var, count) = channel_stats(&conv1);
    let old_mean: Vec<f64> = store.get("bn1.running_mean")?.to_vec1()?;
    let old_var: Vec<f64> = store.get("bn1.running_var")?.to_vec1()?;

    let groups = GroupBuilder::new(0.1, 0.0).build(store)?;
    let mut opt = OptimizerConfig::Sgd(Sgd::default()).build(groups)?;
    let targets = Tensor::new(&[0u32, 2, 1], &Device::Cpu)?;
    let loss = model.loss(&model.forward_t(&x, true)?, &targets, 0.1)?;
    opt.step(store, &Grads::from_backward(store, &loss.backward()?))?;

    let new_mean: Vec<f64> = store.get("bn1.running_mean")?.to_vec1()?;
    let new_var: Vec<f64> = store.get("bn1.running_var")?.to_vec1()?;
    for c in 0..cfg.stem_width {
        let want_mean = 0.9 * old_mean[c] + 0.1 * mean[c];
        let want_var = 0.9 * old_var[c] + 0.1 * var[c] * count as f64 / (count - 1) as f64;
        assert!((new_mean[c] - want_mean).abs() < 1e-12, "mean {c}");
        assert!((new_var[c] - want_var).abs() < 1e-12, "var {c}");
    }
    for bn in model.batch_norms() {
        let n = store.get(&format!("{}.num_batches_tracked", bn.prefix()))?;
        assert_eq!(n.to_scalar::<i64>()?, 8, "{}", bn.prefix());
    }
    // Training normalised with batch statistics: after the update, eval logits differ from a
    // train-mode forward of the same weights.
    assert!(max_abs_diff(&model.forward_t(&x, true)?, &model.forward_t(&x, false)?) > 1e-3);
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn whole_model_gradients_match_finite_differences() -> Result<()> {
    for block in BLOCKS {
        let mut cfg = tiny_config(block);
        cfg.layers = [1, 1, 1, 1];
        cfg.channels = [2, 3, 2, 2];
        cfg.stem_width = 3;
        let dir = tmpdir(&format!("grad-{block:?}"));
        write_checkpoint(&dir, &cfg, &random_weights(&cfg, 11), Naming::Torchvision);
        let opts = LoadOptions {
            dtype: DType::F64,
            ..LoadOptions::default()
        };
        let (model, _) = ResNet::from_pretrained(&dir, &opts)?;
        let store = model.store();
        // 16×16 → conv1 8×8 → max-pool 4×4 → stages 4, 2, 1, 1: BN on 3 values per channel.
        let x = candle_core::Var::from_tensor(&images(3, 3, 16, 16, 12, DType::F64))?;
        let targets = Tensor::new(&[2u32, 0, 1], &Device::Cpu)?;
        let loss_of = |xs: &Tensor| -> Result<Tensor> {
            model.loss(&model.forward_t(xs, true)?, &targets, 0.0)
        };
        let grads = loss_of(x.as_tensor())?.backward()?;
        let last_bn = match block {
            BlockKind::Basic => "layer4.0.bn2",
            BlockKind::Bottleneck => "layer4.0.bn3",
        };
        let h = 1e-5;
        let (mut checked, mut nonzero) = (0, 0);
        for name in [
            "conv1.weight".to_string(),
            "bn1.weight".into(),
            "bn1.bias".into(),
            "layer1.0.conv1.weight".into(),
            "layer2.0.downsample.0.weight".into(),
            "layer2.0.downsample.1.weight".into(),
            "layer3.0.conv2.weight".into(),
            format!("{last_bn}.weight"),
            format!("{last_bn}.bias"),
            "fc.weight".into(),
            "fc.bias".into(),
        ] {
            let var = store.var(&name)?;
            let g: Vec<f64> = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("no gradient for {name}"))
                .flatten_all()?
                .to_vec1()?;
            let base = var.as_tensor().copy()?;
            let n = g.len();
            for i in [0, n / 2, n - 1] {
                let bump = |d: f64| -> Result<f64> {
                    let mut v: Vec<f64> = base.flatten_all()?.to_vec1()?;
                    v[i] += d;
                    store.set(&name, &Tensor::from_vec(v, base.shape(), &Device::Cpu)?)?;
                    Ok(loss_of(x.as_tensor())?.to_scalar::<f64>()?)
                };
                let num = (bump(h)? - bump(-h)?) / (2.0 * h);
                store.set(&name, &base)?;
                assert!(
                    (num - g[i]).abs() <= 1e-6 + 1e-4 * num.abs(),
                    "{block:?} {name}[{i}]: analytic {} vs numeric {num}",
                    g[i]
                );
                checked += 1;
                nonzero += usize::from(g[i].abs() > 1e-6);
            }
        }
        // Not a vacuous check: most sampled gradients are far from zero.
        assert!(nonzero * 3 > checked * 2, "{nonzero} of {checked} non-zero");
        // The input gradient goes back through every layer, the stem max-pool included.
        let gx: Vec<f64> = grads.get(x.as_tensor()).unwrap().flatten_all()?.to_vec1()?;
        let base: Vec<f64> = x.as_tensor().flatten_all()?.to_vec1()?;
        for i in (0..gx.len()).step_by(97) {
            let at = |d: f64| -> Result<f64> {
                let mut v = base.clone();
                v[i] += d;
                let xs = Tensor::from_vec(v, x.shape(), &Device::Cpu)?;
                Ok(loss_of(&xs)?.to_scalar::<f64>()?)
            };
            let num = (at(h)? - at(-h)?) / (2.0 * h);
            assert!(
                (num - gx[i]).abs() <= 1e-6 + 1e-4 * num.abs(),
                "{block:?} x[{i}]: analytic {} vs numeric {num}",
                gx[i]
            );
            checked += 1;
        }
        assert!(gx.iter().filter(|v| **v != 0.0).count() > gx.len() / 4);
        assert!(checked > 40);
        std::fs::remove_dir_all(dir).ok();
    }
    Ok(())
}

/// Runs `steps` SGD-with-momentum training steps.
fn train(model: &ResNet, steps: usize) -> Result<()> {
    let groups = GroupBuilder::new(0.05, 1e-4).build(model.store())?;
    let mut opt = OptimizerConfig::Sgd(Sgd {
        momentum: 0.9,
        ..Sgd::default()
    })
    .build(groups)?;
    let targets = Tensor::new(&[0u32, 1, 2, 1], &Device::Cpu)?;
    for s in 0..steps {
        let x = images(4, 3, 32, 32, 100 + s as u64, DType::F32);
        let loss = model.loss(&model.forward_t(&x, true)?, &targets, 0.0)?;
        opt.step(
            model.store(),
            &Grads::from_backward(model.store(), &loss.backward()?),
        )?;
    }
    Ok(())
}

#[test]
fn frozen_stage_with_frozen_batch_norm_keeps_weights_and_statistics() -> Result<()> {
    let cfg = tiny_config(BlockKind::Bottleneck);
    let dir = tmpdir("freeze");
    write_checkpoint(&dir, &cfg, &random_weights(&cfg, 6), Naming::Transformers);
    let (model, _) = ResNet::from_pretrained(&dir, &LoadOptions::default())?;
    // Patterns address torchvision names even though the checkpoint used transformers'.
    FreezeSpec::new().freeze("layer1.*")?.apply(model.store())?;
    assert_eq!(
        model.set_bn_mode(BnMode::FollowWeights, "*")?,
        model.batch_norms().len()
    );
    let before = snapshot(model.store());
    train(&model, 3)?;
    let after = snapshot(model.store());
    for ((name, a), (_, b)) in before.iter().zip(&after) {
        if name.starts_with("layer1.") {
            assert_eq!(a, b, "{name} changed although frozen");
        } else if name.ends_with("num_batches_tracked") {
            assert_eq!(b[0] - a[0], 3.0, "{name}");
        } else {
            assert_ne!(a, b, "{name} did not change");
        }
    }

    // Train mode (the default) for the same frozen stage: weights stay, statistics move.
    let (model, _) = ResNet::from_pretrained(&dir, &LoadOptions::default())?;
    FreezeSpec::new().freeze("layer1.*")?.apply(model.store())?;
    let before = snapshot(model.store());
    train(&model, 1)?;
    for ((name, a), (_, b)) in before.iter().zip(&snapshot(model.store())) {
        if name.starts_with("layer1.") && name.contains("running_") {
            assert_ne!(a, b, "{name}");
        } else if name.starts_with("layer1.") && !name.ends_with("num_batches_tracked") {
            assert_eq!(a, b, "{name}");
        }
    }

    // Explicit frozen statistics for the whole backbone (trainable weights): no buffer moves.
    let opts = LoadOptions {
        bn_mode: BnMode::Frozen,
        ..LoadOptions::default()
    };
    let (model, _) = ResNet::from_pretrained(&dir, &opts)?;
    let before = snapshot(model.store());
    train(&model, 1)?;
    for ((name, a), (_, b)) in before.iter().zip(&snapshot(model.store())) {
        if name.contains("running_") || name.ends_with("num_batches_tracked") {
            assert_eq!(a, b, "{name}");
        } else {
            assert_ne!(a, b, "{name}");
        }
    }
    // layer2: two bottlenecks of three BatchNorms, plus the downsample's.
    assert_eq!(model.set_bn_mode(BnMode::Train, "layer2.*")?, 7);
    assert!(model.set_bn_mode(BnMode::Train, "layer9.*").is_err());
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}

#[test]
fn dropout_before_fc_is_live_in_training_only_and_seedable() -> Result<()> {
    let cfg = tiny_config(BlockKind::Basic);
    let dir = tmpdir("dropout");
    write_checkpoint(&dir, &cfg, &random_weights(&cfg, 8), Naming::Torchvision);
    let x = images(2, 3, 32, 32, 1, DType::F32);
    let (plain, _) = ResNet::from_pretrained(&dir, &LoadOptions::default())?;
    let plain_eval = plain.forward_t(&x, false)?;
    // Without dropout, training-mode forwards are deterministic (batch statistics).
    assert_eq!(
        max_abs_diff(&plain.forward_t(&x, true)?, &plain.forward_t(&x, true)?),
        0.0
    );
    let opts = LoadOptions {
        drop_rate: Some(0.5),
        ..LoadOptions::default()
    };
    let (model, _) = ResNet::from_pretrained(&dir, &opts)?;
    assert_eq!(max_abs_diff(&model.forward_t(&x, false)?, &plain_eval), 0.0);
    let state = model.rng_state();
    let a = model.forward_t(&x, true)?;
    let b = model.forward_t(&x, true)?;
    assert!(max_abs_diff(&a, &b) > 1e-4);
    model.set_rng_state(state);
    assert_eq!(max_abs_diff(&model.forward_t(&x, true)?, &a), 0.0);
    // Wrong channel count is a clear error.
    let e = model
        .forward_t(&images(1, 1, 32, 32, 1, DType::F32), false)
        .err()
        .unwrap();
    assert!(e.to_string().contains("[N, 3, H, W]"), "{e}");
    std::fs::remove_dir_all(dir).ok();
    Ok(())
}
