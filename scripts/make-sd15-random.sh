#!/usr/bin/env bash
# A full-size SD 1.5 ONNX folder with random weights (scripts/make-sd15-random.py), to measure a worker's
# memory and speed without downloading weights (docs/memory.md):
#
#   bash scripts/make-sd15-random.sh OUT_DIR [DIFFUSERS_SRC]
#
# DIFFUSERS_SRC: a folder holding diffusers' Python package (a checkout's src/ folder), used when pip
# cannot install diffusers (e.g. behind a wheel mirror without it). Keep that checkout outside this
# repository. torch, transformers and onnx come from pip. Needs ~6 GB of memory, ~4 GB of disk and
# some minutes; the venv lives in $PAIRGEN_CACHE/sd15-venv (default .cache/sd15-venv).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: make-sd15-random.sh OUT_DIR [DIFFUSERS_SRC]}
SRC=${2:-}
CACHE=${PAIRGEN_CACHE:-$ROOT/.cache}
VENV=$CACHE/sd15-venv
PYTHON=${PYTHON:-python3}

[[ -d $VENV ]] || "$PYTHON" -m venv "$VENV"
# diffusers' own install requirements, less diffusers when its source is given.
DEPS=(torch transformers onnx onnxscript safetensors "huggingface-hub>=1.23" regex filelock pillow importlib_metadata requests httpx numpy)
[[ -n $SRC ]] || DEPS+=(diffusers)
"$VENV/bin/python" -m pip install --quiet --retries 1 --timeout 15 "${DEPS[@]}"
if [[ -n $SRC ]]; then
  [[ -f $SRC/diffusers/__init__.py ]] || { echo "make-sd15-random: $SRC has no diffusers/__init__.py (give the src/ folder of a diffusers checkout)" >&2; exit 2; }
  export PYTHONPATH=$SRC${PYTHONPATH:+:$PYTHONPATH}
fi
nice "$VENV/bin/python" "$ROOT/scripts/make-sd15-random.py" "$OUT"
