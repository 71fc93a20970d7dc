//! Tensor names. The model's own names are torchvision's (`conv1`, `bn1`,
//! `layer{1-4}.{i}.{conv,bn}{1,2,3}`, `layer{i}.0.downsample.{0,1}`, `fc`), which timm uses too:
//! what freeze patterns address and what export writes. transformers' `ResNetForImageClassification`
//! (and bare `ResNetModel`) checkpoints are mapped by [`canonical_name`]:
//!
//! | transformers | torchvision |
//! |---|---|
//! | `resnet.embedder.embedder.convolution.weight` | `conv1.weight` |
//! | `resnet.embedder.embedder.normalization.*` | `bn1.*` |
//! | `resnet.encoder.stages.S.layers.L.layer.K.convolution.weight` | `layer{S+1}.L.conv{K+1}.weight` |
//! | `resnet.encoder.stages.S.layers.L.layer.K.normalization.*` | `layer{S+1}.L.bn{K+1}.*` |
//! | `resnet.encoder.stages.S.layers.L.shortcut.convolution.weight` | `layer{S+1}.L.downsample.0.weight` |
//! | `resnet.encoder.stages.S.layers.L.shortcut.normalization.*` | `layer{S+1}.L.downsample.1.*` |
//! | `classifier.1.{weight,bias}` | `fc.{weight,bias}` |

use crate::config::{BlockKind, ResNetConfig};
use finetune_core::TensorKind;

/// Where a tensor comes from on load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Convolutions and BatchNorm parameters/statistics: must be in the checkpoint.
    Backbone,
    /// `num_batches_tracked`: zero when absent (checkpoints older than PyTorch 0.4.1).
    Counter,
    /// `fc`: loaded when present with the right shape, else initialised.
    Head,
}

/// One tensor of the model.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// torchvision's name (`layer1.0.conv1.weight`).
    pub name: String,
    /// Its shape (`[c_out, c_in, k, k]` for a conv, `[c]` for BatchNorm tensors, `[]` for
    /// `num_batches_tracked`).
    pub shape: Vec<usize>,
    /// Parameter (trainable) or buffer (BatchNorm running statistics and counter).
    pub kind: TensorKind,
    /// What loading does when the checkpoint lacks it.
    pub role: Role,
}

/// The checkpoint naming a file uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Naming {
    /// torchvision / timm (`conv1`, `layer1.0.bn1`, `fc`).
    Torchvision,
    /// transformers (`resnet.embedder…`, `resnet.encoder.stages…`, `classifier.1`).
    Transformers,
}

impl Naming {
    /// `torchvision` or `transformers`, for reports (also the `Display` form).
    pub fn as_str(self) -> &'static str {
        match self {
            Naming::Torchvision => "torchvision",
            Naming::Transformers => "transformers",
        }
    }
}

impl std::fmt::Display for Naming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The BatchNorm tensors of `{prefix}` with `c` channels, in PyTorch's state-dict order.
fn push_bn(out: &mut Vec<Expected>, prefix: &str, c: usize) {
    for (leaf, kind) in [
        ("weight", TensorKind::Parameter),
        ("bias", TensorKind::Parameter),
        ("running_mean", TensorKind::Buffer),
        ("running_var", TensorKind::Buffer),
    ] {
        out.push(Expected {
            name: format!("{prefix}.{leaf}"),
            shape: vec![c],
            kind,
            role: Role::Backbone,
        });
    }
    out.push(Expected {
        name: format!("{prefix}.num_batches_tracked"),
        shape: vec![],
        kind: TensorKind::Buffer,
        role: Role::Counter,
    });
}

fn push_conv(out: &mut Vec<Expected>, name: String, c_out: usize, c_in: usize, k: usize) {
    out.push(Expected {
        name,
        shape: vec![c_out, c_in, k, k],
        kind: TensorKind::Parameter,
        role: Role::Backbone,
    });
}

/// Geometry of one residual block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockShape {
    /// Channels entering the block.
    pub c_in: usize,
    /// The stage's width (torchvision's `planes`): the inner convs' channels of a bottleneck,
    /// every conv's of a basic block.
    pub width: usize,
    /// Channels leaving the block: `width × expansion`.
    pub c_out: usize,
    /// 2 on the first block of stages 2-4 (on the 3×3 conv, and the shortcut), else 1.
    pub stride: usize,
    /// Whether the shortcut is a 1×1 conv + BatchNorm projection (`downsample.{0,1}`) rather
    /// than the identity: the stride or the channel count changes.
    pub downsample: bool,
}

/// Every block's geometry, stage by stage, as torchvision's `_make_layer`.
pub fn block_shapes(c: &ResNetConfig) -> Vec<Vec<BlockShape>> {
    let e = c.block.expansion();
    let mut c_in = c.stem_width;
    let mut stages = Vec::new();
    for (s, (&n, &width)) in c.layers.iter().zip(&c.channels).enumerate() {
        let c_out = width * e;
        let mut blocks = Vec::new();
        for i in 0..n {
            let stride = if i == 0 && s > 0 { 2 } else { 1 };
            blocks.push(BlockShape {
                c_in,
                width,
                c_out,
                stride,
                downsample: stride != 1 || c_in != c_out,
            });
            c_in = c_out;
        }
        stages.push(blocks);
    }
    stages
}

