#!/usr/bin/env bash
# The device check: one command for a machine with an NVIDIA GPU. It builds with the `cuda`
# feature, runs the GPU tests, then times training steps on the GPU and prints one table.
#
#   1. build: `cargo build --release --features cuda` (the binary and the test executables).
#      nvcc comes from the PATH when there is one (a CUDA toolkit install), else from the
#      PyPI wheels that scripts/check-cuda-build.sh fetches (needs PyPI once, then cached).
#      CUDA_COMPUTE_CAP defaults to the GPU's own (nvidia-smi).
#   2. tests on the GPU (FINETUNE_TEST_DEVICE=cuda):
#      - crates/finetune-kernels/tests/device_check.rs: every fused op's forward and
#        gradients on the GPU against the CPU kernels;
#      - tests/generic_path.rs: short BERT and ResNet fine-tunes on the GPU whose losses fall
#        and follow the CPU's, and whose exports predict the same logits on the CPU.
#   3. `finetune bench train --device cuda --bf16` for BERT-base 32x128 and ResNet-50 32x224
#      (bf16 and f32 steps alternated on one model), and the same shapes through
#      scripts/bench-pytorch.py on the GPU (eager f32 and autocast bf16) when a Python with a
#      CUDA PyTorch is found ($PYTHON, default python3).
#
# Output: the tests' verdicts and one markdown table (also written to
# ${GPU_CHECK_OUT:-target/gpu-check}/table.md, with each bench's JSON beside it).
# Budget: about 8 minutes on a warm cargo cache; STEPS (default 5) sets the timed steps.
#
# Usage: scripts/gpu-check.sh [--device cuda:N]
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
device=cuda
[ "${1:-}" = --device ] && device=${2:?--device needs a value}
steps=${STEPS:-5}
out=${GPU_CHECK_OUT:-$repo/target/gpu-check}
python=${PYTHON:-python3}
mkdir -p "$out"

die() { echo "gpu-check: $*" >&2; exit 1; }
say() { echo "gpu-check: $*" >&2; }

command -v nvidia-smi >/dev/null 2>&1 || die "no nvidia-smi: this needs a machine with an NVIDIA GPU and its driver"
gpu=$(nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | head -n1)
cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -n1 | tr -d .)
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-$cap}
say "GPU: $gpu (compute capability $CUDA_COMPUTE_CAP)"

# 1. The build. Without nvcc on the PATH, take the toolkit from the pinned wheels.
if ! command -v nvcc >/dev/null 2>&1; then
  say "no nvcc on the PATH: using scripts/check-cuda-build.sh's toolkit"
  eval "$(scripts/check-cuda-build.sh --env)"
fi
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/candle-finetune/target}/cuda
cargo build --release --features cuda --bin finetune
finetune=$CARGO_TARGET_DIR/release/finetune

# 2. The GPU tests.
export FINETUNE_TEST_DEVICE=$device
cargo test --release --features cuda -p finetune-kernels --test device_check
cargo test --release --features cuda --test generic_path
unset FINETUNE_TEST_DEVICE

# 3. The step times.
has_torch=no
"$python" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null && has_torch=yes
[ $has_torch = yes ] || say "no CUDA PyTorch for $python: the PyTorch columns stay empty"
field() { sed -n "s/.*\"$1\": *\([0-9.e-]*\).*/\1/p" "$2" | tail -n1 | xargs printf '%.3f'; }
rows=()
bench() { # NAME, bench-pytorch.py's CONFIG BATCH SIZE, then bench train's shape flags
  local name=$1 torch_args=("$2" "$3" "$4"); shift 4
  local key f32 bf16 torch_f32=— torch_bf16=— ratios=—
  key=$(echo "$name" | tr -c 'a-zA-Z0-9\n' -)
  "$finetune" bench train "$@" --device "$device" --bf16 --steps "$steps" --json >"$out/$key.json"
  bf16=$(field median_s "$out/$key.json")
  f32=$(field f32_median_s "$out/$key.json")
  if [ $has_torch = yes ]; then
    DEVICE=$device "$python" scripts/bench-pytorch.py "${torch_args[@]}" full "$steps" >"$out/$key-torch.json"
    DEVICE=$device BF16=1 "$python" scripts/bench-pytorch.py "${torch_args[@]}" full "$steps" >"$out/$key-torch-bf16.json"
    torch_f32=$(field median_s "$out/$key-torch.json")
    torch_bf16=$(field median_s "$out/$key-torch-bf16.json")
    ratios=$(awk -v a="$torch_f32" -v b="$f32" -v c="$torch_bf16" -v d="$bf16" \
      'BEGIN { printf "%.2f× / %.2f×", a / b, c / d }')
  fi
  rows+=("| $name | $f32 | $bf16 | $torch_f32 | $torch_bf16 | $ratios |")
}
bench "BERT-base 32×128" bert-base 32 128 --model-config bert-base --batch 32 --seq 128
bench "ResNet-50 32×224²" resnet50 32 224 --model-config resnet50 --batch 32 --image 224

{
  echo "GPU: $gpu; finetune built with --features cuda; medians of $steps steps, seconds."
  echo
  echo "| step | finetune f32 | finetune bf16 | PyTorch eager f32 | PyTorch autocast bf16 | PyTorch / finetune, f32 / bf16 |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out/table.md"
