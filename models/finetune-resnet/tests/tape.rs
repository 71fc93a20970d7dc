//! A training step's recorded backward (`finetune_kernels::tape`, as the learner and the bench
//! run it) gives every parameter the gradient candle's own backward gives, bit for bit, and
//! runs wholly on the tape below the ResNet's cut: no part of it is handed back to candle.

mod common;

use candle_core::{DType, Device, Tensor};
use common::*;
use finetune_core::{FreezeSpec, Result};
use finetune_kernels::tape::{self, Recording};
use finetune_resnet::{BlockKind, ResNet};

fn loss(model: &ResNet, x: &Tensor) -> Result<Tensor> {
    let targets = Tensor::new(&[2u32, 0, 1], &Device::Cpu)?;
    model.loss(&model.forward_t(x, true)?, &targets, 0.1)
}

#[test]
fn recorded_and_candle_backward_agree_on_every_parameter() -> Result<()> {
    for (block, frozen) in [
        (BlockKind::Basic, false),
        (BlockKind::Bottleneck, false),
        (BlockKind::Basic, true),
    ] {
        let what = format!("{block:?}, frozen stem and layer1 {frozen}");
        let model = ResNet::init(tiny_config(block), DType::F32, &Device::Cpu, 5)?;
        let store = model.store();
        if frozen {
            FreezeSpec::from_patterns(&["conv1.*", "bn1.*", "layer1.*"], &[] as &[&str])?
                .apply(store)?;
        }
        let x = images(3, 3, 32, 32, 6, DType::F32);
        let reference = loss(&model, &x)?.backward()?;
        let recording = Recording::start();
        let l = loss(&model, &x)?;
        let (grads, report) = recording.backward_report(&l)?;
        assert!(!report.all_candle, "{what}: {report:?}");
        assert_eq!(report.handed_to_candle, 0, "{what}: {report:?}");
        // At least conv, BN and the residual per block ran on the tape.
        assert!(report.tape_nodes >= 3 * 4, "{what}: {report:?}");
        let cmp = tape::compare(store.trainable_vars(), &reference, &grads)?;
        assert!(cmp.differing.is_empty(), "{what}: {:?}", cmp.differing);
        assert!(cmp.identical > 10, "{what}: {cmp:?}");
        if frozen {
            for name in ["conv1.weight", "layer1.0.conv1.weight"] {
                assert!(
                    grads.get(store.var(name)?.as_tensor()).is_none(),
                    "{what}: {name}"
                );
            }
        }
    }
    Ok(())
}
