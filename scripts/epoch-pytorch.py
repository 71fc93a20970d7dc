"""The PyTorch side of the end-to-end epoch comparison (scripts/bench-epoch.sh): one epoch of
full fine-tuning of MiniLM-L6 on the film-review data as users run it with transformers — the
tokenizer on every text, dynamic padding per batch (max length 64), batches of 32 in a seeded
shuffled order, AdamW (lr 5e-5, weight decay 0.01) with a linear schedule and 10 % warm-up, then
evaluation on the validation and test files — in a plain loop, 2 threads. Prints one JSON
object: wall_s (everything from reading the files to the test accuracy), train_s, eval_s and
the accuracies.

Optional and outside the project's build and tests; run it in a throw-away venv with torch and
transformers:  python scripts/epoch-pytorch.py [ASSETS_DIR]
"""
import csv, json, pathlib, sys, time
t0 = time.perf_counter()
import torch
import transformers as tf

torch.set_num_threads(2)
torch.manual_seed(0)
assets = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "assets")
data = assets / "rotten_tomatoes"
tok = tf.AutoTokenizer.from_pretrained(assets / "minilm")


def rows(name):
    with open(data / name, newline="") as f:
        return [(r["text"], r["label"]) for r in csv.DictReader(f)]


train, val, test = rows("train.csv"), rows("validation.csv"), rows("test.csv")
labels = sorted({l for _, l in train})
ids = {l: i for i, l in enumerate(labels)}
model = tf.AutoModelForSequenceClassification.from_pretrained(assets / "minilm",
                                                              num_labels=len(labels))


def batches(rs, size, shuffle):
    order = torch.randperm(len(rs)).tolist() if shuffle else list(range(len(rs)))
    for i in range(0, len(order), size):
        chunk = [rs[j] for j in order[i:i + size]]
        enc = tok([t for t, _ in chunk], truncation=True, max_length=64, padding=True,
                  return_tensors="pt")
        yield enc, torch.tensor([ids[l] for _, l in chunk])


steps = (len(train) + 31) // 32
decay = [p for n, p in model.named_parameters() if not n.endswith("bias") and "LayerNorm" not in n]
rest = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01},
                         {"params": rest, "weight_decay": 0.0}], lr=5e-5)
sched = tf.get_linear_schedule_with_warmup(opt, int(0.1 * steps), steps)
t_train = time.perf_counter()
model.train()
for enc, y in batches(train, 32, True):
    loss = model(**enc, labels=y).loss
    loss.backward()
    opt.step(); sched.step(); opt.zero_grad(set_to_none=True)
train_s = time.perf_counter() - t_train


def accuracy(rs):
    model.eval()
    right = 0
    with torch.no_grad():
        for enc, y in batches(rs, 256, False):
            right += (model(**enc).logits.argmax(-1) == y).sum().item()
    return right / len(rs)


t_eval = time.perf_counter()
val_acc, test_acc = accuracy(val), accuracy(test)
eval_s = time.perf_counter() - t_eval
print(json.dumps({"torch": torch.__version__, "wall_s": time.perf_counter() - t0,
                  "train_s": train_s, "eval_s": eval_s, "validation_accuracy": val_acc,
                  "test_accuracy": test_acc, "steps": steps}))
