#!/usr/bin/env bash
# Remakes tests/fixtures/loss_parity.json: the Rust test writes the run's initial model and
# batches, transformers trains on them (scripts/loss_parity.py), the losses become the fixture.
# Needs a Python with torch and transformers, e.g. a throw-away venv:
#   python3 -m venv /tmp/parity && /tmp/parity/bin/pip install torch transformers safetensors
#   PYTHON=/tmp/parity/bin/python scripts/loss-parity.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3}"
dump="$(mktemp -d)"
trap 'rm -rf "$dump"' EXIT
# The test fails against an old fixture; what matters here is the dump it writes first.
FINETUNE_PARITY_DUMP="$dump" cargo test --workspace --test loss_parity >/dev/null 2>&1 || true
test -f "$dump/plan.safetensors" || { echo "the test wrote no plan into $dump" >&2; exit 1; }
"$PYTHON" scripts/loss_parity.py "$dump" > tests/fixtures/loss_parity.json
echo "wrote tests/fixtures/loss_parity.json"
