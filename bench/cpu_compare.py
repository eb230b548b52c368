#!/usr/bin/env python3
"""Run spillway-bench model and llama.cpp's llama-bench on the same GGUF files,
same thread count, alternating (ours, theirs, ours, theirs, ...) for --rounds
rounds so that load from other processes hits both alike, and write one JSON
file of results with the ratios under bench/results/.

Each round runs both tools with --reps repetitions (each tool's median); a
result is the median over the rounds, and the ratio is the median of the
per-round ratios (with their min and max). Each round also keeps every
repetition of both tools (ours: pp/tg_tok_s_reps; llama-bench: samples_ts),
and the "best" ratios compare the fastest repetition of each: on a shared
host, other processes only ever slow a run down, so the best of many short
runs is the steadiest estimate of what each tool does on an idle core (the
median ratios stay the headline numbers). The JSON names the host's CPU and
SIMD flags, the kernel set we ran (SW_CPU_ISA, --isa), and the load average
before and after every run, so a loaded machine shows.

llama.cpp is NOT part of this repository: build it yourself outside the tree and
point --llama-bench at its llama-bench binary.

usage: bench/cpu_compare.py --llama-bench PATH [--threads 1,2] [-p 128] [-n 64]
                            [--reps 3] [--rounds 3] [--isa auto|avx2|avx512|...]
                            [--peer-label TEXT] MODEL.gguf [MODEL.gguf ...]
"""
import argparse, datetime, json, os, platform, statistics, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIMD_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni",
              "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8")


def run(cmd, env=None):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout


def cpu_info():
    name, flags = platform.processor(), set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return name, [f for f in SIMD_FLAGS if f in flags]


