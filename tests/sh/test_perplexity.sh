#!/usr/bin/env bash
# test_perplexity.sh — spillway-perplexity: bad command lines (exit 2), bad
# inputs (exit 1 with a message naming the problem), PPL on synthetic llama and
# gemma3 models against llama-perplexity's figures for the same files and text
# (tests/data/ppl-synthetic.json, within 1%), the text report's shape, and the
# KL-divergence files: a model against itself (KL 0, top-1 100%), an f32 model
# against its q8_0 quantization (KL > 0 and small, top-1 >= 90%), a vocabulary
# mismatch and a truncated file refused. Real models: tests/sh/test_real_models.sh.
set -u

BIN="${SW_BIN_DIR:-}"
TMP="${SW_TMP_DIR:-/tmp}"
SRC="${SW_SOURCE_DIR:-$(cd "$(dirname "$0")/../.." && pwd)}"
PPL="$BIN/spillway-perplexity"
MK="$BIN/spillway-mkmodel"
TEXT="$SRC/tests/data/ppl-text.txt"
REF="$SRC/tests/data/ppl-synthetic.json"

if [[ -z "$BIN" || ! -x "$PPL" || ! -x "$MK" ]]; then
    echo "SKIP: spillway-perplexity / spillway-mkmodel not built (SW_BIN_DIR='$BIN')"
    exit 77
fi
if ! command -v python3 >/dev/null 2>&1; then
    echo "SKIP: python3 is needed to read the JSON outputs"
    exit 77
fi
mkdir -p "$TMP"
fails=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
run() {
    "$@" >"$TMP/ppl.out" 2>"$TMP/ppl.err"
    rc=$?
}

# ---- bad command lines: exit 2 --------------------------------------------------
for args in "--bogus" "-m" "-f x" "-m x.gguf" "-m x.gguf -f t -c 2" "-m x.gguf -f t -c abc" \
            "-m x.gguf -f t --chunks 0" "-m x.gguf --kl-divergence" "-m x.gguf -f t extra"; do
    # shellcheck disable=SC2086
    run "$PPL" $args
    if [[ $rc -eq 2 ]]; then pass "bad flags ($args) -> 2"; else fail "bad flags ($args) -> $rc"; fi
done

# ---- synthetic models ---------------------------------------------------------------
mk() { # name flags...
    local out="$TMP/ppl-$1.gguf"
    shift
    "$MK" -o "$out" "$@" >/dev/null 2>&1 || { fail "mkmodel $*"; return 1; }
    echo "$out"
}
TINY=$(mk tiny-f32 --shape tiny --type f32) || exit 1
TINYQ=$(mk tiny-q8_0 --shape tiny --type q8_0) || exit 1