/// The model's tensors in torchvision's state-dict order, with shapes, kinds and roles.
pub fn expected_tensors(c: &ResNetConfig) -> Vec<Expected> {
    let mut out = Vec::new();
    push_conv(&mut out, "conv1.weight".into(), c.stem_width, c.in_chans, 7);
    push_bn(&mut out, "bn1", c.stem_width);
    for (s, blocks) in block_shapes(c).iter().enumerate() {
        for (i, b) in blocks.iter().enumerate() {
            let p = format!("layer{}.{i}", s + 1);
            let convs: Vec<(usize, usize, usize)> = match c.block {
                BlockKind::Basic => vec![(b.c_out, b.c_in, 3), (b.c_out, b.c_out, 3)],
                BlockKind::Bottleneck => vec![
                    (b.width, b.c_in, 1),
                    (b.width, b.width, 3),
                    (b.c_out, b.width, 1),
                ],
            };
            for (k, (co, ci, ks)) in convs.into_iter().enumerate() {
                push_conv(&mut out, format!("{p}.conv{}.weight", k + 1), co, ci, ks);
                push_bn(&mut out, &format!("{p}.bn{}", k + 1), co);
            }
            if b.downsample {
                push_conv(
                    &mut out,
                    format!("{p}.downsample.0.weight"),
                    b.c_out,
                    b.c_in,
                    1,
                );
                push_bn(&mut out, &format!("{p}.downsample.1"), b.c_out);
            }
        }
    }
    for (leaf, shape) in [
        ("weight", vec![c.num_classes, c.num_features()]),
        ("bias", vec![c.num_classes]),
    ] {
        out.push(Expected {
            name: format!("fc.{leaf}"),
            shape,
            kind: TensorKind::Parameter,
            role: Role::Head,
        });
    }
    out
}

/// The naming a checkpoint tensor name belongs to.
pub fn naming_of(name: &str) -> Naming {
    let body = name.strip_prefix("resnet.").unwrap_or(name);
    if name.starts_with("resnet.")
        || body.starts_with("embedder.")
        || body.starts_with("encoder.stages.")
        || name.starts_with("classifier.")
    {
        Naming::Transformers
    } else {
        Naming::Torchvision
    }
}

/// The model name a checkpoint tensor maps to. torchvision names map to themselves (names the
/// model does not have then end up unused); transformers names are translated, or `None` when
/// they have no torchvision counterpart.
pub fn canonical_name(name: &str) -> Option<String> {
    if naming_of(name) == Naming::Torchvision {
        return Some(name.to_string());
    }
    if let Some(leaf) = name.strip_prefix("classifier.1.") {
        return Some(format!("fc.{leaf}"));
    }
    let body = name.strip_prefix("resnet.").unwrap_or(name);
    if let Some(rest) = body.strip_prefix("embedder.embedder.") {
        return conv_or_bn(rest, "conv1", "bn1");
    }
    let rest = body.strip_prefix("encoder.stages.")?;
    let (stage, rest) = split_index(rest)?;
    let rest = rest.strip_prefix("layers.")?;
    let (block, rest) = split_index(rest)?;
    let p = format!("layer{}.{block}", stage + 1);
    if let Some(rest) = rest.strip_prefix("shortcut.") {
        return conv_or_bn(
            rest,
            &format!("{p}.downsample.0"),
            &format!("{p}.downsample.1"),
        );
    }
    let rest = rest.strip_prefix("layer.")?;
    let (k, rest) = split_index(rest)?;
    conv_or_bn(
        rest,
        &format!("{p}.conv{}", k + 1),
        &format!("{p}.bn{}", k + 1),
    )
}

/// `convolution.weight` → `{conv}.weight`, `normalization.X` → `{bn}.X`.
fn conv_or_bn(rest: &str, conv: &str, bn: &str) -> Option<String> {
    if rest == "convolution.weight" {
        Some(format!("{conv}.weight"))
    } else {
        rest.strip_prefix("normalization.")
            .map(|leaf| format!("{bn}.{leaf}"))
    }
}

/// `"12.rest"` → `(12, "rest")`.
fn split_index(s: &str) -> Option<(usize, &str)> {
    let (i, rest) = s.split_once('.')?;
    Some((i.parse().ok()?, rest))
}

