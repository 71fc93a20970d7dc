#!/usr/bin/env bash
# Regenerates a CPU class's table of docs/performance.md (run it on a host of that class):
# whole training steps (forward, loss, backward, optimizer) of random-init models, this
# project's against plain candle's (`finetune bench train --baseline`, interleaved in one
# process) and, when PYTHON names an interpreter with torch and
# transformers (a throw-away venv), against PyTorch's (scripts/bench-pytorch.py), in the same run
# on the same host. Prints the markdown table on stdout.
#
#   scripts/performance.sh                       # this project vs plain candle
#   PYTHON=/tmp/venv/bin/python scripts/performance.sh
#   ROWS="minilm 16 128 full" STEPS=3 scripts/performance.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --bin finetune >&2
ft="${CARGO_TARGET_DIR:-target}/release/finetune"
steps="${STEPS:-5}"
default_rows=(
  "minilm 16 128 full"
  "minilm 16 128 last2"
  "bert-base 16 128 full"
  "resnet18 8 224 full"
  "resnet18 32 32 full"
  "resnet50 8 224 full"
  "resnet18 8 224 frozen"
  "minilm 16 128 lora"
  "bert-base 16 128 lora"
  "vit-b16 8 224 full"
)
if [[ -n "${ROWS:-}" ]]; then IFS=';' read -r -a rows <<< "$ROWS"; else rows=("${default_rows[@]}"); fi
field() { python3 -c "import json,sys; d=json.load(sys.stdin); v=d.get('$1'); print('' if v is None else v)"; }
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
isa=$(grep -qw avx512f /proc/cpuinfo && echo "AVX-512" || echo "AVX2 only")
echo "Measured $(date -u +%Y-%m-%d) on ${cpu} (${isa}), $(nproc) cores, f32, median of ${steps} steps."
echo
echo "| step (model, batch × size, what trains) | this project | plain candle | PyTorch | plain candle / this | PyTorch / this | peak RSS this / plain candle |"
echo "|---|---|---|---|---|---|---|"
for row in "${rows[@]}"; do
  read -r model batch size mode <<< "$row"
  case "$model" in minilm|bert-base|distilbert|roberta-base) input=(--seq "$size") ;; *) input=(--image "$size") ;; esac
  # lora: r 8 on the family's targets (BERT query,value); lora-all: on every linear layer.
  how=(--mode "$mode")
  [[ "$mode" == lora-all ]] && how=(--mode lora --lora-target all-linear)
  json=$("$ft" bench train --model-config "$model" --batch "$batch" "${input[@]}" "${how[@]}" \
    --steps "$steps" --baseline --json)
  ours=$(field median_s <<< "$json"); candle=$(field baseline_median_s <<< "$json")
  rss=$(field peak_rss_mb <<< "$json"); rss_candle=$(field baseline_peak_rss_mb <<< "$json")
  torch=""
  if [[ -n "${PYTHON:-}" && ( "$mode" != "frozen" || "$model" == resnet* ) ]]; then
    torch=$("$PYTHON" scripts/bench-pytorch.py "$model" "$batch" "$size" "$mode" "$steps" 2>/dev/null | field median_s)
  fi
  python3 - "$model" "$batch" "$size" "$mode" "$ours" "$candle" "$torch" "$rss" "$rss_candle" <<'PY'
import sys
model, batch, size, mode, ours, candle, torch, rss, rss_c = sys.argv[1:]
f = lambda v: float(v) if v else None
ours, candle, torch, rss, rss_c = map(f, (ours, candle, torch, rss, rss_c))
dim = f"{size}×{size}" if model.startswith(("resnet", "vit")) else f"{size} tokens"
cell = lambda s: f"{s:.3f} s" if s is not None else "—"
ratio = lambda a: f"{a / ours:.2f}×" if a is not None else "—"
mem = f"{rss:.0f} / {rss_c:.0f} MiB" if rss and rss_c else "—"
print(f"| {model}, {batch} × {dim}, {mode} | {cell(ours)} | {cell(candle)} | {cell(torch)} | {ratio(candle)} | {ratio(torch)} | {mem} |")
PY
done