def load():
    return [round(x, 2) for x in os.getloadavg()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--llama-bench", required=True)
    ap.add_argument("--spillway-bench", default=os.path.join(ROOT, "build/bin/spillway-bench"))
    ap.add_argument("--threads", default=str(os.cpu_count()), help="comma-separated list")
    ap.add_argument("-p", type=int, default=128)
    ap.add_argument("-n", type=int, default=64)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--isa", default="auto", help="SW_CPU_ISA for our runs")
    ap.add_argument("--peer-label", default="", help="how the peer was built, for the JSON")
    ap.add_argument("--peer-env", action="append", default=[],
                    help="NAME=VALUE for the peer's environment (repeatable), e.g. "
                         "OMP_WAIT_POLICY=passive: on a loaded host llama.cpp's spinning "
                         "OpenMP threads otherwise wait whole time slices at every barrier")
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
    cpu, flags = cpu_info()
    env = dict(os.environ, SW_CPU_ISA=a.isa)
    peer_env = dict(os.environ, **dict(kv.split("=", 1) for kv in a.peer_env))
    results = []
    for m in a.models:
        for threads in [int(t) for t in a.threads.split(",")]:
            ours_cmd = [a.spillway_bench, "model", "-m", m, "-p", str(a.p), "-n", str(a.n),
                        "--backend", "cpu", "--threads", str(threads), "--reps", str(a.reps),
                        "--json"]
            peer_cmd = [a.llama_bench, "-m", m, "-p", str(a.p), "-n", str(a.n), "-t",
                        str(threads), "-r", str(a.reps), "-o", "json"]
            rounds = []
            for _ in range(a.rounds):
                l0 = load()
                ours = json.loads(run(ours_cmd, env))
                l1 = load()
                peer = json.loads(run(peer_cmd, peer_env))
                l2 = load()
                peer_pp = next(r for r in peer
                               if r.get("n_prompt", 0) > 0 and r.get("n_gen", 0) == 0)
                peer_tg = next(r for r in peer
                               if r.get("n_gen", 0) > 0 and r.get("n_prompt", 0) == 0)
                rounds.append({"pp_tok_s": ours["pp_tok_s"], "tg_tok_s": ours["tg_tok_s"],
                               "peer_pp_tok_s": peer_pp["avg_ts"],
                               "peer_tg_tok_s": peer_tg["avg_ts"],
                               "pp_tok_s_reps": ours.get("pp_tok_s_reps", [ours["pp_tok_s"]]),
                               "tg_tok_s_reps": ours.get("tg_tok_s_reps", [ours["tg_tok_s"]]),
                               "peer_pp_samples_ts": peer_pp.get("samples_ts",
                                                                 [peer_pp["avg_ts"]]),
                               "peer_tg_samples_ts": peer_tg.get("samples_ts",
                                                                 [peer_tg["avg_ts"]]),
                               "cpu_isa": ours.get("cpu_isa", "?"),
                               "load_before_ours": l0, "load_before_peer": l1, "load_after": l2})
            med = lambda k: statistics.median(r[k] for r in rounds)
            ppr = [r["pp_tok_s"] / r["peer_pp_tok_s"] for r in rounds]
            tgr = [r["tg_tok_s"] / r["peer_tg_tok_s"] for r in rounds]
            best = lambda k: max(v for r in rounds for v in r[k])
            res = {
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                "commit": commit,
                "device": f"{cpu}, {threads} threads",
                "cpu_flags": flags,
                "cpu_isa": rounds[0]["cpu_isa"],
                "command": f"SW_CPU_ISA={a.isa} " + " ".join(ours_cmd),
                "peer_command": " ".join(a.peer_env + peer_cmd),
                "model": os.path.basename(m),
                "model_bytes": os.path.getsize(m),
                "backend": "cpu",
                "threads": threads,
                "n_prompt": a.p, "n_gen": a.n,
                "rounds": a.rounds, "reps": a.reps,
                "pp_tok_s": med("pp_tok_s"), "tg_tok_s": med("tg_tok_s"),
                "peer": f"llama.cpp@{peer_commit}" + (f" ({a.peer_label})" if a.peer_label else ""),
                "peer_pp_tok_s": med("peer_pp_tok_s"), "peer_tg_tok_s": med("peer_tg_tok_s"),
                "pp_ratio": statistics.median(ppr), "tg_ratio": statistics.median(tgr),
                "pp_ratio_min_max": [min(ppr), max(ppr)], "tg_ratio_min_max": [min(tgr), max(tgr)],
                "pp_best_tok_s": best("pp_tok_s_reps"), "tg_best_tok_s": best("tg_tok_s_reps"),
                "peer_pp_best_tok_s": best("peer_pp_samples_ts"),
                "peer_tg_best_tok_s": best("peer_tg_samples_ts"),
                "pp_best_ratio": best("pp_tok_s_reps") / best("peer_pp_samples_ts"),
                "tg_best_ratio": best("tg_tok_s_reps") / best("peer_tg_samples_ts"),
                "load_avg_1_5_15": [r["load_before_ours"] for r in rounds] + [rounds[-1]["load_after"]],
                "per_round": rounds,
            }
            results.append(res)
            print(f"{res['model']} t{threads} [{res['cpu_isa']}]: pp {res['pp_tok_s']:.1f} vs "
                  f"{res['peer_pp_tok_s']:.1f} tok/s (x{res['pp_ratio']:.2f}, "
                  f"{min(ppr):.2f}-{max(ppr):.2f}), tg {res['tg_tok_s']:.1f} vs "
                  f"{res['peer_tg_tok_s']:.1f} tok/s (x{res['tg_ratio']:.2f}, "
                  f"{min(tgr):.2f}-{max(tgr):.2f}); best of reps: pp x{res['pp_best_ratio']:.2f}, "
                  f"tg x{res['tg_best_ratio']:.2f}; load {load()}", file=sys.stderr, flush=True)
    out = a.out or os.path.join(ROOT, "bench/results",
                                f"cpu-{datetime.date.today().isoformat()}-{commit}.json")
    with open(out, "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
    print(out)


if __name__ == "__main__":
    main()
