"""The PyTorch side of README's same-host comparison: one training step of the configurations
`finetune bench train` times (random init, fixed random batch, fwd + loss + bwd + optimizer),
median of K timed steps after two warm-up steps, 2 threads.

Optional and outside the project's build and tests; run it in a throw-away venv:
    python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch torchvision transformers
    /tmp/torchvenv/bin/python scripts/bench-pytorch.py resnet18 32 32 full 10
    /tmp/torchvenv/bin/python scripts/bench-pytorch.py minilm 16 128 last2 5
    /tmp/torchvenv/bin/python scripts/bench-pytorch.py vit-b16 8 224 full 5
Arguments: CONFIG (minilm, bert-base, distilbert, roberta-base, resnet18, resnet50, vit-b16)
BATCH SIZE (seq or image side) MODE (full, last2, frozen; the transformers also lora and
lora-all, which need `pip install peft`) [STEPS]. Prints one JSON object with median_s and peak_rss_mb (the process's
peak). BF16=1 runs the forward and loss under `torch.autocast("cpu", dtype=torch.bfloat16)`, as
transformers' `bf16=True` does on the CPU (the comparison for `finetune bench train --bf16`).
DEVICE=cuda runs on the GPU (each step waits for it; autocast then on "cuda"), the comparison
for `finetune bench train --device cuda` (scripts/gpu-check.sh).
"""
import contextlib, os, sys, time, statistics, json, torch
torch.set_num_threads(2)
BF16 = os.environ.get("BF16") == "1"
DEVICE = os.environ.get("DEVICE", "cpu")
def autocast():
    kind = DEVICE.split(":")[0]
    return torch.autocast(kind, dtype=torch.bfloat16) if BF16 else contextlib.nullcontext()
def sync():
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()
torch.manual_seed(0)
def timeit(step, k):
    step(); step(); sync()
    ts = []
    for _ in range(k):
        t = time.perf_counter(); step(); sync(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
def resnet(name, batch, size, mode, k):
    import torchvision
    m = getattr(torchvision.models, name)(num_classes=1000).to(DEVICE)
    m.train()
    if mode == "frozen":
        for n, p in m.named_parameters():
            p.requires_grad = n.startswith("fc.")
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.SGD(params, lr=0.01, momentum=0.9)
    x = torch.randn(batch, 3, size, size, device=DEVICE)
    y = torch.randint(0, 1000, (batch,), device=DEVICE)
    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            loss = torch.nn.functional.cross_entropy(m(x), y)
        loss.backward(); opt.step()
    return timeit(step, k)
def text_model(cfg):
    """The model of CONFIG and the name prefixes of its layers and head (last2 mode)."""
    import transformers as tf
    if cfg == "distilbert":
        m = tf.DistilBertForSequenceClassification(tf.DistilBertConfig(num_labels=2))
        return m, m.config.n_layers, "distilbert.transformer.layer", ["pre_classifier.", "classifier."]
    if cfg == "roberta-base":
        c = tf.RobertaConfig(num_labels=2, vocab_size=50265, max_position_embeddings=514,
                             type_vocab_size=1, pad_token_id=1, layer_norm_eps=1e-5)
        return tf.RobertaForSequenceClassification(c), 12, "roberta.encoder.layer", ["classifier."]
    c = tf.BertConfig(num_labels=2)
    if cfg == "minilm":
        c.hidden_size, c.num_hidden_layers, c.num_attention_heads, c.intermediate_size = 384, 6, 12, 1536
    m = tf.BertForSequenceClassification(c)
    return m, c.num_hidden_layers, "bert.encoder.layer", ["bert.pooler.", "classifier."]
def vit_model(size):
    """transformers' ViT-B/16 at SIZE×SIZE with 1000 classes, as `finetune bench train` builds it."""
    import transformers as tf
    c = tf.ViTConfig(num_labels=1000, image_size=size, layer_norm_eps=1e-6)
    return tf.ViTForImageClassification(c), 12, "vit.encoder.layer", ["vit.layernorm.", "classifier."]
def bert(cfg, batch, seq, mode, k):
    vit = cfg == "vit-b16"
    m, L, layers, head = vit_model(seq) if vit else text_model(cfg); m.train()
    if mode == "last2":
        keep = tuple([f"{layers}.{l}." for l in range(L - 2, L)] + head)
        for n, p in m.named_parameters():
            p.requires_grad = n.startswith(keep)
    if mode.startswith("lora"):
        # lora or lora-all: PEFT, r 8, alpha 16, dropout 0.1, on query,value or all-linear.
        from peft import LoraConfig, get_peft_model
        # (transformers 5 names ViT's query/value modules q_proj/v_proj.)
        qv = ["q_proj", "v_proj"] if vit else ["query", "value"]
        target = "all-linear" if mode == "lora-all" else qv
        m = get_peft_model(m, LoraConfig(task_type=None if vit else "SEQ_CLS", r=8,
                                         lora_alpha=16, lora_dropout=0.1, target_modules=target,
                                         modules_to_save=["classifier"] if vit else None))
        m.train()
    m.to(DEVICE)
    params = [p for p in m.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-5)
    if vit:
        inputs = {"pixel_values": torch.randn(batch, 3, seq, seq)}
        y = torch.randint(0, 1000, (batch,))
    else:
        inputs = {"input_ids": torch.randint(3, m.config.vocab_size, (batch, seq)),
                  "attention_mask": torch.ones(batch, seq, dtype=torch.long)}
        y = torch.randint(0, 2, (batch,))
    inputs = {key: v.to(DEVICE) for key, v in inputs.items()}
    y = y.to(DEVICE)
    def step():
        opt.zero_grad(set_to_none=True)
        with autocast():
            out = m(**inputs, labels=y)
        out.loss.backward(); opt.step()
    return timeit(step, k)
what = sys.argv[1]
if what in ("resnet18", "resnet50"):
    b, s, mode = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    t = resnet(what, b, s, mode, int(sys.argv[5]) if len(sys.argv) > 5 else 5)
else:
    b, s, mode = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    t = bert(what, b, s, mode, int(sys.argv[5]) if len(sys.argv) > 5 else 5)
import resource
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"torch": torch.__version__, "what": what, "batch": b, "size": s, "mode": mode,
                  "bf16": BF16, "device": DEVICE, "median_s": t, "peak_rss_mb": rss}))
