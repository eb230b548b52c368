#!/usr/bin/env python3
"""Perplexity of each model on one text by spillway-perplexity and by llama.cpp's
llama-perplexity (same file, same text, same context sizes, alternating ours /
theirs), the ratio of the two, and optionally the KL divergence of another of
our backends against our CPU (--kl-backend vulkan); one JSON file under
bench/results/ with the date, commit, host CPU and the exact commands.

llama.cpp is NOT part of this repository: point --llama-perplexity at a build.

usage: bench/ppl_compare.py --llama-perplexity PATH [-f TEXT] [-c 256,512]
                            [--threads 2] [--kl-backend vulkan] [--peer-commit C]
                            MODEL.gguf ...
"""
import argparse, datetime, json, os, re, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_compare import ROOT, cpu_info, load, run  # noqa: E402


def llama_ppl(cmd):
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    secs = time.time() - t0
    text = p.stdout + p.stderr
    m = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", text)
    if p.returncode != 0 or not m:
        sys.exit(f"llama-perplexity failed ({p.returncode}):\n{text[-2000:]}")
    chunks = re.search(r"calculating perplexity over (\d+) chunks", text)
    return {"ppl": float(m.group(1)), "ppl_err": float(m.group(2)),
            "n_chunks": int(chunks.group(1)) if chunks else None, "seconds": round(secs, 2)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-perplexity", required=True)
    ap.add_argument("--spillway-perplexity",
                    default=os.path.join(ROOT, "build/bin/spillway-perplexity"))
    ap.add_argument("-f", "--text", default=os.path.join(ROOT, "tests/data/ppl-text.txt"))
    ap.add_argument("-c", "--ctx", default="256,512", help="comma-separated context sizes")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--kl-backend", default=None,
                    help="also score this backend against our CPU (mean KL, same top-1)")
    ap.add_argument("--peer-commit", default=None,
                    help="llama.cpp commit (default: read from the git tree around the binary)")
    ap.add_argument("-o", "--out", default=None)
    ap.add_argument("models", nargs="+")
    a = ap.parse_args()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    peer = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(a.llama_perplexity)),
                           "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    cpu, flags = cpu_info()
    text = os.path.relpath(os.path.abspath(a.text), ROOT)
    rows = []
    for model in a.models:
        for ctx in [int(x) for x in a.ctx.split(",")]:
            ours_cmd = [a.spillway_perplexity, "-m", model, "-f", a.text, "-c", str(ctx),
                        "--threads", str(a.threads), "--backend", "cpu", "--json"]
            peer_cmd = [a.llama_perplexity, "-m", model, "-f", a.text, "-c", str(ctx),
                        "-t", str(a.threads)]
            load0 = load()
            with tempfile.TemporaryDirectory() as tmp:
                base = os.path.join(tmp, "base.kl")
                ours = json.loads(run(ours_cmd + (["--kl-divergence-base", base]
                                                  if a.kl_backend else [])))
                theirs = llama_ppl(peer_cmd)
                row = {"model": os.path.basename(model), "ctx": ctx,
                       "ours": {k: ours[k] for k in ("ppl", "ppl_err", "n_chunks", "n_scored",
                                                      "seconds")},
                       "llama_cpp": theirs, "ratio": round(ours["ppl"] / theirs["ppl"], 5),
                       "commands": {"ours": " ".join(ours_cmd), "llama_cpp": " ".join(peer_cmd)}}
                if a.kl_backend:
                    kl_cmd = [a.spillway_perplexity, "-m", model, "--kl-divergence-base", base,
                              "--kl-divergence", "-c", str(ctx), "--threads", str(a.threads),
                              "--backend", a.kl_backend, "--json"]
                    kl = json.loads(run(kl_cmd))
                    row["kl_vs_cpu"] = {"backend": kl["backend"], "ppl": kl["ppl"],
                                        **kl["kl_divergence"],
                                        "command": " ".join(kl_cmd).replace(base, "BASE.kl")}
            row["load"] = [load0, load()]
            print(json.dumps(row), file=sys.stderr)
            rows.append(row)
    results = {
        "what": "perplexity, spillway-perplexity vs llama-perplexity, same file and text",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit, "peer": "llama.cpp@" + (a.peer_commit or peer.stdout.strip() or "unknown"),
        "host": {"cpu": cpu, "simd": flags, "cores": os.cpu_count()},
        "text": text, "threads": a.threads, "results": rows,
        "command": " ".join([os.path.relpath(sys.argv[0], ROOT)] + sys.argv[1:]),
    }
    out = a.out or os.path.join(ROOT, "bench/results",
                                f"perplexity-{datetime.date.today().isoformat()}-{commit}.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
