#!/usr/bin/env bash
# test_bench_kernels.sh — `spillway-bench kernels` on the CPU backend: a quick
# run over every op of a synthetic model's decode step reports bytes, ops,
# the bound and the level of each row, the peaks it was judged against, and
# NO ROW ABOVE 100 % OF ITS PEAK (a value over 100 % is a bug in a probe or in
# a row's byte or op count; docs/bench.md). Also: every distinct matmul shape
# of the model is a row; --hot rows name cache levels; bad command lines exit
# 2; on lavapipe (when present) the Vulkan probes and rows obey the same rule.
# No other timing is checked: performance is proven by benchmarks, not tests.
set -u

BIN="${SW_BIN_DIR:-}"
TMP="${SW_TMP_DIR:-/tmp}"
SRC="${SW_SOURCE_DIR:-}"
BENCH="$BIN/spillway-bench"
MK="$BIN/spillway-mkmodel"
if [[ -z "$BIN" || ! -x "$BENCH" || ! -x "$MK" ]]; then
    echo "SKIP: spillway-bench or spillway-mkmodel is not built (SW_BIN_DIR='$BIN')"
    exit 77
fi
PY=python3
[[ -n "$SRC" && -x "$SRC/.venv/bin/python" ]] && PY="$SRC/.venv/bin/python"
if ! command -v "$PY" >/dev/null 2>&1; then
    echo "SKIP: no python to read the JSON"
    exit 77
fi
mkdir -p "$TMP"
fails=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }

for args in "--op softmax" "--shape 1,2" "--shape 0,4,4" "--tokens 0" "--bogus" "--device x" \
            "--type q9_9"; do
    # shellcheck disable=SC2086
    "$BENCH" kernels $args >/dev/null 2>&1
    rc=$?
    if [[ $rc -eq 2 ]]; then pass "kernels $args -> 2"; else fail "kernels $args -> $rc"; fi
done

# What every report must satisfy (argv: json file, backend, ops that must be there).
check_report() {
    "$PY" - "$@" <<'EOF'
import json, math, sys
# Recount every row's bytes, ops, level and peaks from its sizes and the probe
# figures, independently of the bench (docs/bench.md states the rules): a
# row that moves fewer bytes than it claims, or is judged against the wrong
# probe or compute peak, fails here even when its %peak looks plausible.
try:
    import gguf
    def row_size(t, n):
        bs, ts = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[t.upper()]]
        assert n % bs == 0, (t, n)
        return n // bs * ts
except ImportError:
    row_size = None
def recount(r):
    T, op = r["T"], r["op"]
    if op == "matmul":
        K, N = r["K"], r["N"]
        return row_size(r["type"], K) * N + 4 * K * T + 4 * N * T, 4 * N * T, 2 * K * N * T
    if op == "attention":
        S, C, nh, nkv, hd = r["n_seqs"], r["ctx"], r["n_head"], r["n_head_kv"], r["head_dim"]
        q_per = T // S
        keys = sum(C - q_per + q + 1 for q in range(q_per))
        return (8 * hd * nh * T + 2 * S * C * nkv * hd * row_size(r["type"], 1), 4 * hd * nh * T,
                4 * keys * S * nh * hd)
    if op == "rope":
        n = r["head_dim"] * r["n_head"] * T
        return 8 * n, 4 * n, 3 * r["n_rot"] * r["n_head"] * T
    if op == "kv_write":
        n = r["head_dim"] * r["n_head_kv"] * T
        w = 2 * row_size(r["type"], 1) * n
        return 8 * n + w, w, 0
    if op == "rope_kv_write":  # q in place, k and v read, both caches written
        nq, nk = r["head_dim"] * r["n_head"] * T, r["head_dim"] * r["n_head_kv"] * T
        w = 2 * row_size(r["type"], 1) * nk
        return 8 * nq + 8 * nk + w, 4 * nq + w, 3 * r["n_rot"] * (r["n_head"] + r["n_head_kv"]) * T
    n = r["n"]
    if op == "rms_norm":
        return 8 * n * T + 4 * n, 4 * n * T, 4 * n * T
    if op == "get_rows":
        return row_size(r["type"], n) * T + 4 * n * T, 4 * n * T, 0
    if op == "add_rms_norm":  # x read and written, h read, out written, w read
        return 16 * n * T + 4 * n, 8 * n * T, 5 * n * T
    return 12 * n * T, 4 * n * T, {"add": 1, "swiglu": 4, "geglu": 9}[op] * n * T
