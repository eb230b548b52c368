#!/usr/bin/env bash
# test_gguf_tool.sh — spillway-gguf on every GGUF under $SW_SHARED_DIR/models:
# valid files print and exit 0, legacy files fail with a message; printed facts
# match the models README; --dequant and --rewrite are cross-checked against
# gguf-py (llama.cpp's independent Python reader) when the venv has it.
set -u
shared="${SW_SHARED_DIR:-}"
models="$shared/models"
if [ -z "$shared" ] || [ ! -d "$models" ]; then
    echo "SKIP: \$SW_SHARED_DIR/models not available (SW_SHARED_DIR='${shared}')"
    exit 77
fi
bin="${SW_BIN_DIR:-}/spillway-gguf"
if [ ! -x "$bin" ]; then
    echo "FAIL: $bin not built"
    exit 1
fi
tmp="$(mktemp -d "${SW_TMP_DIR:-/tmp}/gguf_tool.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }

n=0
while IFS= read -r f; do
    n=$((n + 1))
    "$bin" "$f" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    case "$f" in
    */legacy/*)
        [ $rc -ne 0 ] || fail "$f: legacy file accepted"
        grep -q "$(basename "$f")" "$tmp/err" || fail "$f: error does not name the file: $(cat "$tmp/err")"
        ;;
    */ggml-vocab-dbrx.gguf)
        # repeats general.file_type: refused by name, as llama.cpp refuses it
        [ $rc -ne 0 ] || fail "$f: a repeated key was accepted"
        grep -q "duplicate key 'general.file_type'" "$tmp/err" || fail "$f: $(cat "$tmp/err")"
        ;;
    *)
        [ $rc -eq 0 ] || fail "$f: exit $rc: $(cat "$tmp/err")"
        grep -q '^tensors: ' "$tmp/out" || fail "$f: no tensor section"
        grep -q '^totals: ' "$tmp/out" || fail "$f: no totals"
        ;;
    esac
done < <(find "$models" -name '*.gguf' | sort)
[ $n -ge 16 ] || fail "expected at least 16 .gguf files under $models, found $n"

s260="$models/stories260K.gguf"
if [ -f "$s260" ]; then
    "$bin" "$s260" >"$tmp/s260" || fail "stories260K: exit $?"
    for want in 'version:     3' 'alignment:   32' 'data offset: 14176' 'file size:   1185376' \
        'metadata: 19 keys' 'tensors: 48' 'totals: 48 tensors, 292800 parameters' 'by type: f32=48' \
        'general.architecture                     string  = "llama"' 'llama.block_count'; do
        grep -qF "$want" "$tmp/s260" || fail "stories260K: output lacks '$want'"
    done
fi
leg="$models/legacy"
if [ -d "$leg" ]; then
    "$bin" "$leg/tinyllamas-stories-260k-f32.gguf" 2>"$tmp/e1" >/dev/null
    grep -q 'GGUF version 1 is no longer supported' "$tmp/e1" || fail "v1 message: $(cat "$tmp/e1")"
    "$bin" "$leg/tinyllamas-stories-260k-q8_0.gguf" 2>"$tmp/e2" >/dev/null
    grep -q "blk.0.ffn_down.weight.*block size 32" "$tmp/e2" || fail "q8_0 message: $(cat "$tmp/e2")"
fi

# not a GGUF file, bad usage
"$bin" "$models/README.md" >/dev/null 2>"$tmp/e3"
[ $? -eq 1 ] && grep -q "magic" "$tmp/e3" || fail "README.md: expected exit 1 with a magic error"
"$bin" >/dev/null 2>&1
[ $? -eq 2 ] || fail "no arguments: expected exit 2"
"$bin" "$s260" --dequant no.such.tensor --out "$tmp/x.f32" >/dev/null 2>&1
[ $? -ne 0 ] || fail "--dequant of a missing tensor succeeded"

# cross-checks with gguf-py
py="${SW_SOURCE_DIR:-}/.venv/bin/python"
if [ -x "$py" ] && "$py" -c 'import gguf, numpy' 2>/dev/null && [ -f "$s260" ]; then
    "$bin" "$s260" --dequant blk.2.ffn_down.weight --out "$tmp/down.f32" >/dev/null || fail "--dequant exit $?"
    "$bin" "$s260" --rewrite "$tmp/s260.gguf" >/dev/null || fail "--rewrite stories260K exit $?"
    spm="$models/vocab/ggml-vocab-llama-spm.gguf"
    "$bin" "$spm" --rewrite "$tmp/spm.gguf" >/dev/null || fail "--rewrite llama-spm exit $?"
    "$py" - "$s260" "$tmp/down.f32" "$tmp/s260.gguf" "$spm" "$tmp/spm.gguf" <<'PY' || fail "gguf-py cross-check"
import sys, numpy as np
from gguf import GGUFReader
src, down, rw, spm, spm_rw = sys.argv[1:]
r = GGUFReader(src)
t = {x.name: x for x in r.tensors}["blk.2.ffn_down.weight"]
ours = np.fromfile(down, dtype="<f4")
ref = np.asarray(t.data, dtype=np.float32).reshape(-1)
assert ours.shape == ref.shape, (ours.shape, ref.shape)
assert np.array_equal(ours, ref), "dequantized f32 differs from gguf-py"

def same(a_path, b_path):
    a, b = GGUFReader(a_path), GGUFReader(b_path)
    fa = {k: v for k, v in a.fields.items() if not k.startswith("GGUF.")}
    fb = {k: v for k, v in b.fields.items() if not k.startswith("GGUF.")}
    assert list(fa) == list(fb), (list(fa), list(fb))
    for k in fa:
        assert fa[k].types == fb[k].types, k
        assert fa[k].contents() == fb[k].contents(), k
    assert [x.name for x in a.tensors] == [x.name for x in b.tensors]
    for x, y in zip(a.tensors, b.tensors):
        assert x.tensor_type == y.tensor_type and list(x.shape) == list(y.shape), x.name
        assert np.array_equal(np.asarray(x.data).view(np.uint8), np.asarray(y.data).view(np.uint8)), x.name
    print(f"{b_path}: {len(fb)} keys, {len(b.tensors)} tensors identical to {a_path}")
same(src, rw)
same(spm, spm_rw)
PY
else
    echo "note: gguf-py not available under \$SW_SOURCE_DIR/.venv; cross-checks skipped"
fi

if [ $fails -ne 0 ]; then
    echo "$fails failure(s)"
    exit 1
fi
echo "OK: $n files checked"
