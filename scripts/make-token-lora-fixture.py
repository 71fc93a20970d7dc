#!/usr/bin/env python3
"""Makes tests/fixtures/ner/bert-token-lora/: a LoRA adapter saved by PEFT with
task_type TOKEN_CLS for the tiny BertForTokenClassification of tests/fixtures/ner/bert-token
(scripts/make-token-fixtures.py), every LoRA tensor and the head (`classifier`, PEFT's
modules_to_save for TOKEN_CLS) random, and in logits.json the eval-mode logits of the adapter
as a user loads it (a fresh base, then PeftModel.from_pretrained) for fixed padded ids.
tests/token_lora_peft_fixture.rs loads base + adapter with candle-finetune and must reproduce
them, and checks that what `finetune train --task token-classification --lora` writes has
this adapter's config fields and tensor names.

Run once in a throw-away venv (not a dependency of the project):
    python3 -m venv /tmp/pyenv && /tmp/pyenv/bin/pip install torch transformers peft safetensors
    /tmp/pyenv/bin/python scripts/make-token-lora-fixture.py

The other way round, by hand: that PEFT loads our export. Train two steps with LoRA on the
same base and the adapter's layers, then check the export (run from the repository root):
    printf '%s\\n' '{"tokens": ["John", "lives", "in", "Paris"], "ner_tags": ["B-PER", "O", "O", "B-LOC"]}' \\
        '{"tokens": ["Acme", "Corp", "visited", "New", "York"], "ner_tags": ["B-ORG", "I-ORG", "O", "B-LOC", "I-LOC"]}' \\
        '{"tokens": ["Mary", "Smith", "works"], "ner_tags": ["B-PER", "I-PER", "O"]}' > /tmp/tok-train.jsonl
    cargo run --release --bin finetune -- train --task token-classification \\
        --model tests/fixtures/ner/bert-token --train /tmp/tok-train.jsonl --output /tmp/tok-lora \\
        --lora --lora-r 4 --lora-alpha 6 --lora-target query,value,dense --max-steps 2
    /tmp/pyenv/bin/python scripts/make-token-lora-fixture.py --check /tmp/tok-lora
--check loads /tmp/tok-lora/adapter with PeftModel.from_pretrained onto the base (its head sized
for the export's tags, as a user does with num_labels), asserts it is a
PeftModelForTokenClassification whose every LoRA and head tensor is the file's, and that its
logits equal those of the merged export /tmp/tok-lora (transformers alone).
"""
import json
import pathlib
import sys

import peft
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file
from transformers import AutoModelForTokenClassification

ROOT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "ner"
BASE = ROOT / "bert-token"
OUT = ROOT / "bert-token-lora"
IDS = torch.tensor([[2, 5, 6, 7, 8, 9, 3], [2, 10, 11, 3, 0, 0, 0]])
MASK = (IDS != 0).long()


def fresh_base(**labels):
    return AutoModelForTokenClassification.from_pretrained(BASE, **labels).eval()


def logits(model):
    with torch.no_grad():
        return model(input_ids=IDS, attention_mask=MASK).logits


def make():
    torch.manual_seed(11)
    # `dense` ends the attention output, intermediate and output layers (a token classifier
    # has no pooler): PEFT's suffix matching adapts all three in each layer.
    lora = LoraConfig(task_type="TOKEN_CLS", r=4, lora_alpha=6, lora_dropout=0.1,
                      target_modules=["query", "value", "dense"])
    model = get_peft_model(fresh_base(), lora)
    assert type(model).__name__ == "PeftModelForTokenClassification"
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn_like(p) * 0.3)
            elif "modules_to_save" in name:
                p.copy_(torch.randn_like(p) * 2.0)
    # PEFT trains a copy of the head under `modules_to_save.default` and saves it under the
    # head's own name.
    assert "base_model.model.classifier.modules_to_save.default.weight" in model.state_dict()
    model.save_pretrained(OUT)
    # Not this machine's path; target_modules in one order (PEFT saves a set).
    config = json.loads((OUT / "adapter_config.json").read_text())
    config.update(base_model_name_or_path=None, target_modules=sorted(config["target_modules"]))
    (OUT / "adapter_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    (OUT / "README.md").unlink()  # PEFT's empty model card
    names = sorted(load_file(OUT / "adapter_model.safetensors"))
    assert "base_model.model.classifier.weight" in names, names

    loaded = PeftModel.from_pretrained(fresh_base(), OUT).eval()
    got = logits(loaded)
    assert torch.allclose(got, logits(loaded.merge_and_unload()), atol=1e-5)
    assert not torch.allclose(got, logits(fresh_base()), atol=1e-2)
    record = {"peft": peft.__version__, "input_ids": IDS.tolist(),
              "attention_mask": MASK.tolist(), "logits": got.tolist()}
    (OUT / "logits.json").write_text(json.dumps(record, indent=1) + "\n")
    sizes = {p.name: p.stat().st_size for p in OUT.iterdir()}
    assert all(s < 1_000_000 for s in sizes.values()), sizes
    print(sizes, names, sep="\n")


def check(export):
    """PEFT loads the adapter/ of our export exactly, and it computes the merged export's
    logits."""
    export = pathlib.Path(export)
    adapter = export / "adapter"
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["task_type"] == "TOKEN_CLS", config
    tags = json.loads((export / "config.json").read_text())
    labels = {k: tags[k] for k in ("id2label", "label2id")}
    base = fresh_base(**labels, ignore_mismatched_sizes=True)  # a new head for other tags
    model = PeftModel.from_pretrained(base, adapter).eval()
    assert type(model).__name__ == "PeftModelForTokenClassification", type(model)
    state = model.state_dict()
    saved = load_file(adapter / "adapter_model.safetensors")
    for name, t in saved.items():
        inner = name.replace(".lora_A.", ".lora_A.default.").replace(".lora_B.", ".lora_B.default.")
        if "lora_" not in name:
            head, leaf = name.rsplit(".", 1)
            inner = f"{head}.modules_to_save.default.{leaf}"
        assert torch.equal(state[inner], t), name
    ours = {k for k in state if ".lora_" in k or ".modules_to_save." in k}
    assert len(ours) == len(saved), (sorted(ours), sorted(saved))
    merged = AutoModelForTokenClassification.from_pretrained(export).eval()
    d = (logits(model) - logits(merged)).abs().max().item()
    assert d <= 1e-4, d
    print(f"PEFT {peft.__version__} loads {adapter}: {len(saved)} tensors, "
          f"logits equal the merged export's (max diff {d:.2e})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check"]:
        check(sys.argv[2])
    else:
        make()
