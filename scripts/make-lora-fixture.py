"""Makes tests/fixtures/lora/: a tiny random BERT sequence classifier saved by transformers
(`base/`), a LoRA adapter for it saved by PEFT with every adapter tensor non-zero
(`adapter/`), and the logits Python computes with the adapter applied, in eval mode
(`logits.json`). The tests load both with candle-finetune and must reproduce the logits.

Run once in a throw-away venv (not a dependency of the project):
    python3 -m venv /tmp/pyenv && /tmp/pyenv/bin/pip install torch transformers peft safetensors
    /tmp/pyenv/bin/python scripts/make-lora-fixture.py
"""
import json, os, torch
from transformers import BertConfig, BertForSequenceClassification
from peft import LoraConfig, PeftModel, get_peft_model

out = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "lora")
torch.manual_seed(7)
config = BertConfig(vocab_size=53, hidden_size=36, num_hidden_layers=2, num_attention_heads=3,
                    intermediate_size=40, max_position_embeddings=20, num_labels=3)
base = BertForSequenceClassification(config).eval()
base.save_pretrained(os.path.join(out, "base"))

# `dense` is a name four kinds of layer end with (attention output, intermediate, output,
# pooler): PEFT's suffix matching decides which get adapters.
lora = LoraConfig(task_type="SEQ_CLS", r=4, lora_alpha=6, lora_dropout=0.1,
                  target_modules=["query", "value", "dense"], use_rslora=True)
model = get_peft_model(base, lora)
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_" in name or "modules_to_save" in name:
            p.copy_(torch.randn_like(p) * 0.3)
model.save_pretrained(os.path.join(out, "adapter"))

# The adapter as a user loads it: a fresh base, then PeftModel.from_pretrained.
fresh = BertForSequenceClassification.from_pretrained(os.path.join(out, "base")).eval()
loaded = PeftModel.from_pretrained(fresh, os.path.join(out, "adapter")).eval()
input_ids = torch.tensor([[2, 17, 44, 5, 9, 31, 3, 0], [2, 8, 52, 3, 0, 0, 0, 0]])
mask = (input_ids != 0).long()
with torch.no_grad():
    logits = loaded(input_ids=input_ids, attention_mask=mask).logits
    merged = loaded.merge_and_unload()(input_ids=input_ids, attention_mask=mask).logits
assert torch.allclose(logits, merged, atol=1e-5)
json.dump({"input_ids": input_ids.tolist(), "attention_mask": mask.tolist(),
           "logits": logits.tolist()}, open(os.path.join(out, "logits.json"), "w"), indent=1)
print("logits", logits)
