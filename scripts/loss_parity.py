"""The transformers side of tests/loss_parity.rs: trains the run's initial model on the run's
batches (both written by the Rust test under FINETUNE_PARITY_DUMP=DIR) with transformers'
recipe — AdamW with weight decay except biases and LayerNorm weights (the Trainer's rule),
linear schedule with warm-up, gradient clipping — and prints every step's training loss as JSON.

Run through scripts/loss-parity.sh, in a throw-away venv with torch and transformers.
"""
import json
import sys

import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification, get_linear_schedule_with_warmup

torch.set_num_threads(2)
dump = sys.argv[1]
plan = load_file(f"{dump}/plan.safetensors")
cfg = json.load(open(f"{dump}/plan.json"))
model = AutoModelForSequenceClassification.from_pretrained(f"{dump}/init", dtype=torch.float32)
model.train()  # dropout is 0 in the exported config
decay = [p for n, p in model.named_parameters() if "bias" not in n and "LayerNorm" not in n]
no_decay = [p for n, p in model.named_parameters() if "bias" in n or "LayerNorm" in n]
optimizer = torch.optim.AdamW(
    [{"params": decay, "weight_decay": cfg["weight_decay"]}, {"params": no_decay, "weight_decay": 0.0}],
    lr=cfg["lr"], betas=tuple(cfg["betas"]), eps=cfg["eps"],
)
schedule = get_linear_schedule_with_warmup(optimizer, cfg["warmup_steps"], cfg["steps"])
losses = []
for step in range(cfg["steps"]):
    batch = {k: plan[f"step{step}.{k}"] for k in ("input_ids", "token_type_ids", "attention_mask", "labels")}
    loss = model(**batch).loss
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["max_grad_norm"])
    optimizer.step()
    schedule.step()
    optimizer.zero_grad()
    losses.append(loss.item())
import transformers
print(json.dumps({
    "made_by": f"scripts/loss-parity.sh: torch {torch.__version__}, transformers {transformers.__version__}",
    "losses": losses,
}, indent=1))