def check_verdict(d, r, where):
    backend, comp, mem = d["backend"], d["peaks"]["compute"], d["peaks"]["memory"]
    if row_size:
        b, w, o = recount(r)
        assert (r["bytes"], r["bytes_written"], r["ops"]) == (b, w, o), (where, r["bytes"], b, r["ops"], o)
    quant = r["op"] == "matmul" and r["type"] not in ("f32", "f16", "bf16")
    if backend == "cpu":
        want = "int8" if quant else "f32"
    elif backend == "cuda" and quant and "gemm_i8" in comp:
        want = "gemm_i8"
    else:
        want = "gemm_f16"
    assert r["peak_compute"] == want and r["peak_gops"] == comp[want]["gops"], where
    ws = math.inf if r["working_set"] == "dram (flushed)" else r["working_set"]
    if backend == "cpu" and d["operands"] == "cold":
        assert ws == math.inf, where
    fits = [m for m in mem if m["bytes"] <= ws]
    m = fits[-1] if fits else mem[0]
    assert r["level"] == m["level"], (where, r["level"], m["level"])
    best = max(m.get("read_gbps", 0), m.get("copy_gbps", 0), m.get("add_gbps", 0))
    rd = r["bytes"] - r["bytes_written"]
    peak = min(best, m["read_gbps"] * r["bytes"] / rd) if m.get("read_gbps", 0) > 0 and rd > 0 else best
    # a CPU matmul row: also a read of its own bytes right after it, whichever is higher
    same = r["bytes"] / r["read_same_us"] * 1e-3 if "read_same_us" in r else 0
    assert r["peak_gbps_from"] == ("read_same" if same > peak else "probe"), (where, same, peak)
    peak = max(peak, same)
    assert math.isclose(peak, r["peak_gbps"], rel_tol=1e-9), (where, peak, r["peak_gbps"])
    assert math.isclose(r["ridge"], r["peak_gops"] / r["peak_gbps"], rel_tol=1e-9), where
    assert math.isclose(r["intensity"], r["ops"] / r["bytes"], rel_tol=1e-9), where
d = json.load(open(sys.argv[1]))
backend, want_ops = sys.argv[2], sys.argv[3].split(",")
assert d["bench"] == "kernels" and d["backend"] == backend, d.get("backend")
for k in ("date", "command", "threads", "layout", "operands", "host", "peaks", "rows"):
    assert k in d, k
h = d["host"]
assert h["cpu"] and "simd_flags" in h and h["llc_kib"] >= 0, h
if backend == "cpu":
    assert h["cpu_kernels"] in ("scalar", "avx2", "avxvnni", "avx512"), h
    # the int8 probe runs the instructions of the kernel set the rows ran
    i8 = {"scalar": "C int8", "avx2": "vpmaddubsw", "avxvnni": "vpdpbusd ymm",
          "avx512": "vpdpbusd zmm"}[h["cpu_kernels"]]
    assert i8 in d["peaks"]["compute"]["int8"]["how"], (h["cpu_kernels"], d["peaks"]["compute"])
    if len(sys.argv) > 4:
        assert h["cpu_kernels"] == sys.argv[4], (h["cpu_kernels"], sys.argv[4])
else:
    assert h["device"]["name"] and h["device"]["driver"], h
mem = d["peaks"]["memory"]
assert mem and mem[-1]["level"] == "dram", mem
for m in mem:
    assert max(m.get("read_gbps", 0), m.get("copy_gbps", 0), m.get("add_gbps", 0)) > 0, m
comp = d["peaks"]["compute"]
if backend == "cpu":
    assert comp["int8"]["gops"] > 0 and comp["f32"]["gops"] > 0, comp
else:
    assert comp["gemm_f16"]["gops"] > 0, comp
