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
#   4. only where `nvidia-smi -L` lists at least 2 GPUs: data-parallel training over NCCL.
#      Builds with `--features cuda,nccl` (needs libnccl: a system NCCL, $NCCL_HOME, or the
#      nvidia-nccl wheel of a CUDA PyTorch; without one the section is skipped, saying so), then
#      one short `finetune train` (ResNet-18 from scratch on 1024 generated 32x32 gray images)
#      on one GPU, and the same run as 2 processes (RANK/WORLD_SIZE/LOCAL_RANK, the NCCL id
#      through FINETUNE_NCCL_ID_FILE, `--distributed`) on GPUs 0 and 1: samples/s and final
#      train loss of both.
#
# Output: the tests' verdicts and one markdown table (also written to
# ${GPU_CHECK_OUT:-target/gpu-check}/table.md, with each bench's JSON beside it; the runs of
# step 4 leave their logs and summaries there too).
# Budget: about 8 minutes on a warm cargo cache (a few more with 2 GPUs: the second build);
# STEPS (default 5) sets the timed steps.
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

# 4. Data-parallel training over NCCL, where there are 2 GPUs.
ngpus=$(nvidia-smi -L | grep -c '^GPU ' || true)
ddp_rows=()
ddp_failed=no
# A folder holding libnccl.so (the linker's name) on stdout, made in $out from a versioned
# libnccl.so.2 when that is all there is (a pip wheel); nothing when no NCCL is found.
nccl_libdir() {
  local d f
  for d in ${NCCL_HOME:+"$NCCL_HOME/lib"} ${CUDA_HOME:+"$CUDA_HOME/lib" "$CUDA_HOME/lib64"} \
    /usr/local/cuda/lib64 /usr/lib/x86_64-linux-gnu /usr/lib64; do
    [ -e "$d/libnccl.so" ] && { echo "$d"; return; }
  done
  f=$(ldconfig -p 2>/dev/null | sed -n 's/.*libnccl\.so\.2 .*=> //p' | head -n1)
  if [ -z "$f" ]; then # the nvidia-nccl-cu1x wheel of a CUDA PyTorch: site-packages/nvidia/*/lib
    for d in $("$python" -c 'import site; print(" ".join(site.getsitepackages()))' 2>/dev/null || true); do
      f=$(ls "$d"/nvidia/*/lib/libnccl.so* 2>/dev/null | head -n1 || true)
      [ -z "$f" ] || break
    done
  fi
  [ -n "$f" ] || return 0
  mkdir -p "$out/nccl-lib"
  ln -sf "$f" "$out/nccl-lib/libnccl.so"
  ln -sf "$f" "$out/nccl-lib/libnccl.so.2"
  echo "$out/nccl-lib"
}
# samples/s and final train loss of a run's train_summary.json, or dashes.
summary_of() {
  [ -f "$1/train_summary.json" ] || { echo "— | —"; return; }
  echo "$(field train_samples_per_s "$1/train_summary.json") | $(field train_loss "$1/train_summary.json")"
}
if [ "$ngpus" -ge 2 ]; then
  nccldir=$(nccl_libdir)
  if [ -z "$nccldir" ]; then
    say "$ngpus GPUs but no libnccl found (system, \$NCCL_HOME or $python's nvidia.nccl): skipping the 2-GPU run"
    ddp_rows+=("| 2 GPUs, NCCL | — (no libnccl found) | — |")
  else
    say "$ngpus GPUs: building with --features cuda,nccl (libnccl from $nccldir)"
    export LIBRARY_PATH="$nccldir${LIBRARY_PATH:+:$LIBRARY_PATH}"
    export LD_LIBRARY_PATH="$nccldir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    cargo build --release --features cuda,nccl --bin finetune
    work=$(mktemp -d)
    # 1024 rows of 32x32 gray pixels then the label (a pixel CSV): class 1 brighter than class 0.
    awk 'BEGIN { srand(7); for (i = 0; i < 1024; i++) { c = i % 2; row = "";
      for (p = 0; p < 1024; p++) row = row int(c * 96 + rand() * 160) ","; print row c } }' >"$work/pixels.csv"
    train=(train --task image-classification --model resnet18 --train "$work/pixels.csv"
      --epochs 2 --batch-size 64 --lr 0.05 --optimizer sgd --momentum 0.9 --augment none
      --seed 1 --logging-steps 4 --no-progress --report-to none)
    timeout 600 "$finetune" "${train[@]}" --device "$device" --output "$out/train-1gpu" \
      >"$out/train-1gpu.log" 2>&1 || { ddp_failed=yes; say "the 1-GPU run failed: $out/train-1gpu.log"; }
    pids=()
    for r in 0 1; do
      FINETUNE_NCCL_ID_FILE=$work/nccl.id RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r \
        timeout 600 "$finetune" "${train[@]}" --device cuda --distributed --output "$out/train-2gpu" \
        >"$out/train-2gpu-rank$r.log" 2>&1 &
      pids+=($!)
    done
    for r in 0 1; do
      wait "${pids[r]}" || { ddp_failed=yes; say "rank $r of the 2-GPU run failed:"; tail -n 5 "$out/train-2gpu-rank$r.log" >&2; }
    done
    rm -rf "$work"
    ddp_rows+=("| 1 GPU | $(summary_of "$out/train-1gpu") |")
    ddp_rows+=("| 2 GPUs, NCCL (2 processes) | $(summary_of "$out/train-2gpu") |")
  fi
else
  say "$ngpus GPU(s): no 2-GPU run (it needs at least 2)"
fi

{
  echo "GPU: $gpu; finetune built with --features cuda; medians of $steps steps, seconds."
  echo
  echo "| step | finetune f32 | finetune bf16 | PyTorch eager f32 | PyTorch autocast bf16 | PyTorch / finetune, f32 / bf16 |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  if [ ${#ddp_rows[@]} -gt 0 ]; then
    echo
    echo "Data-parallel training ($ngpus GPUs; --features cuda,nccl): ResNet-18 from scratch, 1024 32×32 images, 2 epochs, global batch 64."
    echo
    echo "| run | samples/s | final train loss |"
    echo "|---|---|---|"
    printf '%s\n' "${ddp_rows[@]}"
  fi
} | tee "$out/table.md"
[ $ddp_failed = no ] || die "the data-parallel training check failed (logs in $out)"
