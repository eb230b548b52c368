#!/usr/bin/env python3
"""bench/llama_compare.py — our CPU matmul beside llama.cpp's `test-backend-ops
perf` for the same MUL_MAT shapes, in one run (docs/bench.md).

test-backend-ops perf times ggml's MUL_MAT(type_a, f32, m, n, k) on the CPU
backend with std::thread::hardware_concurrency() threads (it has no flag; for
--threads below the CPU count the script interposes that function with a
2-line shared object built with cc and LD_PRELOAD), on the same tensors again
and again (no flush: a matrix that fits the LLC is read from it). Its perf suite has the
shapes m = 4096, k = 14336, n in {1, 2, 3, 4, 5, 8, 512}; ours is
`spillway-bench kernels --hot --shape 14336,4096,n` with as many threads.
The two are run alternately, --rounds times; each keeps its best time. GB/s
counts the bytes as spillway-bench does (the weights, x and out once each),
GFLOPS 2 k m n, for both.

  bench/llama_compare.py [--llama PATH/test-backend-ops] [--types q4_0,q8_0,q4_K]
                         [--n 1,8,512] [--threads N] [--llama-env K=V] [--rounds 3]
                         [--out FILE.json]
"""
import argparse
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCK = {"q4_0": (32, 18), "q4_1": (32, 20), "q8_0": (32, 34), "q5_0": (32, 22),
         "q5_1": (32, 24), "q4_K": (256, 144), "q5_K": (256, 176), "q6_K": (256, 210)}
M, K = 4096, 14336  # the perf suite's MUL_MAT rows (m) and row length (k)
LINE = re.compile(r"type_a=(\w+),type_b=f32,m=(\d+),n=(\d+),k=(\d+),.*?:\s+(\d+) runs - +"
                  r"([\d.]+) us/run")


SHIM = r"""#include <stdlib.h>
unsigned _ZNSt6thread20hardware_concurrencyEv(void) {
    return (unsigned)atoi(getenv("SW_COMPARE_THREADS"));
}
"""


def thread_env(threads, tmp):
    """The environment that gives test-backend-ops `threads` threads."""
    env = dict(os.environ)
    if threads == os.cpu_count():
        return env
    src, so = os.path.join(tmp, "hc.c"), os.path.join(tmp, "hc.so")
    with open(src, "w") as f:
        f.write(SHIM)
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-shared", "-fPIC", src, "-o", so],
                   check=True)
    env["LD_PRELOAD"] = so
    env["SW_COMPARE_THREADS"] = str(threads)
    return env