# against llama-perplexity's figures for the same files
n=$(python3 -c "import json,sys; print(len(json.load(open(sys.argv[1]))['cases']))" "$REF")
for ((i = 0; i < n; i++)); do
    read -r flags ctx chunks < <(python3 -c "import json,sys; c=json.load(open(sys.argv[1]))['cases'][int(sys.argv[2])]; print(c['mkmodel'].replace(' ', ','), c['ctx'], c['chunks'])" "$REF" "$i")
    # shellcheck disable=SC2086
    model=$(mk "ref$i" ${flags//,/ }) || continue
    run "$PPL" -m "$model" -f "$TEXT" -c "$ctx" --chunks "$chunks" --threads 2 --backend cpu --json
    if [[ $rc -ne 0 ]]; then
        fail "${flags//,/ }: exit $rc: $(tail -2 "$TMP/ppl.err")"
        continue
    fi
    if python3 - "$TMP/ppl.out" "$REF" "$i" <<'PY'
import json, math, sys
out = json.load(open(sys.argv[1]))
ref = json.load(open(sys.argv[2]))["cases"][int(sys.argv[3])]
assert out["n_ctx"] == ref["ctx"] and out["n_chunks"] == ref["chunks"], out
assert out["n_scored"] == ref["chunks"] * (ref["ctx"] - 1 - ref["ctx"] // 2), out
r = out["ppl"] / ref["ppl"]
print(f"  ppl {out['ppl']:.6g} +/- {out['ppl_err']:.4g}, llama.cpp {ref['ppl']:.6g}: ratio {r:.6f}")
assert abs(r - 1) < 0.01, r
assert abs(out["ppl_err"] / ref["ppl_err"] - 1) < 0.05
assert abs(math.log(out["ppl"]) - out["mean_nll"]) < 1e-9 * out["mean_nll"]
PY
    then pass "${flags//,/ }: PPL within 1% of llama-perplexity"; else fail "${flags//,/ }: PPL vs llama-perplexity"; fi
done

# text report
run "$PPL" -m "$TINY" -f "$TEXT" -c 64 --chunks 2 --threads 2 --backend cpu
if [[ $rc -eq 0 ]] && grep -Eq '^PPL = [0-9.]+ \+/- [0-9.]+$' "$TMP/ppl.out" &&
   grep -q '^62 tokens scored in 2 chunks of 64$' "$TMP/ppl.out"; then
    pass "text report: PPL = x +/- y"
else
    fail "text report: rc $rc: $(cat "$TMP/ppl.out") $(tail -2 "$TMP/ppl.err")"
fi

# ---- KL divergence ----------------------------------------------------------------
KL="$TMP/ppl-tiny.kl"
run "$PPL" -m "$TINY" -f "$TEXT" -c 64 --chunks 3 --threads 2 --backend cpu --kl-divergence-base "$KL"
if [[ $rc -eq 0 && -s "$KL" ]]; then pass "KL base written"; else fail "KL base: rc $rc $(tail -2 "$TMP/ppl.err")"; fi
kl_check() { # model what python-condition
    run "$PPL" -m "$1" --threads 2 --backend cpu --kl-divergence-base "$KL" --kl-divergence --json
    if [[ $rc -ne 0 ]]; then
        fail "$2: exit $rc: $(tail -2 "$TMP/ppl.err")"
        return
    fi
    if python3 - "$TMP/ppl.out" "$3" <<'PY'
import json, sys
o = json.load(open(sys.argv[1])); k = o["kl_divergence"]
print(f"  mean KL {k['mean']:.6g} +/- {k['mean_err']:.3g}, same top {100 * k['same_top']:.2f}%,"
      f" ppl {o['ppl']:.6g} vs base {k['ppl_base']:.6g}")
assert o["n_chunks"] == 3 and o["n_scored"] == 3 * 31, o
assert eval(sys.argv[2], {"k": k, "o": o}), sys.argv[2]
PY
    then pass "$2"; else fail "$2"; fi
}
kl_check "$TINY" "KL of a model against itself is 0, top-1 agrees everywhere" \
    'abs(k["mean"]) < 1e-6 and k["same_top"] == 1.0 and abs(o["ppl"] / k["ppl_base"] - 1) < 1e-6'
kl_check "$TINYQ" "KL f32 -> q8_0: positive and small, top-1 mostly agrees" \
    '0 < k["mean"] < 0.05 and k["same_top"] >= 0.9'
# the same text given with -f must tokenize the same
run "$PPL" -m "$TINY" -f "$TEXT" --threads 2 --backend cpu --kl-divergence-base "$KL" --kl-divergence
if [[ $rc -eq 0 ]] && grep -q '^Mean KLD = ' "$TMP/ppl.out" && grep -q '^Same top = 100.000%' "$TMP/ppl.out"; then
    pass "KL text report (with -f)"
else
    fail "KL text report: rc $rc: $(cat "$TMP/ppl.out") $(tail -2 "$TMP/ppl.err")"
fi

# ---- bad inputs: exit 1 with a message ---------------------------------------------
printf 'a few words only\n' >"$TMP/ppl-short.txt"
run "$PPL" -m "$TINY" -f "$TMP/ppl-short.txt" -c 64 --threads 2 --backend cpu
if [[ $rc -eq 1 ]] && grep -q 'needs at least 128' "$TMP/ppl.err"; then pass "too short a text"; else fail "short text: rc $rc: $(cat "$TMP/ppl.err")"; fi
OTHER=$(mk tiny-v600 --shape tiny --type f32 --vocab 600) || exit 1
run "$PPL" -m "$OTHER" --threads 2 --backend cpu --kl-divergence-base "$KL" --kl-divergence
if [[ $rc -eq 1 ]] && grep -q 'vocabulary of 512, the model 600' "$TMP/ppl.err"; then
    pass "KL base of another vocabulary refused"
else
    fail "KL base of another vocabulary: rc $rc: $(cat "$TMP/ppl.err")"
fi
head -c 3000 "$KL" >"$TMP/ppl-trunc.kl"
run "$PPL" -m "$TINY" --threads 2 --backend cpu --kl-divergence-base "$TMP/ppl-trunc.kl" --kl-divergence
if [[ $rc -eq 1 ]] && grep -q 'truncated' "$TMP/ppl.err"; then pass "truncated KL file"; else fail "truncated KL: rc $rc: $(cat "$TMP/ppl.err")"; fi
printf 'not a kl file at all' >"$TMP/ppl-bad.kl"
run "$PPL" -m "$TINY" --threads 2 --backend cpu --kl-divergence-base "$TMP/ppl-bad.kl" --kl-divergence
if [[ $rc -eq 1 ]] && grep -q 'SWKLBASE\|truncated' "$TMP/ppl.err"; then pass "not a KL file"; else fail "bad KL: rc $rc: $(cat "$TMP/ppl.err")"; fi
run "$PPL" -m "$TMP/no-such-model.gguf" -f "$TEXT"
if [[ $rc -eq 1 ]] && grep -q 'no-such-model' "$TMP/ppl.err"; then pass "missing model"; else fail "missing model: rc $rc"; fi

if [[ $fails -gt 0 ]]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all perplexity checks passed"