ops = {r["op"] for r in d["rows"]}
assert set(want_ops) <= ops, (want_ops, ops)
levels = {m["level"] for m in mem}
over = []
for r in d["rows"]:
    where = "%s %s %s" % (r["op"], r["type"], r["shape"])
    assert r["bytes"] > 0 and r["ops"] >= 0 and r["time_us_best"] > 0, where
    assert r["calls"] >= 1, where
    if backend == "cpu" and "waited_best" in r:  # schedstat readable
        assert 0 <= r["waited_best"] <= 1 and 0 <= r["undisturbed_calls"] <= r["calls"], where
        assert r["cpu_us"] >= 0, where
    assert r["bound"] in ("mem", "compute") and r["level"] in levels, where
    gbps = r["bytes"] / r["time_us_best"] * 1e-3
    assert math.isclose(gbps, r["gbps"], rel_tol=1e-6), where
    # the bound follows from the intensity and the ridge, %peak from the bound
    if r["bound"] == "compute":
        assert r["ops"] > 0 and r["intensity"] >= r["ridge"], where
        pct = 100 * r["gops"] / r["peak_gops"]
    else:
        assert r["ops"] == 0 or r["intensity"] < r["ridge"], where
        pct = 100 * r["gbps"] / r["peak_gbps"]
    assert math.isclose(pct, r["pct_peak"], rel_tol=1e-6), where
    if "read_same_us" in r:  # CPU, cold matmul: a plain read of its bytes
        assert backend == "cpu" and r["op"] == "matmul", where
        assert ("pct_read_same" in r) == (r["bound"] == "mem"), where
    if "pct_read_same" in r:
        assert math.isclose(r["pct_read_same"], 100 * r["read_same_us"] / r["time_us_best"],
                            rel_tol=1e-6), where
    check_verdict(d, r, where)
    # neither ratio may pass 100 % (collected: exit 3 lets the caller measure again)
    if (r["pct_peak"] > 100.0 or 100 * r["gbps"] / r["peak_gbps"] > 100.0 + 1e-9 or
            (r["ops"] > 0 and 100 * r["gops"] / r["peak_gops"] > 100.0 + 1e-9)):
        over.append("%s: %.1f%% of its peak" % (where, r["pct_peak"]))
if over:
    print("over 100 %% of the peak (a probe too low, or a count wrong): %s" % "; ".join(over))
    sys.exit(3)
EOF
}

# measure OUT CMD...: run CMD with its JSON into OUT, remembered for check_measured.
measure() {
    M_OUT=$1
    shift
    M_CMD=("$@")
    "${M_CMD[@]}" >"$M_OUT" 2>"$TMP/bench_kernels.err"
}
# check_report on the last measure; a row over 100 % of its peak is measured once
# more before it fails: probes and rows are timed at different moments, and a
# CPU taken away during a probe (ctest runs other tests beside this one) lowers
# the peak. Over 100 % twice fails; every other check fails the first time.
check_measured() {
    check_report "$M_OUT" "$@"
    local rc=$?
    if [[ $rc -eq 3 ]]; then
        echo "note: measuring again (above)"
        "${M_CMD[@]}" >"$M_OUT" 2>"$TMP/bench_kernels.err" || return 1
        check_report "$M_OUT" "$@"
        rc=$?
    fi
    return $rc
}

MODEL="$TMP/test_bench_kernels-tiny.gguf"
if ! "$MK" -o "$MODEL" --shape tiny --type q4_0 >/dev/null 2>&1; then
    fail "spillway-mkmodel could not write $MODEL"
else
    OUT="$TMP/test_bench_kernels-cpu.json"
    measure "$OUT" "$BENCH" kernels --backend cpu --threads 2 --model "$MODEL" --ctx 64,256 \
        --tokens 1,8 --quick --json
    rc=$?
    if [[ $rc -ne 0 ]]; then
        fail "bench kernels --model exited $rc: $(tail -3 "$TMP/bench_kernels.err")"
    elif check_measured cpu matmul,attention,rms_norm,rope,kv_write,get_rows,add,swiglu,add_rms_norm,rope_kv_write; then
        pass "cpu: every decode op (and the fused ones), bound and level per row, none above 100 % of its peak"
    else
        fail "cpu report (above)"
    fi
    # every distinct matmul (type, K, N) of the model is a row, at each token count
    if "$PY" -c 'import gguf' 2>/dev/null; then
        if "$PY" - "$MODEL" "$OUT" <<'EOF'
import json, sys
import gguf
r = gguf.GGUFReader(sys.argv[1])
want = set()
names = [t.name for t in r.tensors]
tied = "output.weight" not in names
for t in r.tensors:
    role = t.name.split(".")[-2] if t.name.startswith("blk.") else t.name.split(".")[0]
    if role in ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down",
                "output") or (tied and t.name == "token_embd.weight"):
        for T in (1, 8):
            want.add((t.tensor_type.name.lower(), int(t.shape[0]), int(t.shape[1]), T))
d = json.load(open(sys.argv[2]))
got = {(x["type"].lower(), x["K"], x["N"], x["T"]) for x in d["rows"] if x["op"] == "matmul"}
assert got == want, (sorted(got), sorted(want))
EOF
        then pass "cpu --model: one matmul row per distinct shape and token count"
        else fail "cpu --model matmul shapes"; fi
    else
        echo "skip --model shape check: the gguf Python package is not installed"
    fi
fi

