#!/usr/bin/env python3
"""Run spillway-bench model and llama.cpp's llama-bench on the same GGUF files,
same thread count, in the same run, and write one JSON file of results with the
ratios under bench/results/.

llama.cpp is NOT part of this repository: build it yourself outside the tree and
point --llama-bench at its llama-bench binary.

usage: bench/cpu_compare.py --llama-bench PATH [--threads N] [-p 128] [-n 64]
                            [--reps 3] MODEL.gguf [MODEL.gguf ...]
"""
import argparse, datetime, json, os, platform, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(cmd):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def cpu_name():
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--spillway-bench", default=os.path.join(ROOT, "build/bin/spillway-bench"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--peer-commit", default=None,
                    help="llama.cpp commit (default: read from the git tree around --llama-bench)")
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    peer_commit = a.peer_commit or subprocess.run(
        ["git", "-C", os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(a.llama_bench)))),
         "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip() or "unknown"
    results = []
    for m in a.models:
        ours_cmd = [a.spillway_bench, "model", "-m", m, "-p", str(a.p), "-n", str(a.n),
                    "--backend", "cpu", "--threads", str(a.threads), "--reps", str(a.reps), "--json"]
        peer_cmd = [a.llama_bench, "-m", m, "-p", str(a.p), "-n", str(a.n), "-t", str(a.threads),
                    "-r", str(a.reps), "-o", "json"]
        # Alternate the two so that machine noise hits both alike.
        ours = json.loads(run(ours_cmd))
        peer = json.loads(run(peer_cmd))
        peer_pp = next(r["avg_ts"] for r in peer if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0)
        peer_tg = next(r["avg_ts"] for r in peer if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0)
        results.append({
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "commit": commit,
            "device": f"{cpu_name()}, {a.threads} threads",
            "command": " ".join(ours_cmd),
            "peer_command": " ".join(peer_cmd),
            "model": os.path.basename(m),
            "model_bytes": os.path.getsize(m),
            "backend": "cpu",
            "threads": a.threads,
            "n_prompt": a.p, "n_gen": a.n,
            "pp_tok_s": ours["pp_tok_s"], "tg_tok_s": ours["tg_tok_s"],
            "peer": f"llama.cpp@{peer_commit}",
            "peer_pp_tok_s": peer_pp, "peer_tg_tok_s": peer_tg,
            "pp_ratio": ours["pp_tok_s"] / peer_pp, "tg_ratio": ours["tg_tok_s"] / peer_tg,
        })
        r = results[-1]
        print(f"{r['model']}: pp {r['pp_tok_s']:.1f} vs {peer_pp:.1f} tok/s (x{r['pp_ratio']:.2f}), "
              f"tg {r['tg_tok_s']:.1f} vs {peer_tg:.1f} tok/s (x{r['tg_ratio']:.2f})", file=sys.stderr)
    out = a.out or os.path.join(ROOT, "bench/results",
                                f"cpu-{datetime.date.today().isoformat()}-{commit}.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
