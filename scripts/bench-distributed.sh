#!/usr/bin/env bash
# Data-parallel scaling on this host: training samples per second of full fine-tuning of
# MiniLM-L6 on the film reviews, 16 a step (each batch padded to its longest review; a rank
# pads its own 8, so two ranks pad a little less) as
#   1 process × 1 thread (batch 16), 1 process × 2 threads (batch 16), and
#   `mpirun -np 2` × 1 thread each (batch 8 per rank: the same global batch of 16),
# ROUNDS times interleaved, then the all-reduce volume of MiniLM and BERT-base and what it
# costs over 10/25/100 Gbit/s networks against the compute time per step measured here.
# Needs Open MPI (Debian: openmpi-bin libopenmpi-dev libclang-dev) and `scripts/fetch-assets.sh`.
#
#   ROUNDS=3 STEPS=20 scripts/bench-distributed.sh
# BERT_STEP_S: BERT-base's step of 16 × 128 on this host, for the network table (default: the
# AVX-512 table's 4.78 s in docs/performance.md; `finetune bench train` measures it).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
assets="${CANDLE_FINETUNE_ASSETS:-assets}"
[[ -d "$assets/rotten_tomatoes" && -d "$assets/minilm" ]] || {
  echo "assets missing: run scripts/fetch-assets.sh" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "mpirun missing: apt install openmpi-bin libopenmpi-dev" >&2; exit 1; }
cargo build --release --features mpi --bin finetune >&2
ft="${CARGO_TARGET_DIR:-target}/release/finetune"
out="$(mktemp -d)"
trap 'rm -rf "$out"' EXIT
steps="${STEPS:-20}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
isa=$(grep -qw avx512f /proc/cpuinfo && echo "AVX-512" || echo "AVX2 only")
echo "host: ${cpu} (${isa}), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg)"

# train NAME BATCH [launcher...]: one run, its samples/s appended to $out/NAME.
train() {
  local name=$1 batch=$2; shift 2
  "$@" "$ft" train --task text-classification --model "$assets/minilm" \
    --train "$assets/rotten_tomatoes/train.csv" --max-length 128 \
    --batch-size "$batch" --max-steps "$steps" --lr 5e-5 --seed 1 --save-steps 100000 \
    --report-to none --no-progress --overwrite --output "$out/run-$name" --json \
    > "$out/$name.json" 2> "$out/$name.log" || { cat "$out/$name.log" >&2; exit 1; }
  python3 -c "import json; print(json.load(open('$out/$name.json'))['summary']['train_samples_per_s'])" >> "$out/$name"
}
for round in $(seq "${ROUNDS:-3}"); do
  RAYON_NUM_THREADS=1 train one-thread 16 env
  RAYON_NUM_THREADS=2 train two-threads 16 env
  train two-ranks 8 mpirun --oversubscribe -np 2 -x RAYON_NUM_THREADS=1
done
python3 - "$out" "$steps" "${BERT_STEP_S:-4.78}" <<'PY'
import json, statistics, sys
out, steps, bert_step = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
med = lambda n: statistics.median(float(l) for l in open(f"{out}/{n}"))
rows = [("1 process × 1 thread", "one-thread", 16), ("1 process × 2 threads", "two-threads", 16),
        ("2 ranks (`mpirun -np 2`) × 1 thread", "two-ranks", 8)]
base = med("one-thread")
print("\n| MiniLM-L6, 16 reviews a step, full | batch per process | samples/s (median) | vs 1 thread |")
print("|---|---|---|---|")
for label, name, b in rows:
    v = med(name)
    print(f"| {label} | {b} | {v:.1f} | {v / base:.2f}× |")
minilm = json.load(open(f"{out}/two-threads.json"))["summary"]["trainable_params"]
bert = 109_483_778  # bert-base-uncased with a 2-class head
step_s = 16 / med("two-threads")
print(f"\nAll-reduce per optimizer step (f32 gradients of every trainable weight): MiniLM-L6 "
      f"{minilm:,} weights = {4 * minilm / 1e6:.0f} MB; BERT-base {bert:,} = {4 * bert / 1e6:.0f} MB.")
print("Ring all-reduce time 2·(N−1)/N · bytes / bandwidth, for N = 2 and N large, beside the "
      f"compute of one step on this host's 2 cores ({step_s:.2f} s for MiniLM's 16 reviews, "
      f"{bert_step:.2f} s for BERT-base's 16 × 128 tokens):\n")
print("| model | network | all-reduce, N = 2 | all-reduce, N large | N large: share of a step on 2-core nodes |")
print("|---|---|---|---|---|")
for name, n, compute in [("MiniLM-L6", minilm, step_s), ("BERT-base", bert, bert_step)]:
    for gbit in (10, 25, 100):
        t2 = 4 * n / (gbit / 8 * 1e9)
        tn = 2 * t2
        print(f"| {name} | {gbit} Gbit/s | {t2 * 1e3:.0f} ms | {tn * 1e3:.0f} ms | "
              f"{100 * tn / (tn + compute):.0f} % |")
PY
