#!/usr/bin/env bash
# Compiles the `cuda` feature on a machine without a GPU, a driver or a CUDA install. candle's
# `cuda` feature compiles its kernels with `nvcc` at build time (candle-kernels' build script) and
# asks `nvcc --version` which CUDA it builds for (cudarc's); NVIDIA publishes the compiler, its
# headers and the runtime as PyPI wheels, so this fetches pinned ones (sha256-checked, through
# `pip download`), unpacks them into one CUDA-root-like folder, and runs cargo against it.
# Idempotent: the wheels and the unpacked toolkit are cached, and a run with them in place needs
# no network.
#
#   toolkit cache: ${CANDLE_FINETUNE_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/candle-finetune/cuda}
#   cargo target : ${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/candle-finetune/target}/cuda
#                  (its own folder, so the CPU build's artifacts are never invalidated)
#   GPU arch     : ${CUDA_COMPUTE_CAP:-80} (there is no GPU to ask; 80 = Ampere; set your GPU's,
#                  e.g. 90 for Hopper, for a build you will run)
#
# Usage: scripts/check-cuda-build.sh            cargo check --workspace --all-targets --features cuda,nccl
#        scripts/check-cuda-build.sh --build    cargo build --release --workspace --all-targets --features cuda
#        scripts/check-cuda-build.sh --env      print the environment to export (eval "$(...)")
#        extra arguments after `--` go to cargo.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${CANDLE_FINETUNE_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/candle-finetune/cuda}

die() { echo "check-cuda-build: $*" >&2; exit 1; }
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
need() { command -v "$1" >/dev/null 2>&1 || die "needs \`$1\` on PATH"; }

