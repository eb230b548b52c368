#!/usr/bin/env bash
# test_real_models.sh — perplexity of the real models (SmolLM2-135M-Instruct,
# Gemma 3 270M; scripts/fetch-model.sh) on tests/data/ppl-text.txt, two
# chunks of 256, within 1% of llama-perplexity's figure for the same file and
# text (tests/data/real-models.json). A model that cannot be fetched is
# skipped with the script's reason; the test skips when neither can be.
# The rest of the real-model tier: tests/unit/test_real_models.c.
set -u

BIN="${SW_BIN_DIR:-}"
TMP="${SW_TMP_DIR:-/tmp}"
SRC="${SW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
PPL="$BIN/spillway-perplexity"
REF="$SRC/tests/data/real-models.json"

if [[ -z "$BIN" || ! -x "$PPL" ]]; then
    echo "SKIP: spillway-perplexity is not built (SW_BIN_DIR='$BIN')"
    exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is needed to read the JSON outputs"
    exit 77
fi
if [[ -n "${ASAN_OPTIONS:-}" ]]; then
    # a Debug sanitizer build scores ~10x slower; sh_test_perplexity covers the
    # same code on synthetic models there, and the Release suite runs this
    echo "SKIP: sanitizer build (ASAN_OPTIONS set): real-model perplexity runs in the Release suite"
    exit 77
fi
mkdir -p "$TMP"
fails=0
ran=0
reasons=""
for name in smollm2 gemma3; do
    if ! model=$("$SRC/scripts/fetch-model.sh" "$name" 2>"$TMP/fetch.err"); then
        why="$(tail -1 "$TMP/fetch.err")"
        echo "skip $name: $why"
        reasons="$reasons $name: $why;"
        continue
    fi
    model=$(printf '%s\n' "$model" | tail -1)
    read -r ctx chunks < <(python3 -c "import json,sys; p=json.load(open(sys.argv[1]))[sys.argv[2]]['perplexity'][0]; print(p['ctx'], p['chunks'])" "$REF" "$name")
    "$PPL" -m "$model" -f "$SRC/tests/data/ppl-text.txt" -c "$ctx" --chunks "$chunks" --threads 2 \
        --backend cpu --json >"$TMP/real-ppl.out" 2>"$TMP/real-ppl.err"
    rc=$?
    ran=$((ran + 1))
    if [[ $rc -ne 0 ]]; then
        echo "FAIL $name: exit $rc: $(tail -2 "$TMP/real-ppl.err")"
        fails=$((fails + 1))
        continue
    fi
    if python3 - "$TMP/real-ppl.out" "$REF" "$name" <<'PY'
import json, sys
out = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))[sys.argv[3]]["perplexity"][0]
r = out["ppl"] / ref["ppl"]
print(f"  {sys.argv[3]}: PPL {out['ppl']:.4f} +/- {out['ppl_err']:.4f}, llama.cpp {ref['ppl']:.4f}"
      f" +/- {ref['ppl_err']:.4f} ({ref['chunks']} chunks of {ref['ctx']}): ratio {r:.5f}")
assert out["n_chunks"] == ref["chunks"] and out["n_ctx"] == ref["ctx"]
assert abs(r - 1) < 0.01
PY
    then echo "ok   $name: perplexity within 1% of llama-perplexity"
    else echo "FAIL $name: perplexity"; fails=$((fails + 1)); fi
done
if [[ $ran -eq 0 ]]; then
    echo "SKIP:$reasons"
    exit 77
fi
[[ $fails -eq 0 ]] || exit 1
echo "all real-model perplexity checks passed"
