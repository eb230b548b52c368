#!/usr/bin/env python3
"""Print the results of bench/cpu_compare.py and bench/serve_compare.py JSON
files as Markdown tables of ratios (ours / llama.cpp, median over the rounds,
with the spread over the rounds and the load average seen; for cpu_compare
files that keep every repetition, also the ratio of the best repetitions), as
docs/cpu.md shows them.

usage: bench/ratio_table.py FILE.json [FILE.json ...]
"""
import json, sys


def cpu_rows(rows):
    print("| model | ours | llama.cpp | pp128 ours / peer tok/s | pp ratio (min-max) "
          "| tg64 ours / peer tok/s | tg ratio (min-max) | best pp / tg "
          "| rounds x reps | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        loads = [lv[0] for lv in r["load_avg_1_5_15"]]
        p = r["peer"]
        peer = p[p.index("(") + 1:-1] if p.endswith(")") else p
        pp, tg = r["pp_ratio_min_max"], r["tg_ratio_min_max"]
        best = (f"{r['pp_best_ratio']:.2f}x / {r['tg_best_ratio']:.2f}x"
                if "pp_best_ratio" in r else "-")
        print(f"| {r['model']} | {r['cpu_isa']}, {r['threads']}t | {peer} "
              f"| {r['pp_tok_s']:.0f} / {r['peer_pp_tok_s']:.0f} "
              f"| **{r['pp_ratio']:.2f}x** ({pp[0]:.2f}-{pp[1]:.2f}) "
              f"| {r['tg_tok_s']:.0f} / {r['peer_tg_tok_s']:.0f} "
              f"| **{r['tg_ratio']:.2f}x** ({tg[0]:.2f}-{tg[1]:.2f}) "
              f"| {best} | {r['rounds']} x {r['reps']} | {min(loads):.0f}-{max(loads):.0f} |")


def serve_rows(doc):
    print(f"{doc['model']}, `{doc.get('command')}` vs `{doc.get('peer_command')}`, "
          f"`{doc.get('bench_command')}`")
    print()
    print("| concurrency | output tok/s ours / peer | ratio | TTFT p50 ms ours / peer "
          "| ratio | TTFT p99 ms | ITL p50 ms | ITL p99 ms | load (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in doc["results"]:
        loads = [v[0] for rr in r.get("per_round", []) for k, v in rr.items()
                 if k.endswith("load_avg")] or [float("nan")]
        f = lambda k: f"{r.get(k, 0):.1f} / {r.get('peer_' + k, 0):.1f}"
        q = lambda k: f"**{r[k]:.2f}**" if k in r else "-"
        print(f"| {r['concurrency']} | {f('gen_tok_s')} | {q('ratio_gen_tok_s')} "
              f"| {f('ttft_p50_ms')} | {q('ratio_ttft_p50')} | {f('ttft_p99_ms')} "
              f"| {f('itl_p50_ms')} | {f('itl_p99_ms')} | {min(loads):.0f}-{max(loads):.0f} |")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip())
    cpu = []
    for path in sys.argv[1:]:
        with open(path) as f:
            doc = json.load(f)
        if isinstance(doc, list):
            cpu += doc
        else:
            if cpu:
                cpu_rows(cpu)
                print()
                cpu = []
            serve_rows(doc)
            print()
    if cpu:
        cpu_rows(cpu)


if __name__ == "__main__":
    main()