# --hot: rows are judged against the probe of the cache level their working set reaches
OUT="$TMP/test_bench_kernels-hot.json"
for layout in engine plain; do
    flag=""; [[ $layout == plain ]] && flag=--plain
    # shellcheck disable=SC2086
    measure "$OUT" "$BENCH" kernels --backend cpu --threads 1 --type q4_0,q4_K,q5_0 \
        --shape 256,20,1 --shape 512,8,5 --quick --hot $flag --json
    rc=$?
    if [[ $rc -ne 0 ]]; then
        fail "bench kernels --hot $layout exited $rc: $(tail -3 "$TMP/bench_kernels.err")"
    elif check_measured cpu matmul && "$PY" - "$OUT" "$layout" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["layout"] == sys.argv[2] and d["operands"] == "hot" and d["threads"] == 1, d["layout"]
assert len(d["rows"]) == 6 and {r["op"] for r in d["rows"]} == {"matmul"}, d["rows"]
assert sorted({r["type"] for r in d["rows"]}) == ["q4_0", "q4_K", "q5_0"], d["rows"]
levels = [m["level"] for m in d["peaks"]["memory"]]
assert levels[0] == "l1" and levels[-1] == "dram", levels
for r in d["rows"]:  # a few KiB of weights: the smallest level
    assert r["working_set"] < 64 * 1024 and r["level"] == "l1", r
EOF
    then pass "cpu --hot ($layout layout): cache-level probes, rows at l1, none above 100 %"
    else fail "cpu --hot $layout (above)"; fi
done

"$BENCH" kernels --backend cpu --threads 1 --op add,rms_norm --tokens 1 --quick \
    >"$TMP/bench_kernels.txt" 2>&1
if grep -q "bound" "$TMP/bench_kernels.txt" && grep -q "%peak" "$TMP/bench_kernels.txt" &&
    grep -q "memory  dram" "$TMP/bench_kernels.txt" && grep -q "compute int8" "$TMP/bench_kernels.txt"; then
    pass "table: peaks and the bound and %peak columns"
else
    fail "table: $(cat "$TMP/bench_kernels.txt")"
fi

# Every other kernel set the host has (SW_CPU_ISA): its probes use its instructions
# and its rows obey the same rules (a small quantized matmul, an add, a geglu).
for isa in avx2 avxvnni scalar; do
    OUT="$TMP/test_bench_kernels-$isa.json"
    measure "$OUT" env SW_CPU_ISA=$isa "$BENCH" kernels --backend cpu --threads 2 --type q4_0,q8_0 \
        --op matmul,add,geglu --shape 4096,64,1 --tokens 1 --quick --probe-mib 64 --json
    rc=$?
    if [[ $rc -ne 0 ]] && grep -q "host lacks" "$TMP/bench_kernels.err"; then
        echo "skip SW_CPU_ISA=$isa: $(tail -1 "$TMP/bench_kernels.err")"
    elif [[ $rc -ne 0 ]]; then
        fail "SW_CPU_ISA=$isa bench kernels exited $rc: $(tail -3 "$TMP/bench_kernels.err")"
    elif check_measured cpu matmul,add,geglu "$isa"; then
        pass "cpu SW_CPU_ISA=$isa: its int8 probe, rows none above 100 %"
    else
        fail "cpu SW_CPU_ISA=$isa (above)"
    fi
done

# Vulkan on lavapipe (skipped without a Vulkan build or device): small ops only,
# lavapipe is slow
OUT="$TMP/test_bench_kernels-vk.json"
if [[ ! -x "$BIN/spillway-generate" ]] ||
    ! "$BIN/spillway-generate" --list-devices 2>/dev/null | sed -n '/^vulkan:/,$p' | grep -q "^  0:"; then
    echo "skip vulkan: no Vulkan build or device (spillway-generate --list-devices)"
else
    measure "$OUT" "$BENCH" kernels --backend vulkan \
        --op add,rms_norm,matmul,geglu,add_rms_norm,rope_kv_write --shape 256,64,1 \
        --tokens 1 --type q4_0 --quick --json
    rc=$?
    if [[ $rc -ne 0 ]]; then
        fail "bench kernels --backend vulkan exited $rc: $(tail -3 "$TMP/bench_kernels.err")"
    elif check_measured vulkan matmul,add,rms_norm,geglu,add_rms_norm,rope_kv_write; then
        pass "vulkan: device probes (copy, GEMM), rows none above 100 %"
    else
        fail "vulkan report (above)"
    fi
fi

if [[ $fails -gt 0 ]]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all checks passed"