/// The transformers name of a model tensor (inverse of [`canonical_name`]), for messages and
/// for freeze patterns written in that naming.
pub fn transformers_name(name: &str) -> Option<String> {
    if let Some(leaf) = name.strip_prefix("fc.") {
        return Some(format!("classifier.1.{leaf}"));
    }
    if let Some(leaf) = name.strip_prefix("conv1.") {
        return Some(format!("resnet.embedder.embedder.convolution.{leaf}"));
    }
    if let Some(leaf) = name.strip_prefix("bn1.") {
        return Some(format!("resnet.embedder.embedder.normalization.{leaf}"));
    }
    let rest = name.strip_prefix("layer")?;
    let (stage, rest) = split_index(rest)?;
    let (block, rest) = split_index(rest)?;
    let p = format!(
        "resnet.encoder.stages.{}.layers.{block}",
        stage.checked_sub(1)?
    );
    let (module, leaf) = rest.split_once('.')?;
    let mapped = match module {
        "downsample" => {
            let (k, leaf) = split_index(leaf)?;
            let m = if k == 0 {
                "convolution"
            } else {
                "normalization"
            };
            format!("{p}.shortcut.{m}.{leaf}")
        }
        m => {
            let (kind, k) = if let Some(k) = m.strip_prefix("conv") {
                ("convolution", k)
            } else {
                ("normalization", m.strip_prefix("bn")?)
            };
            let k: usize = k.parse().ok()?;
            format!("{p}.layer.{}.{kind}.{leaf}", k.checked_sub(1)?)
        }
    };
    Some(mapped)
}

/// The head's parameters: `fc.*`.
pub const HEAD: [&str; 1] = ["fc.*"];

/// How deep a parameter sits, for layer-wise LR decay and gradual unfreezing: the stem
/// (`conv1.*`, `bn1.*`) 0, stage `layerN.*` N, the head `None`.
pub fn layer_depth(name: &str) -> Option<usize> {
    if name.starts_with("conv1.") || name.starts_with("bn1.") {
        return Some(0);
    }
    let first = name.split('.').next()?;
    first.strip_prefix("layer")?.parse().ok()
}

/// The head and every parameter's depth ([`HEAD`], [`layer_depth`]).
pub fn layout() -> finetune_core::ParamLayout {
    finetune_core::ParamLayout::new(HEAD, layer_depth)
        .with_alias(transformers_name)
        .with_lora_targets(LORA_TARGETS)
}

/// The layers LoRA adapts by default: the convolutions of the last stage's blocks (PEFT has
/// no default for timm's ResNets; the last stage is where a new task's features form).
pub const LORA_TARGETS: [&str; 1] = ["layer4.*.conv*"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transformers_names_map_to_torchvision_and_back() {
        for (hf, tv) in [
            (
                "resnet.embedder.embedder.convolution.weight",
                "conv1.weight",
            ),
            (
                "resnet.embedder.embedder.normalization.running_var",
                "bn1.running_var",
            ),
            (
                "resnet.encoder.stages.3.layers.1.layer.1.normalization.num_batches_tracked",
                "layer4.1.bn2.num_batches_tracked",
            ),
            (
                "resnet.encoder.stages.0.layers.0.layer.2.convolution.weight",
                "layer1.0.conv3.weight",
            ),
            (
                "resnet.encoder.stages.1.layers.0.shortcut.convolution.weight",
                "layer2.0.downsample.0.weight",
            ),
            (
                "resnet.encoder.stages.1.layers.0.shortcut.normalization.bias",
                "layer2.0.downsample.1.bias",
            ),
            ("classifier.1.weight", "fc.weight"),
        ] {
            assert_eq!(canonical_name(hf).as_deref(), Some(tv), "{hf}");
            assert_eq!(transformers_name(tv).as_deref(), Some(hf), "{tv}");
            assert_eq!(naming_of(hf), Naming::Transformers);
            assert_eq!(naming_of(tv), Naming::Torchvision);
        }
        // A bare ResNetModel checkpoint.
        assert_eq!(
            canonical_name("encoder.stages.2.layers.4.layer.0.convolution.weight").as_deref(),
            Some("layer3.4.conv1.weight")
        );
        assert_eq!(canonical_name("resnet.embedder.pooler.x"), None);
        assert_eq!(canonical_name("classifier.0.weight"), None);
    }

    #[test]
    fn resnet50_has_torchvisions_tensor_count_and_shapes() {
        let c = ResNetConfig::from_name("resnet50", 1000).unwrap();
        let t = expected_tensors(&c);
        // torchvision resnet50().state_dict() has 320 entries (53 convs, 53 BNs × 5, fc × 2).
        assert_eq!(t.len(), 320);
        let params: usize = t
            .iter()
            .filter(|e| e.kind == TensorKind::Parameter)
            .map(|e| e.shape.iter().product::<usize>())
            .sum();
        assert_eq!(params, 25_557_032);
        let find = |n: &str| t.iter().find(|e| e.name == n).unwrap().shape.clone();
        assert_eq!(find("layer2.0.conv2.weight"), vec![128, 128, 3, 3]);
        assert_eq!(find("layer2.0.downsample.0.weight"), vec![512, 256, 1, 1]);
        assert_eq!(find("layer1.0.downsample.1.running_var"), vec![256]);
        assert_eq!(find("fc.weight"), vec![1000, 2048]);
        let c = ResNetConfig::from_name("resnet18", 1000).unwrap();
        let t = expected_tensors(&c);
        assert_eq!(t.len(), 122);
        let params: usize = t
            .iter()
            .filter(|e| e.kind == TensorKind::Parameter)
            .map(|e| e.shape.iter().product::<usize>())
            .sum();
        assert_eq!(params, 11_689_512);
        assert!(!t.iter().any(|e| e.name.starts_with("layer1.0.downsample")));
    }
}
