#!/usr/bin/env python3
"""Time to first token of streaming chat requests on spillway-server with a
learned router: forced local ("spillway": {"route": "local"}) vs auto (kept
local by the router; those it sends to the cloud are not counted), taking
turns in one run, each prompt sent once (a repeated prompt would come from the
prefix cache). TTFT = request sent -> first chunk with content.
The cloud is tests/py/fake_provider.py. Writes bench/results JSON.

    ttft_bench.py -m MODEL --router ROUTER --data items.jsonl [--n 40] [--share 0.2]
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import subprocess
import sys
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "py"))
from test_server import Server  # noqa: E402
from test_spill import CLOUD_MODEL, KEY, KEY_ENV, Fake  # noqa: E402


def ttft(port, body):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    t0 = time.perf_counter()
    c.request("POST", "/v1/chat/completions", json.dumps(body),
              {"Content-Type": "application/json"})
    r = c.getresponse()
    first, route = None, None
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if "spillway" in ev:
            route = ev["spillway"]["route"]
        delta = ev.get("choices", [{}])[0].get("delta", {})
        if first is None and delta.get("content"):
            first = time.perf_counter() - t0
    c.close()
    return first, route


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--router", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--share", type=float, default=0.2)
    a = ap.parse_args()
    items = [json.loads(x) for x in open(a.data)][: a.n]
    fake = Fake()
    srv = Server(a.model, "--ctx", "1024", "--cloud-provider", "anthropic", "--cloud-url",
                 fake.url, "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV,
                 "--router", a.router, "--cloud-share", str(a.share), env={KEY_ENV: KEY})
    t = {"local": [], "auto": []}
    try:
        # each prompt once, the modes taking turns: a prompt sent twice would
        # find its blocks in the prefix cache the second time, favouring
        # whichever mode goes second
        for i, it in enumerate(items):
            text = it["messages"][-1]["content"]
            mode = ("local", "auto")[i % 2]
            body = {"messages": [{"role": "user", "content": text}], "max_tokens": 8,
                    "temperature": 0, "stream": True, "spillway": {"route": mode}}
            first, route = ttft(srv.port, body)
            if route == "local" and first is not None:
                t[mode].append(first)
    finally:
        srv.stop()
        fake.stop()
    p50 = {m: sorted(v)[len(v) // 2] * 1000 for m, v in t.items() if v}
    print(f"TTFT p50: forced local {p50['local']:.1f} ms ({len(t['local'])} requests), auto kept "
          f"local {p50['auto']:.1f} ms ({len(t['auto'])}); ratio {p50['auto'] / p50['local']:.2f}")
    commit = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    doc = {"bench": "router-ttft", "date": datetime.datetime.now(datetime.timezone.utc)
           .isoformat(timespec="seconds"), "commit": commit,
           "host": {"machine": platform.machine(), "nproc": os.cpu_count(),
                    "note": "shared 2-core machine under load; compare the ratio"},
           "model": os.path.basename(a.model), "command": " ".join(sys.argv),
           "ttft_p50_ms": p50, "n": {m: len(v) for m, v in t.items()},
           "ratio_auto_over_local": p50["auto"] / p50["local"]}
    path = os.path.join(SRC, "bench", "results",
                        f"router-ttft-{datetime.date.today().isoformat()}.json")
    json.dump(doc, open(path, "w"), indent=1)
    print(path)


if __name__ == "__main__":
    main()
