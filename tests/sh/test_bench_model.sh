#!/usr/bin/env bash
# test_bench_model.sh — `spillway-bench model` runs on a synthetic model and
# prints the JSON fields the benchmark results need; the dispatcher rejects
# unknown subcommands with exit 2. (Numbers are not checked: performance is
# proven by benchmarks, not by tests; the kernels subcommand has its own
# test_bench_kernels.sh.)
set -u

BIN="${SW_BIN_DIR:-}"
TMP="${SW_TMP_DIR:-/tmp}"
BENCH="$BIN/spillway-bench"
MK="$BIN/spillway-mkmodel"
if [[ -z "$BIN" || ! -x "$BENCH" || ! -x "$MK" ]]; then
    echo "SKIP: spillway-bench or spillway-mkmodel is not built (SW_BIN_DIR='$BIN')"
    exit 77
fi
mkdir -p "$TMP"
fails=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }

"$BENCH" >/dev/null 2>&1
rc=$?
if [[ $rc -eq 2 ]]; then pass "no subcommand -> 2"; else fail "no subcommand -> $rc"; fi
"$BENCH" frobnicate >/dev/null 2>&1
rc=$?
if [[ $rc -eq 2 ]]; then pass "unknown subcommand -> 2"; else fail "unknown subcommand -> $rc"; fi
"$BENCH" model --bogus 1 >/dev/null 2>&1
rc=$?
if [[ $rc -eq 2 ]]; then pass "model --bogus -> 2"; else fail "model --bogus -> $rc"; fi
"$BENCH" model -m x -b 0 >/dev/null 2>&1
rc=$?
if [[ $rc -eq 2 ]]; then pass "model -b 0 -> 2"; else fail "model -b 0 -> $rc"; fi

MODEL="$TMP/test_bench_model-tiny.gguf"
if ! "$MK" -o "$MODEL" --shape tiny --type q4_0 >/dev/null 2>&1; then
    fail "spillway-mkmodel could not write $MODEL"
else
    out=$("$BENCH" model -m "$MODEL" -p 16 -n 4 --reps 2 --backend cpu --threads 1 --json 2>"$TMP/bench.err")
    rc=$?
    if [[ $rc -ne 0 ]]; then
        fail "bench model --json exited $rc: $(tail -3 "$TMP/bench.err")"
    elif command -v python3 >/dev/null 2>&1; then
        if python3 -c '
import json, sys
d = json.loads(sys.argv[1])
for k in ("model", "backend", "threads", "n_prompt", "n_gen", "weight_bytes", "pp_tok_s", "tg_tok_s", "tg_gbps"):
    assert k in d, k
assert d["backend"] == "cpu" and d["threads"] == 1 and d["n_prompt"] == 16 and d["n_gen"] == 4
assert d["pp_tok_s"] > 0 and d["tg_tok_s"] > 0 and d["weight_bytes"] > 0
assert abs(d["tg_gbps"] - d["weight_bytes"] * d["tg_tok_s"] / 1e9) < 1e-6 * max(1, d["tg_gbps"])
assert len(d["pp_tok_s_reps"]) == 2 and len(d["tg_tok_s_reps"]) == 2
# the counters: every op of a step is one of the layer ops (at most 10) or
# one of the five around them; the block tables have a fixed width, so every
# decode step of a generation has the same signature
assert d["batch"] == 1 and d["n_layer"] == 2
ops = d["ops_per_decode_step"]
assert ops > 5 and (ops - 5) % d["n_layer"] == 0 and (ops - 5) // d["n_layer"] <= 10
assert d["step_signatures"] == 1
' "$out"; then pass "bench model --json fields"; else fail "bench model --json: $out"; fi
        out=$("$BENCH" model -m "$MODEL" -p 0 -n 20 -b 4 --reps 1 --backend cpu --threads 1 --json 2>"$TMP/bench.err")
        if python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["batch"] == 4 and d["step_signatures"] == 1 and d["tg_tok_s"] > 0
' "$out"; then pass "bench model --batch 4"; else fail "bench model --batch 4: $out $(tail -3 "$TMP/bench.err")"; fi
    else
        if grep -q '"tg_tok_s"' <<<"$out"; then pass "bench model --json"; else fail "bench model --json: $out"; fi
    fi
    "$BENCH" model -m "$MODEL" -p 8 -n 2 --reps 1 --backend cpu --threads 1 >"$TMP/bench.out" 2>&1
    if grep -q "pp8" "$TMP/bench.out" && grep -q "tg2" "$TMP/bench.out"; then
        pass "bench model table"
    else
        fail "bench model table: $(cat "$TMP/bench.out")"
    fi
fi

if [[ $fails -gt 0 ]]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
