#!/usr/bin/env python3
"""Run `spillway-router eval --json` on a dev set and store the result under
bench/results/ with date, commit, host (CPU flags), model and the exact command.

    bench_eval.py -m MODEL --data labelled.jsonl --name devset1 [-- extra eval args]
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def cpu_flags():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                fl = line.split(":", 1)[1].split()
                return [f for f in fl if f.startswith(("avx", "amx", "fma", "f16c"))]
    except OSError:
        pass
    return []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "bin", "spillway-router"))
    ap.add_argument("extra", nargs="*")
    a = ap.parse_args()
    cmd = [a.bin, "eval", "-m", a.model, "--data", a.data, "--json", "-q", *a.extra]
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"eval failed: {r.stderr}")
    res = json.loads(r.stdout)
    commit = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    out = {"bench": "router-eval", "name": a.name,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit, "host": {"machine": platform.machine(), "cpu_flags": cpu_flags(),
                                      "nproc": os.cpu_count()},
           "model": os.path.basename(a.model), "command": " ".join(cmd), "result": res}
    path = os.path.join(SRC, "bench", "results",
                        f"router-eval-{a.name}-{datetime.date.today().isoformat()}.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(path)


if __name__ == "__main__":
    main()