mode=check
cargo_args=()
while [ $# -gt 0 ]; do
  case $1 in
    --build) mode=build ;;
    --check) mode=check ;;
    --env) mode=env ;;
    --) shift; cargo_args=("$@"); break ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument \`$1\` (see --help)" ;;
  esac
  shift
done

# One CUDA version throughout: cudarc 0.19.10 (candle 0.11.1's) knows CUDA 11.4 to 13.4, so 13.5
# would be refused by its build script. nvcc, cicc (nvvm) and the runtime headers must match;
# CCCL (cuda/std, cub, thrust: included by cuda_fp16.h and friends) versions on its own.
CUDA_VERSION=13.4.92
WHEELS=(
  nvidia-cuda-nvcc==13.4.92 a1f3bfb27299e060b444d5df1f4bcd762501326cf0fd3141ed61756816ab9a0e
  nvidia-nvvm==13.4.92 e4c81cb321dd9743bcf871c5e7e8fecd7f05dea607944426e102bdda8d49e137
  nvidia-cuda-crt==13.4.92 731ce3de11df8add8306404417a1edaede225dbe27eb233aed37c8de9d4fe720
  nvidia-cuda-runtime==13.4.92 9641f797da20ce1dd8e779b6e96d08cf9ba564cec8e8225458811ee26423f3a5
  nvidia-cuda-cccl==13.3.5.0.6 d5230098fa2df5021e1a00c0c4eee41797671a91119d31e892463e5ccf3ee326
)

# wheel NAME==VERSION WHEEL_SHA256 -> path of the cached, checked wheel on stdout
wheel() {
  local spec=$1 sha=$2 dir="$cache/wheels" f
  mkdir -p "$dir"
  f=$(ls "$dir"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$f" ] || ! sha_ok "$f" "$sha"; then
    need python3
    rm -f "$f"
    echo "check-cuda-build: downloading $spec from PyPI" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: \
      --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 \
      --platform manylinux2010_x86_64 -d "$dir" "$spec" >&2 ||
      die "pip could not download $spec (is PyPI reachable?)"
    f=$(ls "$dir"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl | head -n1)
  fi
  sha_ok "$f" "$sha" || { rm -f "$f"; die "$spec: wheel checksum mismatch (removed; run again)"; }
  echo "$f"
}

# The toolkit folder is named after the pinned wheels, and only counts once fully unpacked (the
# stamp is written last), so a changed pin or an interrupted run unpacks afresh.
[ "$(uname -sm)" = "Linux x86_64" ] || die "the PyPI CUDA wheels pinned here are for Linux x86_64"
stamp_text=$(printf '%s\n' "${WHEELS[@]}")
toolkit="$cache/cuda-$CUDA_VERSION-$(printf '%s' "$stamp_text" | sha256sum | cut -c1-12)"
if [ ! -f "$toolkit/.complete" ]; then
  need unzip
  rm -rf "$toolkit.part"
  mkdir -p "$toolkit.part"
  for ((i = 0; i < ${#WHEELS[@]}; i += 2)); do
    whl=$(wheel "${WHEELS[i]}" "${WHEELS[i + 1]}")
    unzip -q -o "$whl" 'nvidia/cu13/*' -d "$toolkit.part" || die "cannot unpack $(basename "$whl")"
  done
  # The wheels share the nvidia/cu13 prefix: it becomes the CUDA root, laid out as a toolkit
  # install (bin/nvcc + nvcc.profile, nvvm/, include/ with include/cccl, lib/).
  mv "$toolkit.part/nvidia/cu13"/* "$toolkit.part/"
  rm -rf "$toolkit.part/nvidia"
  # The linker's name for the runtime (candle-kernels links `cudart`); the wheel has only the soname.
  ln -sf libcudart.so.13 "$toolkit.part/lib/libcudart.so"
  "$toolkit.part/bin/nvcc" --version | grep -q "release ${CUDA_VERSION%.*}," ||
    die "the unpacked nvcc does not report CUDA ${CUDA_VERSION%.*}"
  echo "$stamp_text" > "$toolkit.part/.complete"
  rm -rf "$toolkit"
  mv "$toolkit.part" "$toolkit"
  echo "check-cuda-build: CUDA $CUDA_VERSION toolkit ready in $toolkit" >&2
fi

# What the build scripts read: cudarc runs `nvcc --version` (from PATH); candle-kernels'
# (cudaforge) finds nvcc through NVCC/PATH/CUDA_HOME and reads CUDA_COMPUTE_CAP (else it would
# run nvidia-smi). nvcc finds cicc, libdevice and the headers relative to itself (nvcc.profile).
# LIBRARY_PATH lets the linker find libcudart.so for `--build` (which also links libcuda, nvrtc,
# curand and cublas: see below); running the binaries needs a driver and the CUDA 13 libraries.
export CUDA_HOME="$toolkit" CUDA_PATH="$toolkit" CUDA_ROOT="$toolkit"
export NVCC="$toolkit/bin/nvcc"
export PATH="$toolkit/bin:$PATH"
export LIBRARY_PATH="$toolkit/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-80}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/candle-finetune/target}/cuda"

if [ "$mode" = env ]; then
  for v in CUDA_HOME CUDA_PATH CUDA_ROOT NVCC PATH LIBRARY_PATH CUDA_COMPUTE_CAP CARGO_TARGET_DIR; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
  exit 0
fi

need cargo
cd "$repo"
if [ "$mode" = build ]; then
  # candle 0.11.1 links cudarc with `dynamic-linking`: the binaries link the driver's libcuda and
  # CUDA's nvrtc, curand, cublas and cublasLt, which the wheels above do not provide (libcuda
  # comes only with a driver). Where the linker finds none, link against stubs that define every
  # function cudarc declares, under the real libraries' sonames: the binaries then load the real
  # ones (CUDA 13 and a driver) at run time, as with a toolkit's own stubs.
  need cc
  cudarc=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10/src 2>/dev/null | head -n1 || true)
  stubs="$toolkit/link-stubs"
  for spec in driver:cuda:1 nvrtc:nvrtc:13 curand:curand:10 cublas:cublas:13 cublaslt:cublasLt:13; do
    IFS=: read -r mod lib so <<<"$spec"
    echo 'int main(void) { return 0; }' | cc -x c - -o /dev/null "-l$lib" 2>/dev/null && continue
    if [ ! -f "$stubs/lib$lib.so" ]; then
      [ -n "$cudarc" ] || die "--build: lib$lib.so not found, and no cudarc 0.19.10 sources to make a stub from (run \`cargo fetch\`)"
      mkdir -p "$stubs"
      grep -rhoE "pub unsafe fn [A-Za-z_0-9]+\(" "$cudarc/$mod/sys/" | sed -E 's/pub unsafe fn ([A-Za-z_0-9]+)\(/void \1(void) {}/' |
        sort -u > "$stubs/$lib.c"
      cc -shared -fPIC "$stubs/$lib.c" -o "$stubs/lib$lib.so.part" "-Wl,-soname,lib$lib.so.$so" || die "cannot build the lib$lib stub"
      mv "$stubs/lib$lib.so.part" "$stubs/lib$lib.so"
    fi
    echo "check-cuda-build: lib$lib.so not found: linking against a stub (needs the real lib$lib.so.$so at run time)" >&2
    export LIBRARY_PATH="$stubs:$LIBRARY_PATH"
  done
  set -x
  cargo build --release --workspace --all-targets --features cuda ${cargo_args[@]+"${cargo_args[@]}"}
else
  set -x
  cargo check --workspace --all-targets --features cuda,nccl ${cargo_args[@]+"${cargo_args[@]}"}
fi
