#!/usr/bin/env python3
"""Cross-check of our dequantization against the independent `gguf` Python
package (gguf-py, the reference implementation shipped with llama.cpp).

Part 1, files OUR writer produced: gguf-py's GGUFWriter writes an F32 GGUF of
random 2-D tensors (rows of 256, 512 and 4096 elements); `spillway-quantize IN
OUT TYPE` converts it for every type; gguf-py's GGUFReader reads OUT and
gguf.quants.dequantize decodes every tensor, which must equal what
`spillway-gguf OUT --dequant NAME --out x.f32` gives. We also check that
  - each tensor in OUT has the requested type,
  - for the types gguf-py can quantize itself (q4_0 q4_1 q5_0 q5_1 q8_0 f16
    bf16) our bytes equal gguf-py's bytes: both implement ggml's reference
    round-to-nearest quantizer, so a llama.cpp user gets identical files,
  - the round trip error is sane (printed; the real bounds are in test_quant.c).

Part 2, random blocks: gguf-py's writer stores random bytes (with finite random
f16 scale fields, subnormals included) as raw tensors of every type, so every
bit of every field is exercised independently of our quantizer; again our
dequantization must equal gguf-py's.

Equality is exact, bit for bit (np.array_equal on the uint32 views, so even the
sign of zero must match), with no ulp tolerance: gguf-py evaluates the same
float32 operations in the same order as ggml's reference code and ours (e.g.
Q4_K is (d*sc)*q - dmin*m, numpy does not fuse multiply-adds, and we compile in
ISO C mode where GCC does not contract to FMA either), so any difference at all
means a bug in our block layout or arithmetic.

Exit 0 on pass, 1 on failure (a missing binary is a failure), 77 (skip) only
when the venv lacks numpy or the gguf package.
"""
import os
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf import quants
    from gguf.constants import GGML_QUANT_SIZES
except ImportError as e:  # pragma: no cover - environment problem, not a bug
    print(f"SKIP: the Python running this test lacks numpy or the gguf package ({e}); "
          f"install them into /work/main/.venv")
    sys.exit(77)

TYPES = {
    "q4_0": T.Q4_0, "q4_1": T.Q4_1, "q5_0": T.Q5_0, "q5_1": T.Q5_1, "q8_0": T.Q8_0,
    "q2_k": T.Q2_K, "q3_k": T.Q3_K, "q4_k": T.Q4_K, "q5_k": T.Q5_K, "q6_k": T.Q6_K,
    "f16": T.F16, "bf16": T.BF16,
}
# gguf-py has its own (reference) quantizer for these
GGUF_PY_QUANTIZES = {T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.F16, T.BF16}
# byte offsets of the f16 scale fields inside each block, per the GGUF layouts
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}

failures = []


def fail(msg):
    print(f"FAIL: {msg}")
    failures.append(msg)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"{' '.join(cmd)} exited {r.returncode}: {r.stderr.strip()[-2000:]}")
        return False
    return True


def our_dequant(binary, path, name, tmp):
    out = os.path.join(tmp, "x.f32")
    if os.path.exists(out):
        os.remove(out)
    if not run([binary, path, "--dequant", name, "--out", out]):
        return None
    return np.fromfile(out, dtype="<f4")


def bits_equal(a, b):
    a = np.ascontiguousarray(a, dtype=np.float32).reshape(-1)
    b = np.ascontiguousarray(b, dtype=np.float32).reshape(-1)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def describe_diff(ours, ref):
    ours = ours.reshape(-1)
    ref = np.asarray(ref, dtype=np.float32).reshape(-1)
    if ours.shape != ref.shape:
        return f"{ours.size} values from spillway-gguf, {ref.size} from gguf-py"
    bad = np.nonzero(ours.view(np.uint32) != ref.view(np.uint32))[0]
    i = bad[0]
    return (f"{bad.size} of {ref.size} values differ; first at flat index {i}: "
            f"ours {ours[i]!r} vs gguf-py {ref[i]!r}")


def make_inputs(rng):
    """2-D float32 tensors, numpy shape (rows, row_len)."""
    t = {}
    t["w.gauss"] = rng.standard_normal((8, 256)).astype(np.float32)
    t["w.unif"] = rng.uniform(-1.0, 1.0, (4, 512)).astype(np.float32)
    t["w.wide"] = (0.02 * rng.standard_normal((2, 4096))).astype(np.float32)
    # rows spanning 1e-4 .. 1e3 (f16 scales from subnormal-ish to large), plus
    # an all-zero row and a row of one repeated negative value
    s = rng.standard_normal((8, 512)).astype(np.float32)
    s *= (10.0 ** np.arange(-4, 4, dtype=np.float32))[:, None]
    s[2] = 0.0
    s[5] = -0.75
    t["w.scaled"] = s
    # positive-only data (K-quant min is clamped at 0)
    t["w.pos"] = rng.uniform(0.5, 1.5, (4, 256)).astype(np.float32)
    return t