def llama_round(exe, types, ns, env):
    """One test-backend-ops perf run over the shapes: {(type, n): us/run}."""
    cmd = [exe, "perf", "-b", "CPU", "-o", "MUL_MAT", "-p",
           "type_a=(%s),type_b=f32,m=%d,n=(%s),k=%d," % ("|".join(types), M,
                                                       "|".join(map(str, ns)), K)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    out = re.sub(r"\x1b\[[0-9;]*m", "", out)
    got = {}
    for m in LINE.finditer(out):
        t, mm, n, k, _, us = m.groups()
        if int(mm) == M and int(k) == K:
            got[(t, int(n))] = float(us)
    return got, cmd


def ours_round(bench, typ, ns, threads):
    """One spillway-bench kernels --hot run of one type: {(type, n): us}, the report."""
    cmd = [bench, "kernels", "--hot", "--threads", str(threads), "--type", typ, "--op", "matmul"]
    for n in ns:
        cmd += ["--shape", "%d,%d,%d" % (K, M, n)]
    d = json.loads(subprocess.run(cmd + ["--json"], capture_output=True, text=True,
                                  check=True).stdout)
    return {(r["type"], r["T"]): r["time_us_best"] for r in d["rows"]}, d, cmd


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--llama", default=os.environ.get(
        "LLAMA_TEST_BACKEND_OPS", "/work/llama.cpp/build/bin/test-backend-ops"))
    ap.add_argument("--bin", default=os.environ.get("SW_BIN_DIR", os.path.join(ROOT, "build/bin")))
    ap.add_argument("--types", default="q4_0,q8_0,q4_K")
    ap.add_argument("--n", default="1,8,512")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--llama-env", action="append", default=[], metavar="K=V",
                    help="environment for test-backend-ops only, e.g. OMP_WAIT_POLICY=passive: "
                         "on a loaded host ggml's OpenMP threads spin at barriers")
    ap.add_argument("--out")
    a = ap.parse_args()
    types, ns = a.types.split(","), [int(v) for v in a.n.split(",")]
    for t in types:
        if t not in BLOCK:
            sys.exit("llama_compare: --types: unknown %r (%s)" % (t, ", ".join(BLOCK)))
    if not os.access(a.llama, os.X_OK):
        sys.exit("llama_compare: %s is not built (cmake -DLLAMA_BUILD_TESTS=ON, "
                 "--target test-backend-ops)" % a.llama)
    bench = os.path.join(a.bin, "spillway-bench")
    threads = a.threads
    if not 1 <= threads <= os.cpu_count():
        sys.exit("llama_compare: --threads %d: 1 to %d" % (threads, os.cpu_count()))
    tmp = tempfile.mkdtemp(prefix="llama_compare-")
    env = thread_env(threads, tmp)
    for kv in a.llama_env:
        if "=" not in kv:
            sys.exit("llama_compare: --llama-env %r: want KEY=VALUE" % kv)
        env[kv.split("=", 1)[0]] = kv.split("=", 1)[1]
    best_l, best_o, report, cmds = {}, {}, None, {}
    for r in range(a.rounds):
        got, cmds["llama"] = llama_round(a.llama, types, ns, env)
        for key, us in got.items():
            best_l[key] = min(us, best_l.get(key, us))
        for t in types:
            got, report, cmds["ours_" + t] = ours_round(bench, t, ns, threads)
            for key, us in got.items():
                best_o[key] = min(us, best_o.get(key, us))
        print("round %d/%d done" % (r + 1, a.rounds), file=sys.stderr)
    shutil.rmtree(tmp, ignore_errors=True)
    rows = []
    for t in types:
        for n in ns:
            if (t, n) not in best_l or (t, n) not in best_o:
                print("llama_compare: %s n=%d: missing (llama.cpp %s, ours %s)"
                      % (t, n, (t, n) in best_l, (t, n) in best_o), file=sys.stderr)
                continue
            bs, ts = BLOCK[t]
            nbytes = K // bs * ts * M + 4 * K * n + 4 * M * n
            flop = 2 * K * M * n
            row = {"type": t, "m": M, "k": K, "n": n, "bytes": nbytes, "flop": flop}
            for side, us in (("llama", best_l[(t, n)]), ("ours", best_o[(t, n)])):
                row[side] = {"us": us, "gbps": nbytes / us * 1e-3, "gflops": flop / us * 1e-3}
            row["ours_over_llama"] = best_l[(t, n)] / best_o[(t, n)]
            rows.append(row)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    out = {"bench": "llama_compare", "date": datetime.datetime.now(datetime.timezone.utc)
           .strftime("%Y-%m-%dT%H:%M:%SZ"), "commit": commit, "threads": threads,
           "rounds": a.rounds, "operands": "hot (no flush, both sides)",
           "llama_env": a.llama_env,
           "command": " ".join(sys.argv), "commands": {k: " ".join(v) for k, v in cmds.items()},
           "llama_cpp": "test-backend-ops perf (ggml CPU backend, %d threads%s)"
           % (threads, ", hardware_concurrency() interposed" if "LD_PRELOAD" in env else ""),
           "host": report["host"] if report else None,
           "peaks": report["peaks"] if report else None, "rows": rows}
    print("%-5s %5s %12s %12s %9s %9s %9s %9s %7s" % ("type", "n", "llama_us", "ours_us",
          "llama_GB/s", "ours_GB/s", "llama_GF", "ours_GF", "ours/l"))
    for r in rows:
        print("%-5s %5d %12.1f %12.1f %9.2f %9.2f %9.1f %9.1f %6.2fx" % (
            r["type"], r["n"], r["llama"]["us"], r["ours"]["us"], r["llama"]["gbps"],
            r["ours"]["gbps"], r["llama"]["gflops"], r["ours"]["gflops"], r["ours_over_llama"]))
    if a.out:
        with open(a.out, "w") as f:
            json.dump(out, f, indent=1)
            f.write("\n")
        print(a.out)


if __name__ == "__main__":
    main()
