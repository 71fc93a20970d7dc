#!/usr/bin/env python3
"""Writes the tiny ViT checkpoints under tests/fixtures/ that the ViT tests compare against:
random weights with unusual sizes (hidden 36 with 3 heads, 20×20 images in 4×4 patches, an
intermediate width of 50), in transformers' naming (`vit`) and timm's (`vit-timm`, fused
`qkv`), with the eval-mode logits each library computed for fixed pixel values, and for
transformers also at another input size through `interpolate_pos_encoding`; and a PEFT LoRA
adapter for the first (`vit-lora`: r 4 on `q_proj`/`v_proj`, the names transformers 5's ViT
modules carry, non-zero B, a 2-class head) with the logits PEFT computed.

Run once in a throw-away virtual environment with torch, transformers, timm, peft and
safetensors installed:  python scripts/make-vit-fixtures.py [OUT_DIR]
"""

import json
import pathlib
import sys

import timm
import torch
import transformers
from timm.models._hub import save_for_hf

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures")
LABELS = ["cat", "dog", "frog"]


def randomize(model, seed):
    """Weights far from the init's spread, so every path moves the logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))


def pixels(seed, size):
    g = torch.Generator().manual_seed(seed)
    return torch.randn((2, 3, size, size), generator=g)


def check_sizes(out):
    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    assert all(s < 1_000_000 for s in sizes.values()), sizes
    print(out.name, sizes)


def transformers_vit():
    config = transformers.ViTConfig(
        hidden_size=36, num_hidden_layers=2, num_attention_heads=3, intermediate_size=50,
        image_size=20, patch_size=4, num_channels=3, hidden_dropout_prob=0.1,
        attention_probs_dropout_prob=0.1, layer_norm_eps=1e-12, qkv_bias=True,
        id2label=dict(enumerate(LABELS)), label2id={l: i for i, l in enumerate(LABELS)})
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config)
    randomize(model, 3)
    model.eval()
    out = ROOT / "vit"
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    processor = transformers.ViTImageProcessor(
        size={"height": 20, "width": 20}, image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5],
        resample=2)
    processor.save_pretrained(out)
    x20, x28 = pixels(1, 20), pixels(2, 28)
    with torch.no_grad():
        logits = model(pixel_values=x20).logits
        logits28 = model(pixel_values=x28, interpolate_pos_encoding=True).logits
        # The position embeddings transformers interpolates for 28×28 inputs (7×7 patches).
        pos28 = model.vit.embeddings.interpolate_pos_encoding(torch.zeros(1, 50, 36), 28, 28)
    record = {
        "transformers": transformers.__version__,
        "pixel_values": x20.tolist(), "logits": logits.tolist(),
        "pixel_values_28": x28.tolist(), "logits_28": logits28.tolist(),
        "position_embeddings_28": pos28[0].tolist(),
    }
    (out / "logits.json").write_text(json.dumps(record) + "\n")
    check_sizes(out)


def timm_vit():
    args = dict(img_size=20, patch_size=4, embed_dim=36, depth=2, num_heads=3, mlp_ratio=1.5,
                num_classes=3)
    torch.manual_seed(0)
    model = timm.create_model("vit_tiny_patch16_224", pretrained=False, **args)
    randomize(model, 4)
    model.eval()
    out = ROOT / "vit-timm"
    out.mkdir(parents=True, exist_ok=True)
    model_args = {k: v for k, v in args.items() if k != "num_classes"}
    save_for_hf(model, out, model_config={"label_names": LABELS}, model_args=model_args,
                safe_serialization=True)
    x = pixels(5, 20)
    with torch.no_grad():
        logits = model(x)
    record = {"timm": timm.__version__, "pixel_values": x.tolist(), "logits": logits.tolist()}
    (out / "logits.json").write_text(json.dumps(record) + "\n")
    check_sizes(out)


def peft_vit():
    from peft import LoraConfig, get_peft_model
    base = transformers.ViTForImageClassification.from_pretrained(
        ROOT / "vit", num_labels=2, id2label={0: "ant", 1: "bee"},
        label2id={"ant": 0, "bee": 1}, ignore_mismatched_sizes=True)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules=["q_proj", "v_proj"],
                        modules_to_save=["classifier"])
    model = get_peft_model(base, config)
    randomize_adapter(model, 6)
    model.eval()
    out = ROOT / "vit-lora"
    model.save_pretrained(out)
    x = pixels(7, 20)
    with torch.no_grad():
        logits = model(pixel_values=x).logits
    record = {"pixel_values": x.tolist(), "logits": logits.tolist()}
    (out / "logits.json").write_text(json.dumps(record) + "\n")
    check_sizes(out)


def randomize_adapter(model, seed):
    """Non-zero LoRA B (PEFT starts it at zero) and a random head, so both matter."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name or "modules_to_save" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=g))


if __name__ == "__main__":
    transformers_vit()
    timm_vit()
    peft_vit()
