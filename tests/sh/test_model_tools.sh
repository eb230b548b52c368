#!/usr/bin/env bash
# test_model_tools.sh — spillway-mkmodel and spillway-quantize, checked from the
# outside: tensor types and metadata through spillway-gguf, and (when the
# project's Python venv is there) the numbers through the independent `gguf`
# Python package: the quantized weights must dequantize back to the f32 input.
set -u

BIN=${SW_BIN_DIR:-}
if [ -z "$BIN" ]; then echo "SKIP: SW_BIN_DIR is not set"; exit 77; fi
MK=$BIN/spillway-mkmodel
QZ=$BIN/spillway-quantize
GG=$BIN/spillway-gguf
for b in "$MK" "$QZ" "$GG"; do
    if [ ! -x "$b" ]; then echo "SKIP: $b is not built"; exit 77; fi
done
TMP=$(mktemp -d "${SW_TMP_DIR:-/tmp}/model_tools.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
PY=""
if [ -n "${SW_SOURCE_DIR:-}" ] && [ -x "$SW_SOURCE_DIR/.venv/bin/python" ]; then
    PY=$SW_SOURCE_DIR/.venv/bin/python
fi

failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

# type of tensor $2 in file $1, as spillway-gguf prints it
ttype() {
    "$GG" "$1" | awk -v n="$2" '{ for (i = 1; i < NF; i++) if ($i == n) { print $(i + 1); exit } }'
}
# value of scalar key $2 in file $1
kval() {
    "$GG" "$1" | awk -v k="$2" '{ for (i = 1; i < NF; i++) if ($i == k) { print $NF; exit } }'
}
expect_type() { # file tensor want
    local got
    got=$(ttype "$1" "$2")
    if [ "$got" = "$3" ]; then ok "$(basename "$1") $2 is $3"; else fail "$(basename "$1") $2: want $3, got '$got'"; fi
}
# the metadata section in full, without indices and the file-type keys
meta() {
    "$GG" "$1" --all | awk '/^metadata:/ { m = 1; next } /^tensors:/ { m = 0 } m' |
        sed 's/^ *\[ *[0-9]*\] //' | grep -v '^general\.\(file_type\|quantization_version\) ' | sort
}
expect_key() { # file key want
    local got
    got=$(kval "$1" "$2")
    if [ "$got" = "$3" ]; then ok "$(basename "$1") $2 = $3"; else fail "$(basename "$1") $2: want $3, got '$got'"; fi
}

# ---- mkmodel is quiet unless asked ----------------------------------------------
"$MK" -o "$TMP/quiet.gguf" --shape tiny --type q4_0 >"$TMP/mk.out" 2>"$TMP/mk.err"
if [ $? -eq 0 ] && [ ! -s "$TMP/mk.out" ] && [ ! -s "$TMP/mk.err" ]; then ok "mkmodel is quiet by default"
else fail "mkmodel printed: $(head -3 "$TMP/mk.out" "$TMP/mk.err")"; fi
"$MK" -o "$TMP/quiet.gguf" --shape tiny --type q4_0 -v 2>"$TMP/mk.err"
if grep -q "token_embd.weight" "$TMP/mk.err" && grep -q "wrote" "$TMP/mk.err"; then ok "mkmodel -v lists tensors"
else fail "mkmodel -v: $(head -3 "$TMP/mk.err")"; fi

# ---- mkmodel: tiny in every type ------------------------------------------------
# type flag -> ggml name of a plain weight, and llama.cpp general.file_type
declare -A GGML=([f32]=f32 [f16]=f16 [bf16]=bf16 [q4_0]=q4_0 [q4_1]=q4_1 [q5_0]=q5_0 [q5_1]=q5_1
                 [q8_0]=q8_0 [q2_k]=q2_K [q3_k]=q3_K [q4_k]=q4_K [q5_k]=q5_K [q6_k]=q6_K [q4_k_m]=q4_K)
declare -A FTYPE=([f32]=0 [f16]=1 [bf16]=32 [q4_0]=2 [q4_1]=3 [q5_0]=8 [q5_1]=9
                  [q8_0]=7 [q2_k]=10 [q3_k]=11 [q4_k]=14 [q5_k]=16 [q6_k]=18 [q4_k_m]=15)
for t in f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k q4_k_m; do
    out=$TMP/tiny-$t.gguf
    if ! "$MK" -o "$out" --shape tiny --type "$t" 2>"$TMP/mk.err"; then
        fail "mkmodel --type $t failed: $(tail -3 "$TMP/mk.err")"
        continue
    fi
    want=${GGML[$t]}
    expect_type "$out" blk.0.attn_q.weight "$want"
    expect_type "$out" blk.1.ffn_gate.weight "$want"
    expect_type "$out" token_embd.weight "$want"
    expect_type "$out" blk.0.attn_norm.weight f32
    expect_type "$out" output_norm.weight f32
    expect_key "$out" general.file_type "${FTYPE[$t]}"
    if [ "$t" = q4_k_m ]; then
        # 2 layers: llama.cpp's rule gives more bits to layer 1 (>= 7*2/8) only
        expect_type "$out" output.weight q6_K
        expect_type "$out" blk.0.attn_v.weight q4_K
        expect_type "$out" blk.1.attn_v.weight q6_K
        expect_type "$out" blk.0.ffn_down.weight q4_K
        expect_type "$out" blk.1.ffn_down.weight q6_K
    else
        expect_type "$out" output.weight "$want"
    fi
done
expect_key "$TMP/tiny-f32.gguf" llama.block_count 2
expect_key "$TMP/tiny-f32.gguf" llama.embedding_length 256
expect_key "$TMP/tiny-f32.gguf" llama.attention.head_count 4
expect_key "$TMP/tiny-f32.gguf" llama.attention.head_count_kv 2
expect_key "$TMP/tiny-f32.gguf" llama.feed_forward_length 512
expect_key "$TMP/tiny-f32.gguf" llama.context_length 512
expect_key "$TMP/tiny-f32.gguf" tokenizer.ggml.model '"llama"'
if "$GG" "$TMP/tiny-f32.gguf" | grep -q 'tokenizer.ggml.tokens.*n=512 \["<unk>", "<s>", "</s>", "<0x00>"'; then
    ok "generated vocab has 512 tokens starting <unk> <s> </s> <0x00>"
else
    fail "generated vocab listing unexpected"
fi

# the generated vocab is usable by our tokenizer: words split into pieces, no <unk>
TK=$BIN/spillway-tokenize
if [ -x "$TK" ]; then
    ids=$("$TK" -m "$TMP/tiny-f32.gguf" -p "Hello world, abc xyz!" 2>&1)
    if [ $? -eq 0 ] && [ -n "$ids" ] && ! echo " $ids " | grep -q ' 0 '; then ok "generated vocab tokenizes: $ids"
    else fail "spillway-tokenize on the generated vocab: '$ids'"; fi
fi

# ---- determinism and seeds --------------------------------------------------------
"$MK" -o "$TMP/a.gguf" --type q4_0 --seed 7 2>/dev/null
"$MK" -o "$TMP/b.gguf" --type q4_0 --seed 7 2>/dev/null
"$MK" -o "$TMP/c.gguf" --type q4_0 --seed 8 2>/dev/null
if cmp -s "$TMP/a.gguf" "$TMP/b.gguf"; then ok "same seed, same bytes"; else fail "same seed gave different files"; fi
if cmp -s "$TMP/a.gguf" "$TMP/c.gguf"; then fail "different seeds gave identical files"; else ok "different seed, different bytes"; fi
# rows are shared out among threads: the bytes must not depend on how many
"$MK" -o "$TMP/t1.gguf" --type q4_k_m --threads 1 2>/dev/null
"$MK" -o "$TMP/t3.gguf" --type q4_k_m --threads 3 2>/dev/null
if [ -s "$TMP/t1.gguf" ] && cmp -s "$TMP/t1.gguf" "$TMP/t3.gguf"; then ok "mkmodel output independent of --threads"
else fail "mkmodel --threads 1 and 3 differ"; fi
"$QZ" --threads 1 "$TMP/tiny-f32.gguf" "$TMP/u1.gguf" q5_k >/dev/null 2>&1
"$QZ" --threads 3 "$TMP/tiny-f32.gguf" "$TMP/u3.gguf" q5_k >/dev/null 2>&1
if [ -s "$TMP/u1.gguf" ] && cmp -s "$TMP/u1.gguf" "$TMP/u3.gguf"; then ok "quantize output independent of --threads"
else fail "quantize --threads 1 and 3 differ"; fi

# ---- flag overrides, qwen2 ----------------------------------------------------------
if "$MK" -o "$TMP/qwen.gguf" --arch qwen2 --type q8_0 --layers 3 --ff 768 --rope-base 20000 2>"$TMP/mk.err"; then
    expect_key "$TMP/qwen.gguf" general.architecture '"qwen2"'
    expect_key "$TMP/qwen.gguf" qwen2.block_count 3
    expect_key "$TMP/qwen.gguf" qwen2.feed_forward_length 768
    expect_key "$TMP/qwen.gguf" qwen2.rope.freq_base 20000
    expect_type "$TMP/qwen.gguf" blk.2.attn_q.bias f32
    expect_type "$TMP/qwen.gguf" blk.2.attn_k.bias f32
    expect_type "$TMP/qwen.gguf" blk.2.attn_v.weight q8_0
    expect_type "$TMP/qwen.gguf" blk.2.ffn_down.weight q8_0
else
    fail "mkmodel qwen2 failed: $(tail -3 "$TMP/mk.err")"
fi
# rows of 96 do not fit 256-blocks: like llama.cpp, q4_K falls back to q5_0,
# q5_K to q5_1 and q6_K to q8_0 there
for fb in q4_k:q4_K:q5_0 q5_k:q5_K:q5_1 q6_k:q6_K:q8_0; do
    IFS=: read -r t kt st <<<"$fb"
    if "$MK" -o "$TMP/fb.gguf" --type "$t" --ff 96 2>"$TMP/mk.err"; then
        expect_type "$TMP/fb.gguf" blk.0.ffn_down.weight "$st"
        expect_type "$TMP/fb.gguf" blk.0.ffn_gate.weight "$kt"
    else
        fail "mkmodel --type $t --ff 96 failed: $(tail -3 "$TMP/mk.err")"
    fi
done
# q4_k_m with tied embeddings: token_embd is also the output, so q6_K like
# output.weight in llama.cpp's mixture; spillway-quantize of the f32 file agrees
if "$MK" -o "$TMP/tied-f32.gguf" --tied 2>"$TMP/mk.err" &&
    "$MK" -o "$TMP/tied-q4km.gguf" --tied --type q4_k_m 2>"$TMP/mk.err" &&
    "$QZ" "$TMP/tied-f32.gguf" "$TMP/tied-q4km-qz.gguf" q4_k_m >/dev/null 2>"$TMP/mk.err"; then
    expect_type "$TMP/tied-q4km.gguf" token_embd.weight q6_K
    expect_type "$TMP/tied-q4km-qz.gguf" token_embd.weight q6_K
    expect_type "$TMP/tied-q4km-qz.gguf" blk.0.attn_q.weight q4_K
else
    fail "tied q4_k_m: $(tail -3 "$TMP/mk.err")"
fi
# tied embeddings and llama3 rope factors
if "$MK" -o "$TMP/tied.gguf" --tied --rope-freqs --rope-base 500000 2>"$TMP/mk.err"; then
    if [ -z "$(ttype "$TMP/tied.gguf" output.weight)" ]; then ok "--tied: no output.weight"; else fail "--tied wrote output.weight"; fi
    expect_type "$TMP/tied.gguf" rope_freqs.weight f32
else
    fail "mkmodel --tied failed: $(tail -3 "$TMP/mk.err")"
fi

# ---- --vocab-from -------------------------------------------------------------------
STORIES=${SW_SHARED_DIR:-/nonexistent}/models/stories260K.gguf
if [ -r "$STORIES" ]; then
    if "$MK" -o "$TMP/vf.gguf" --vocab-from "$STORIES" --type q4_k 2>"$TMP/mk.err"; then
        expect_key "$TMP/vf.gguf" llama.vocab_size 512
        # every tokenizer key identical, in full
        "$GG" "$STORIES" --all | grep -o 'tokenizer\..*' | sort >"$TMP/src.tok"
        "$GG" "$TMP/vf.gguf" --all | grep -o 'tokenizer\..*' | sort >"$TMP/dst.tok"
        if [ -s "$TMP/src.tok" ] && cmp -s "$TMP/src.tok" "$TMP/dst.tok"; then
            ok "--vocab-from copied $(wc -l <"$TMP/src.tok") tokenizer keys unchanged"
        else
            fail "--vocab-from tokenizer keys differ: $(diff "$TMP/src.tok" "$TMP/dst.tok" | head -5)"
        fi
    else
        fail "mkmodel --vocab-from failed: $(tail -3 "$TMP/mk.err")"
    fi
else
    echo "note: $STORIES not available, --vocab-from and stories quantize checks skipped"
fi

# ---- bad flags exit 2 with a message --------------------------------------------------
bad_flag() {
    "$MK" "$@" >/dev/null 2>"$TMP/bad.err"
    local rc=$?
    if [ $rc -eq 2 ] && [ -s "$TMP/bad.err" ]; then ok "rejected: $* ($(head -1 "$TMP/bad.err"))"
    else fail "mkmodel $* exited $rc (want 2 and a message)"; fi
}
bad_flag -o "$TMP/x.gguf" --type q9_9
bad_flag -o "$TMP/x.gguf" --shape huge
bad_flag -o "$TMP/x.gguf" --layers abc
bad_flag -o "$TMP/x.gguf" --layers 0
bad_flag -o "$TMP/x.gguf" --heads 3
bad_flag -o "$TMP/x.gguf" --kv-heads 3
bad_flag -o "$TMP/x.gguf" --vocab 100
bad_flag -o "$TMP/x.gguf" --bogus 1
bad_flag --type q4_0
if [ -e "$TMP/x.gguf" ]; then fail "a rejected command line still wrote a file"; fi

# ---- quantize ---------------------------------------------------------------------------
if [ -r "$STORIES" ]; then
    for t in q8_0 q4_0; do
        out=$TMP/stories-$t.gguf
        if ! "$QZ" "$STORIES" "$out" "$t" >"$TMP/q.out" 2>"$TMP/q.err"; then
            fail "quantize stories $t failed: $(tail -3 "$TMP/q.err")"
            continue
        fi
        expect_type "$out" blk.0.attn_q.weight "$t"
        expect_type "$out" token_embd.weight "$t"
        expect_type "$out" output.weight "$t"
        expect_type "$out" blk.4.ffn_gate.weight "$t"
        # ne0 = 172 is not a multiple of 32: f16, and the tool says so
        expect_type "$out" blk.0.ffn_down.weight f16
        expect_type "$out" blk.4.ffn_down.weight f16
        expect_type "$out" blk.0.attn_norm.weight f32
        if grep -q 'blk.0.ffn_down.weight.*f16.*fallback' "$TMP/q.out"; then ok "fallback of ffn_down reported"
        else fail "quantize $t did not report the ffn_down fallback"; fi
        if grep -q "tensor data .* -> " "$TMP/q.out"; then ok "sizes reported"
        else fail "quantize $t did not report sizes"; fi
        # all metadata kept: every key but the file type lines is identical
        meta "$STORIES" >"$TMP/k1"
        meta "$out" >"$TMP/k2"
        if [ -s "$TMP/k1" ] && cmp -s "$TMP/k1" "$TMP/k2"; then ok "quantize $t kept all $(wc -l <"$TMP/k1") other keys"
        else fail "quantize $t changed metadata: $(diff "$TMP/k1" "$TMP/k2" | head -4)"; fi
    done
    expect_key "$TMP/stories-q8_0.gguf" general.file_type 7
    expect_key "$TMP/stories-q4_0.gguf" general.file_type 2

    # the numbers: dequantize with the gguf Python package and compare to the f32 input
    if [ -n "$PY" ]; then
        if "$PY" - "$STORIES" "$TMP/stories-q8_0.gguf" "$TMP/stories-q4_0.gguf" <<'EOF'
import sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

src = {t.name: t for t in GGUFReader(sys.argv[1]).tensors}
# RMS error relative to the weights' RMS, worst tensor, measured: q8_0 0.62%,
# q4_0 9.6%, f16 0.02% (round-to-nearest theory: absmax/(127 or 8)/sqrt(12)).
# A misplaced row or block gives ~140%, so the limits leave ~1.4x headroom only.
limits = {"Q8_0": 0.009, "Q4_0": 0.13, "F16": 0.0003, "F32": 0.0}
bad = 0
for path in sys.argv[2:]:
    for t in GGUFReader(path).tensors:
        ref = np.asarray(src[t.name].data, dtype=np.float32).reshape(-1)
        got = dequantize(t.data, t.tensor_type).astype(np.float32).reshape(-1)
        if got.shape != ref.shape:
            print(f"{path}: {t.name}: {got.shape} values, want {ref.shape}")
            bad += 1
            continue
        rel = float(np.sqrt(np.mean((got - ref) ** 2)) / (np.sqrt(np.mean(ref ** 2)) + 1e-30))
        lim = limits[t.tensor_type.name]
        if rel > lim:
            print(f"{path}: {t.name} ({t.tensor_type.name}): relative RMS error {rel:.4g} > {lim}")
            bad += 1
print("checked", sum(1 for _ in src), "tensors per file;", bad, "bad")
sys.exit(1 if bad else 0)
EOF
        then ok "quantized stories dequantizes back to the f32 weights (gguf package)"
        else fail "quantized stories values do not match the f32 input"; fi
    else
        echo "note: no .venv python, numeric check of quantize skipped"
    fi
fi

# every type, both tools: spillway-quantize of the f32 tiny model must give the
# same tensor bytes as mkmodel --type (one generator, one conversion path), and
# dequantized by the gguf package those must be close to the f32 weights.
if [ -n "$PY" ] && [ -s "$TMP/tiny-f32.gguf" ]; then
    qok=1
    for t in f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q2_k q3_k q4_k q5_k q6_k q4_k_m; do
        "$QZ" "$TMP/tiny-f32.gguf" "$TMP/tq-$t.gguf" "$t" >/dev/null 2>"$TMP/q.err" ||
            { fail "quantize tiny $t: $(tail -1 "$TMP/q.err")"; qok=0; }
    done
    if [ $qok = 1 ] && "$PY" - "$TMP" <<'EOF'
import sys
import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

tmp = sys.argv[1]
ref = {t.name: np.asarray(t.data, dtype=np.float32).reshape(-1)
       for t in GGUFReader(f"{tmp}/tiny-f32.gguf").tensors}
# worst relative RMS error over the tensors, measured on this model, x ~1.3:
# q8_0 0.52%, q4_0 8.4%, q4_1 7.7%, q5_0 4.2%, q5_1 3.7%, q2_K 26.5%, q3_K 14.1%,
# q4_K 7.0%, q5_K 3.5%, q6_K 1.7%, f16 0.021%, bf16 0.17%
limits = {"Q8_0": 0.007, "Q4_0": 0.11, "Q4_1": 0.10, "Q5_0": 0.055, "Q5_1": 0.05,
          "Q2_K": 0.35, "Q3_K": 0.19, "Q4_K": 0.09, "Q5_K": 0.046, "Q6_K": 0.022,
          "F16": 0.0003, "BF16": 0.0022, "F32": 0.0}
bad = 0
for t in ["f16", "bf16", "q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k",
          "q5_k", "q6_k", "q4_k_m"]:
    mk = {x.name: x for x in GGUFReader(f"{tmp}/tiny-{t}.gguf").tensors}
    qz = {x.name: x for x in GGUFReader(f"{tmp}/tq-{t}.gguf").tensors}
    if set(mk) != set(qz) or set(mk) != set(ref):
        print(f"{t}: tensor sets differ")
        bad += 1
        continue
    for name, a in mk.items():
        b = qz[name]
        if a.tensor_type != b.tensor_type or bytes(a.data) != bytes(b.data):
            print(f"{t}: {name}: mkmodel and quantize disagree "
                  f"({a.tensor_type.name} vs {b.tensor_type.name})")
            bad += 1
        got = dequantize(a.data, a.tensor_type).astype(np.float32).reshape(-1)
        r = ref[name]
        rel = float(np.sqrt(np.mean((got - r) ** 2)) / np.sqrt(np.mean(r ** 2)))
        lim = limits[a.tensor_type.name]
        if rel > lim:
            print(f"{t}: {name} ({a.tensor_type.name}): relative RMS error {rel:.4g} > {lim}")
            bad += 1
print("checked 13 types;", bad, "bad")
sys.exit(1 if bad else 0)
EOF
    then ok "all 13 types: mkmodel == quantize(f32) bytes, and close to f32 (gguf package)"
    else fail "tiny model types: mismatch between tools or error too large"; fi
fi

# q4_k_m mixture through quantize, on an f32 model from mkmodel (3 layers: more bits in layer 2)
if "$MK" -o "$TMP/q3.gguf" --layers 3 2>/dev/null && "$QZ" "$TMP/q3.gguf" "$TMP/q3m.gguf" q4_k_m >/dev/null 2>"$TMP/q.err"; then
    expect_type "$TMP/q3m.gguf" output.weight q6_K
    expect_type "$TMP/q3m.gguf" blk.1.attn_v.weight q4_K
    expect_type "$TMP/q3m.gguf" blk.2.attn_v.weight q6_K
    expect_type "$TMP/q3m.gguf" blk.2.ffn_down.weight q6_K
    expect_type "$TMP/q3m.gguf" blk.0.ffn_up.weight q4_K
    expect_key "$TMP/q3m.gguf" general.file_type 15
else
    fail "quantize q4_k_m failed: $(tail -3 "$TMP/q.err")"
fi
# already-quantized input: refused, naming the tensor; bad type: exit 2
"$QZ" "$TMP/tiny-q4_0.gguf" "$TMP/re.gguf" q8_0 >/dev/null 2>"$TMP/q.err"
rc=$?
if [ $rc -ne 0 ] && grep -q "token_embd.weight" "$TMP/q.err"; then ok "requantizing refused: $(head -1 "$TMP/q.err")"
else fail "requantize: rc $rc, message '$(head -1 "$TMP/q.err")'"; fi
"$QZ" "$TMP/tiny-f32.gguf" "$TMP/re.gguf" q7_0 >/dev/null 2>"$TMP/q.err"
rc=$?
if [ $rc -eq 2 ] && grep -q "q7_0" "$TMP/q.err"; then ok "unknown type refused"; else fail "unknown type: rc $rc"; fi

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed"
    exit 1
fi
echo "all model tool checks passed"
exit 0
