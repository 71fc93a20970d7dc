//! Matrix-product FLOPs of one training step, counted analytically (2 FLOPs per
//! multiply-add; element-wise work, norms, softmax and the optimizer are not counted).
//!
//! - forward: every linear layer `[n, in] → [n, out]` costs `2·n·in·out`; attention costs
//!   `2·B·heads·T²·d` for `q kᵀ` and again for `P v`; a convolution costs
//!   `2·N·H_out·W_out·C_out·C_in·k_h·k_w` (its output size follows from the stem/stage
//!   strides: each stage halves the resolution, with ceiling rounding as the paddings give).
//! - backward: a trainable weight adds its weight gradient (the forward's cost again); an
//!   op adds its input gradient (the forward's cost again) when something below it trains —
//!   in `last2`/`frozen` modes the layers under the lowest trainable one run forward only,
//!   and the lowest trainable layer's input gets no gradient. Attention's backward is four
//!   products (twice its forward). The fused attention's recomputation of `q kᵀ` in the
//!   backward is not counted: the figure is the algorithm's work, the same for both sides.

use super::spec::Mode;
use crate::bert::BertConfig;
use finetune_core::ParamStore;

/// FLOPs of one BERT training step at `batch × seq` in `mode`.
pub fn bert_step_flops(c: &BertConfig, batch: usize, seq: usize, mode: Mode) -> f64 {
    let (b, t) = (batch as f64, seq as f64);
    let n = b * t;
    let (h, i) = (c.hidden_size as f64, c.intermediate_size as f64);
    let heads = c.num_attention_heads as f64;
    let d = h / heads;
    let layers = c.num_hidden_layers;
    let lin = |rows: f64, a: f64, o: f64| 2.0 * rows * a * o;
    let attn = 2.0 * (2.0 * b * heads * t * t * d);
    let qkv = 3.0 * lin(n, h, h);
    let rest = lin(n, h, h) + lin(n, h, i) + lin(n, i, h);
    let labels = c.classifier.num_labels() as f64;
    let head = lin(b, h, h) + lin(b, h, labels);
    // Index of the lowest trainable encoder layer (`layers` = none trains).
    let first = match mode {
        Mode::Full | Mode::Lora => 0,
        Mode::Last2 => layers.saturating_sub(2),
        Mode::Frozen => layers,
    };
    let mut total = layers as f64 * (qkv + attn + rest) + head;
    for l in first..layers {
        // Weight gradients of all six linear layers (LoRA: frozen weights get none; the
        // adapters' own products, rank r, are not counted).
        if mode != Mode::Lora {
            total += qkv + rest;
        }
        // Input gradients: attention's four products, the three linear layers above it, and
        // the q/k/v projections' input only when the embeddings (full mode) or a lower
        // layer train.
        total += 2.0 * attn + rest;
        if l > first || mode == Mode::Full {
            total += qkv;
        }
    }
    // Head: weight gradients and the classifier's input gradient (the pooler always trains);
    // the pooler's input gradient when the encoder trains.
    total += head + lin(b, h, labels);
    if first < layers {
        total += lin(b, h, h);
    }
    total
}

/// FLOPs of one ViT training step on `batch` images: the encoder's as a BERT's over the
/// `1 + patches` tokens (without BERT's pooler), plus the patch embedding (one linear layer
/// over the unfolded patches: its forward, and its weight gradient when it trains).
pub fn vit_step_flops(c: &finetune_vit::ViTConfig, batch: usize, mode: Mode) -> f64 {
    let bert = BertConfig {
        hidden_size: c.hidden_size,
        num_hidden_layers: c.num_hidden_layers,
        num_attention_heads: c.num_attention_heads,
        intermediate_size: c.intermediate_size,
        classifier: c.classifier.clone(),
        ..BertConfig::default()
    };
    let encoder = bert_step_flops(&bert, batch, c.tokens(), mode);
    let (b, h) = (batch as f64, c.hidden_size as f64);
    let pooler = 2.0 * b * h * h;
    let pooler_total = 2.0 * pooler + if mode == Mode::Frozen { 0.0 } else { pooler };
    let patches = 2.0 * b * (c.grid() * c.grid()) as f64 * c.patch_values() as f64 * h;
    let patch_total = if mode == Mode::Full {
        2.0 * patches
    } else {
        patches
    };
    encoder - pooler_total + patch_total
}

/// FLOPs of one ResNet training step on `batch` images of `size × size`, from the
/// convolution and `fc` weights in `store` and their trainable flags.
pub fn resnet_step_flops(store: &ParamStore, batch: usize, size: usize, _mode: Mode) -> f64 {
    let infos = store.infos();
    let bottleneck = infos.iter().any(|i| i.name.ends_with(".conv3.weight"));
    let half = |r: usize| r.div_ceil(2);
    // Resolution after the stem conv, then after the max-pool (= stage 1), then per stage.
    let stem = half(size);
    let mut stage_res = [0usize; 5];
    stage_res[1] = half(stem);
    for s in 2..=4 {
        stage_res[s] = half(stage_res[s - 1]);
    }
    // The lowest stage holding a trainable parameter (5: none; 0: the stem).
    let stage_of = |name: &str| -> usize {
        name.strip_prefix("layer")
            .and_then(|r| r.chars().next())
            .and_then(|c| c.to_digit(10))
            .map_or(if name.starts_with("fc.") { 5 } else { 0 }, |d| d as usize)
    };
    let lowest_trainable = infos
        .iter()
        .filter(|i| i.trainable)
        .map(|i| stage_of(&i.name))
        .min()
        .unwrap_or(6);
    let n = batch as f64;
    let mut total = 0.0;
    for info in &infos {
        let stage = stage_of(&info.name);
        let cost = match info.shape.as_slice() {
            [c_out, c_in, kh, kw] if info.name.ends_with("weight") => {
                let res = if stage == 0 {
                    stem
                } else if bottleneck && stage >= 2 && info.name.ends_with(".0.conv1.weight") {
                    // The bottleneck's stride sits on its 3×3 conv: conv1 keeps the
                    // previous stage's resolution.
                    stage_res[stage - 1]
                } else {
                    stage_res[stage]
                };
                2.0 * n * (res * res) as f64 * (*c_out * *c_in * *kh * *kw) as f64
            }
            [out, inp] if info.name == "fc.weight" => 2.0 * n * (*out * *inp) as f64,
            _ => continue,
        };
        total += cost;
        if info.trainable {
            total += cost; // weight gradient
        }
        // Input gradient: whenever something below this op trains. The stem's input is the
        // image; a stage's first block reads the frozen stage below it.
        let reads_stage_input =
            info.name.contains(".0.conv1.") || info.name.contains(".0.downsample.");
        let below_trains = if stage == 0 {
            false
        } else if reads_stage_input || stage == 5 {
            lowest_trainable < stage
        } else {
            lowest_trainable <= stage
        };
        if below_trains {
            total += cost;
        }
    }
    total
}