def part1(q_bin, g_bin, tmp):
    rng = np.random.default_rng(20240611)
    inputs = make_inputs(rng)
    src = os.path.join(tmp, "in_f32.gguf")
    w = gguf.GGUFWriter(src, "spillway-test")
    for name, arr in inputs.items():
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    for tname, qtype in TYPES.items():
        out = os.path.join(tmp, f"out_{tname}.gguf")
        nfail0 = len(failures)
        if not run([q_bin, src, out, tname]):
            print(f"  {tname:5s} spillway-quantize failed")
            continue
        reader = gguf.GGUFReader(out)
        by_name = {t.name: t for t in reader.tensors}
        se = sx = 0.0
        same_bytes = None if qtype not in GGUF_PY_QUANTIZES else True
        for name, x in inputs.items():
            t = by_name.get(name)
            if t is None:
                fail(f"{tname}: tensor {name} missing from {out}")
                continue
            if t.tensor_type != qtype:
                fail(f"{tname}: tensor {name} has type {t.tensor_type.name}, "
                     f"expected {qtype.name}")
                continue
            ref = quants.dequantize(t.data, t.tensor_type).astype(np.float32, copy=False)
            ref = ref.reshape(x.shape)
            ours = our_dequant(g_bin, out, name, tmp)
            if ours is None:
                continue
            if not bits_equal(ours, ref):
                fail(f"{tname}: {name}: spillway-gguf --dequant != gguf.quants.dequantize: "
                     f"{describe_diff(ours, ref)}")
                continue
            se += float(np.sum((ref.astype(np.float64) - x) ** 2))
            sx += float(np.sum(x.astype(np.float64) ** 2))
            if same_bytes:
                want = quants.quantize(x, qtype)
                got = np.asarray(t.data)
                if not np.array_equal(want.view(np.uint8).reshape(-1),
                                      got.view(np.uint8).reshape(-1)):
                    same_bytes = False
                    fail(f"{tname}: {name}: our quantized bytes differ from gguf-py's "
                         f"reference quantizer")
        ok = len(failures) == nfail0
        nrmse = (se / sx) ** 0.5 if sx > 0 else float("nan")
        qb = "n/a (gguf-py has no quantizer)" if same_bytes is None else \
            ("identical" if same_bytes else "DIFFERENT")
        print(f"  {tname:5s} {'PASS' if ok else 'FAIL'}: {len(inputs)} tensors, dequant "
              f"bit-exact vs gguf-py: {'yes' if ok else 'NO'}; quantized bytes vs gguf-py: "
              f"{qb}; round-trip nrmse {nrmse:.4f}")


def random_finite_f16(rng, n):
    h = rng.integers(0, 1 << 16, n, dtype=np.uint32).astype(np.uint16)
    # exponent all ones is inf/NaN: make it a large finite value instead
    inf_nan = (h & 0x7C00) == 0x7C00
    h[inf_nan] &= np.uint16(0xFBFF)
    return h


def part2(g_bin, tmp):
    rng = np.random.default_rng(7)
    path = os.path.join(tmp, "raw_blocks.gguf")
    w = gguf.GGUFWriter(path, "spillway-test")
    rows, row_len = 4, 512
    raw = {}
    for tname, qtype in TYPES.items():
        if qtype in (T.F16, T.BF16):
            h = random_finite_f16(rng, rows * row_len)
            if qtype == T.BF16:  # bf16 exponent all ones: clear one exponent bit
                h = rng.integers(0, 1 << 16, rows * row_len, dtype=np.uint32).astype(np.uint16)
                h[(h & 0x7F80) == 0x7F80] &= np.uint16(0xFF7F)
            data = h.view(np.uint8).reshape(rows, row_len * 2)
        else:
            bs, ts = GGML_QUANT_SIZES[qtype]
            nb = row_len // bs
            blocks = rng.integers(0, 256, (rows * nb, ts), dtype=np.uint32).astype(np.uint8)
            for off in F16_FIELDS[qtype]:
                blocks[:, off:off + 2] = random_finite_f16(rng, rows * nb).view(
                    np.uint8).reshape(-1, 2)
            data = blocks.reshape(rows, nb * ts)
        raw[tname] = (qtype, data)
        w.add_tensor(f"raw.{tname}", data, raw_dtype=qtype)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    reader = gguf.GGUFReader(path)
    by_name = {t.name: t for t in reader.tensors}
    for tname, (qtype, data) in raw.items():
        nfail0 = len(failures)
        t = by_name[f"raw.{tname}"]
        if t.tensor_type != qtype:
            fail(f"gguf-py wrote raw.{tname} as {t.tensor_type.name}")
            continue
        ref = quants.dequantize(data, qtype).astype(np.float32, copy=False)
        ours = our_dequant(g_bin, path, f"raw.{tname}", tmp)
        if ours is not None and not bits_equal(ours, ref):
            fail(f"random {tname} blocks: spillway-gguf --dequant != gguf.quants.dequantize: "
                 f"{describe_diff(ours, ref)}")
        ok = len(failures) == nfail0
        print(f"  {tname:5s} {'PASS' if ok else 'FAIL'}: {rows}x{row_len} random-bit blocks, "
              f"dequant bit-exact vs gguf-py: {'yes' if ok else 'NO'}")


def main():
    bin_dir = os.environ.get("SW_BIN_DIR")
    if not bin_dir:
        src = os.environ.get("SW_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "..", ".."))
        bin_dir = os.path.join(src, "build", "bin")
    q_bin = os.path.join(bin_dir, "spillway-quantize")
    g_bin = os.path.join(bin_dir, "spillway-gguf")
    missing = [b for b in (q_bin, g_bin) if not os.access(b, os.X_OK)]
    if missing:
        print(f"FAIL: missing binaries {missing} (build the tree; SW_BIN_DIR={bin_dir})")
        return 1
    tmp_root = os.environ.get("SW_TMP_DIR")
    if tmp_root:
        os.makedirs(tmp_root, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="dequant_gguf_", dir=tmp_root) as tmp:
        print(f"gguf-py from {os.path.dirname(gguf.__file__)}")
        print("part 1: our writer's files (spillway-quantize), dequantized by us and by gguf-py")
        part1(q_bin, g_bin, tmp)
        print("part 2: random blocks written by gguf-py, dequantized by us and by gguf-py")
        part2(g_bin, tmp)
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("all types bit-exact with gguf-py")
    return 0


if __name__ == "__main__":
    sys.exit(main())
