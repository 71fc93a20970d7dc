//! What kind of layer a module is, as LoRA needs to know it: its shapes and geometry.

/// A layer built over the store, registered under its module name (`bert.encoder.layer.0.
/// attention.self.query`, `layer4.0.conv1`) so LoRA can target it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModuleKind {
    /// `nn.Linear(in_features, out_features)`: weight `[out, in]`.
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
    },
    /// `nn.Conv2d` without groups or dilation: weight `[out, in, k, k]`.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Square kernel side.
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
    },
}

impl ModuleKind {
    /// The shapes of `lora_A` and `lora_B` for rank `r` (PEFT's: `[r, in]` / `[out, r]`, or
    /// `[r, in, k, k]` / `[out, r, 1, 1]` for a conv).
    pub fn adapter_shapes(&self, r: usize) -> (Vec<usize>, Vec<usize>) {
        match *self {
            ModuleKind::Linear {
                in_features,
                out_features,
            } => (vec![r, in_features], vec![out_features, r]),
            ModuleKind::Conv2d {
                in_channels,
                out_channels,
                kernel,
                ..
            } => (
                vec![r, in_channels, kernel, kernel],
                vec![out_channels, r, 1, 1],
            ),
        }
    }

    /// `lora_A`'s fan-in: what its kaiming-uniform bound divides by.
    pub fn fan_in(&self) -> usize {
        match *self {
            ModuleKind::Linear { in_features, .. } => in_features,
            ModuleKind::Conv2d {
                in_channels,
                kernel,
                ..
            } => in_channels * kernel * kernel,
        }
    }

    /// Whether this is a linear layer (what `all-linear` selects).
    pub fn is_linear(&self) -> bool {
        matches!(self, ModuleKind::Linear { .. })
    }
}
