#!/usr/bin/env python3
"""Serve the same GGUF file with spillway-server and llama.cpp's llama-server,
drive both with `spillway-bench serve` at the same concurrency levels in the
same run (one level at a time, ours then theirs, --rounds times: each value is
the median over the rounds), and write one JSON file with both sides, the
throughput ratios, the host's CPU flags and its load average before every run
under bench/results/.

llama.cpp is NOT part of this repository: build it yourself outside the tree
and point --llama-server at its binary.

usage: bench/serve_compare.py --llama-server PATH [--threads N] [--parallel 64]
           [--ctx 320] [--concurrency 1,8,64] [--prompt-tokens 128]
           [--max-tokens 128] [--rounds 1] [--requests N] [--distinct-prompts] [--peer-commit C]
           MODEL.gguf
"""
import argparse, datetime, json, os, signal, socket, statistics, subprocess, sys, time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cpu_compare import cpu_info, load  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url, proc, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            sys.exit(f"server exited with {proc.returncode} before it was ready")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} not ready after {timeout} s")


def bench(bench_bin, url, level, a):
    cmd = [bench_bin, "serve", "--url", url, "--concurrency", str(level),
           "--prompt-tokens", str(a.prompt_tokens), "--max-tokens", str(a.max_tokens), "--json"]
    if a.distinct_prompts:
        cmd.append("--distinct-prompts")
    if a.requests:
        cmd += ["--requests", str(a.requests)]
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)[0]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-server", required=True)
    ap.add_argument("--bin-dir", default=os.path.join(ROOT, "build/bin"))
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--parallel", type=int, default=64)
    ap.add_argument("--ctx", type=int, default=320, help="tokens per sequence")
    ap.add_argument("--concurrency", default="1,8,64")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--requests", type=int, default=0,
                    help="requests per level (default: spillway-bench serve's, 4 x concurrency)")
    ap.add_argument("--distinct-prompts", action="store_true",
                    help="no two requests share a prompt prefix (nothing from a prompt cache)")
    ap.add_argument("--peer-env", action="append", default=[],
                    help="NAME=VALUE for llama-server's environment (repeatable), e.g. "
                         "OMP_WAIT_POLICY=passive on a loaded host")
    ap.add_argument("--peer-commit", default="unknown")
    ap.add_argument("--out", default=None)
    ap.add_argument("model")
    a = ap.parse_args()

    server = os.path.join(a.bin_dir, "spillway-server")
    bench_bin = os.path.join(a.bin_dir, "spillway-bench")
    p1, p2 = free_port(), free_port()
    ours_cmd = [server, "-m", a.model, "--port", str(p1), "--parallel", str(a.parallel),
                "--ctx", str(a.ctx), "--threads", str(a.threads)]
    peer_cmd = [a.llama_server, "-m", a.model, "--port", str(p2), "-np", str(a.parallel),
                "-c", str(a.ctx * a.parallel), "-t", str(a.threads), "--no-webui"]
    ours_url, peer_url = f"http://127.0.0.1:{p1}", f"http://127.0.0.1:{p2}"
    logs = [open(os.devnull, "w"), open(os.devnull, "w")]
    procs = []
    # a timeout's SIGTERM must not leave the servers running
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(f"terminated"))
    peer_env = dict(os.environ, **dict(kv.split("=", 1) for kv in a.peer_env))
    keys = ("gen_tok_s", "ttft_p50_ms", "ttft_p99_ms", "itl_p50_ms", "itl_p99_ms", "errors")
    try:
        # one server at a time, so the two never compete for the cores
        results = []
        for level in [int(x) for x in a.concurrency.split(",")]:
            runs = []
            for _ in range(a.rounds):
                one = {}
                for side, cmd, url, log, env in (("", ours_cmd, ours_url, logs[0], None),
                                                 ("peer_", peer_cmd, peer_url, logs[1], peer_env)):
                    print("+", " ".join(cmd), file=sys.stderr, flush=True)
                    p = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)
                    procs.append(p)
                    wait_ready(url, p)
                    one[side + "load_avg"] = load()
                    r = bench(bench_bin, url, level, a)
                    p.terminate()
                    p.wait(timeout=30)
                    for k in keys:
                        if k in r:
                            one[side + k] = r[k]
                runs.append(one)
            row = {"concurrency": level}
            for k in runs[0]:
                if not k.endswith("load_avg"):
                    row[k] = statistics.median(r[k] for r in runs if k in r)
            if row.get("peer_gen_tok_s"):
                row["ratio_gen_tok_s"] = row["gen_tok_s"] / row["peer_gen_tok_s"]
            if row.get("peer_ttft_p50_ms"):
                row["ratio_ttft_p50"] = row["ttft_p50_ms"] / row["peer_ttft_p50_ms"]
            row["per_round"] = runs
            results.append(row)
            print(f"c={level}: gen {row.get('gen_tok_s')} vs {row.get('peer_gen_tok_s')} tok/s, "
                  f"ttft p50 {row.get('ttft_p50_ms')} vs {row.get('peer_ttft_p50_ms')} ms; "
                  f"load {load()}", file=sys.stderr, flush=True)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    cpu, flags = cpu_info()
    doc = {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "commit": commit,
        "device": f"{cpu}, {os.cpu_count()} CPU cores (shared VM)",
        "cpu_flags": flags,
        "cpu_isa": os.environ.get("SW_CPU_ISA", "auto"),
        "command": " ".join(ours_cmd[:1] + ["-m", os.path.basename(a.model)] + ours_cmd[3:]),
        "peer_command": " ".join(a.peer_env + [os.path.basename(a.llama_server), "-m",
                                               os.path.basename(a.model)] + peer_cmd[3:]),
        "bench_command": f"spillway-bench serve --url URL --concurrency LEVEL --prompt-tokens "
                         f"{a.prompt_tokens} --max-tokens {a.max_tokens} --json"
                         + (" --distinct-prompts" if a.distinct_prompts else "")
                         + (f" --requests {a.requests}" if a.requests else ""),
        "model": os.path.basename(a.model),
        "backend": "cpu",
        "peer": f"llama.cpp@{a.peer_commit}",
        "results": results,
    }
    out = a.out or os.path.join(ROOT, "bench/results",
                                f"serve-cpu-{doc['date'][:10]}-{commit}.json")
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(json.dumps(doc, indent=1))
    print("wrote", out, file=sys.stderr)


if __name__ == "__main__":
    main()
