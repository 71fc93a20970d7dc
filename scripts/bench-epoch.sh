#!/usr/bin/env bash
# One end-to-end epoch of full fine-tuning of MiniLM-L6 on the film-review data, as users run
# it: this project's `finetune train` (reading the CSVs, tokenising, dynamic padding, batches of
# 32, AdamW 5e-5 with 10 % warm-up, evaluation on the validation and test files, export) and
# the same epoch in transformers (scripts/epoch-pytorch.py, a plain loop), alternated ROUNDS
# times on this host. Prints each wall time and the ratio; needs PYTHON naming an interpreter
# with torch and transformers (a throw-away venv) and `scripts/fetch-assets.sh` run first.
#
#   PYTHON=/tmp/venv/bin/python ROUNDS=2 scripts/bench-epoch.sh
#   ASSETS=DIR moves the assets folder (`minilm/`, `rotten_tomatoes/`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
: "${PYTHON:?set PYTHON to a Python with torch and transformers}"
assets="${ASSETS:-assets}"
[[ -d "$assets/rotten_tomatoes" && -d "$assets/minilm" ]] || {
  echo "assets missing: run scripts/fetch-assets.sh" >&2; exit 1; }
cargo build --release --bin finetune >&2
ft="${CARGO_TARGET_DIR:-target}/release/finetune"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
isa=$(grep -qw avx512f /proc/cpuinfo && echo "AVX-512" || echo "AVX2 only")
echo "host: ${cpu} (${isa}), $(nproc) cores"
for round in $(seq "${ROUNDS:-1}"); do
  start=$(date +%s.%N)
  "$ft" train --task text-classification --model "$assets/minilm" \
    --train "$assets/rotten_tomatoes/train.csv" --eval "$assets/rotten_tomatoes/validation.csv" \
    --test "$assets/rotten_tomatoes/test.csv" --max-length 64 --epochs 1 --batch-size 32 \
    --lr 5e-5 --warmup-ratio 0.1 --weight-decay 0.01 --eval-strategy epoch \
    --report-to none --no-progress --overwrite --output "$out/run" --json > "$out/ours.json"
  ours=$(python3 -c "print($(date +%s.%N) - $start)")
  acc=$(python3 -c "import json; r=json.load(open('$out/ours.json')); print(r['test']['accuracy'])")
  torch_json=$("$PYTHON" scripts/epoch-pytorch.py "$assets" 2>/dev/null)
  python3 - "$round" "$ours" "$acc" "$torch_json" <<'PY'
import json, sys
rnd, ours, acc, t = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), json.loads(sys.argv[4])
print(f"round {rnd}: this project {ours:.1f} s (test accuracy {100 * acc:.1f} %), "
      f"transformers {t['wall_s']:.1f} s (train {t['train_s']:.1f} s, eval {t['eval_s']:.1f} s, "
      f"test accuracy {100 * t['test_accuracy']:.1f} %): {ours / t['wall_s']:.2f}×")
PY
done
