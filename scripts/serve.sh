#!/usr/bin/env bash
# Start spillway-server on a default model. Installs dependencies and builds
# first, so it works on a fresh Debian 12 machine.
#
#   scripts/serve.sh [-m FILE | --hf OWNER/REPO:FILE] [spillway-server flags...]
#
# Model, first found:
#   1. -m FILE / --hf REPO:FILE given on the command line
#   2. models/default.gguf
#   3. a small instruct model downloaded from the Hugging Face hub
#      ($SW_DEFAULT_HF, default Qwen2.5-0.5B-Instruct Q4_K_M, ~0.5 GB) into
#      ~/.cache/spillway (resumable, hash-checked)
#   4. no network: a synthetic demo model made by spillway-mkmodel — it serves,
#      but its weights are random, so its output is noise (and it says so).
# Listens on 127.0.0.1:8080 unless --host/--port are given.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target spillway-server spillway-mkmodel >/dev/null

DEFAULT_HF=${SW_DEFAULT_HF:-Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf}
have_model=0
for a in "$@"; do
  case "$a" in -m|--model|--hf) have_model=1 ;; esac
done

MODEL_ARGS=()
if [ "$have_model" = 0 ]; then
  if [ -f models/default.gguf ]; then
    MODEL_ARGS=(-m models/default.gguf)
  elif curl -sS -o /dev/null --max-time 10 -I https://huggingface.co 2>/dev/null; then
    echo "serve: no models/default.gguf; downloading $DEFAULT_HF" >&2
    MODEL_ARGS=(--hf "$DEFAULT_HF")
  else
    echo "serve: no models/default.gguf and no network to download a model." >&2
    echo "serve: starting on a synthetic demo model — WARNING: its weights are random, its output is noise." >&2
    mkdir -p models
    [ -f models/demo-tiny.gguf ] ||
      build/bin/spillway-mkmodel -o models/demo-tiny.gguf --shape tiny --type q8_0 --seed 1
    MODEL_ARGS=(-m models/demo-tiny.gguf --model-alias demo-noise)
  fi
fi
exec build/bin/spillway-server "${MODEL_ARGS[@]}" "$@"
