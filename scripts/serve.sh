#!/usr/bin/env bash
# Start Spillway on a default model. Installs dependencies and builds first.
#
# Until spillway-server lands, this runs spillway-generate on the model (a
# short story continuation) — the README says so. Model choice, first found:
#   1. -m FILE given on the command line
#   2. models/default.gguf
#   3. ../shared/models/stories260K.gguf (a tiny trained model, when present)
#   4. a synthetic demo model made by spillway-mkmodel (its output is noise)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target spillway-generate spillway-mkmodel >/dev/null

MODEL=""
ARGS=()
while (($#)); do
  case "$1" in
    -m|--model) MODEL="$2"; shift 2 ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ -z "$MODEL" ]; then
  if [ -f models/default.gguf ]; then
    MODEL=models/default.gguf
  elif [ -f ../shared/models/stories260K.gguf ]; then
    MODEL=../shared/models/stories260K.gguf
  else
    mkdir -p models
    echo "serve: no model found (models/default.gguf); making a synthetic demo model." >&2
    echo "serve: WARNING: its weights are random, so its output is noise." >&2
    build/bin/spillway-mkmodel -o models/demo-tiny.gguf --shape tiny --type q8_0 --seed 1
    MODEL=models/demo-tiny.gguf
  fi
fi
echo "serve: model $MODEL (spillway-server is not built yet; running spillway-generate)" >&2
exec build/bin/spillway-generate -m "$MODEL" -p "${SW_PROMPT:-Once upon a time}" -n "${SW_N:-128}" "${ARGS[@]}"
