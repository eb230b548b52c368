#!/usr/bin/env python3
"""The hidden evaluation's protocol, live: a labelled dev set is split in two;
the router is trained on one half with `spillway-router train`; the real
spillway-server runs with --router and --cloud-share S (S = 0.2 and 0.4 by
default) against tests/py/fake_provider.py as an always-right cloud; the other
half is sent as auto-routed requests (non-streaming and streaming, OpenAI chat
and Anthropic Messages), with private and PII requests mixed in. Everything is
measured from the RESPONSES (the "spillway" object; for streams the last one
in the stream, which is the final decision):

  - AUROC of route_score for "local answer wrong" (labels from the dev set);
  - realized cloud share (route_score decisions over the labelled requests);
  - gain over a random router at the same share, as a fraction of the way
    from random to a perfect router (PGR: share of wrong answers sent out);
  - private / PII requests that reached the cloud (the fake records every
    body; each such request carries a unique marker);
  - TTFT p50 (request sent -> first content) of streaming requests the router
    kept local vs forced local, taking turns in one run, each prompt once;
  - with --monitor, the same half on a server without --router (the default,
    self-calibrating monitor): its escalation share and the AUROC of its
    route_score (the probe window's score);
  - consistency of train and serve: the live route_score vs the offline score
    of the same item (`spillway-router eval --router --scores`), and the live
    local answer vs the labelled one (greedy: one must be a prefix of the
    other), which catch a different prompt rendering or feature path.

Writes bench/results/router-live-NAME-DATE.json (date, commit, host, model,
commands, every number). Not a CI test: it takes minutes.

    live_eval.py -m MODEL --data labelled.jsonl --name devset2
    live_eval.py -m MODEL --refs refs.jsonl --name devset3   # labels first
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(SRC, "tests", "py"))
from test_server import Server  # noqa: E402
from test_spill import CLOUD_MODEL, KEY, KEY_ENV, Fake  # noqa: E402

PRIVATE_EVERY = 8  # one private or PII request after every 8 labelled ones


def auroc(scores, wrong):
    pos = sorted(s for s, w in zip(scores, wrong) if w)
    neg = sorted(s for s, w in zip(scores, wrong) if not w)
    if not pos or not neg:
        return None
    win = 0.0
    for p in pos:  # O(n^2) is fine for a few hundred items
        win += sum(1.0 if p > n else 0.5 if p == n else 0.0 for n in neg)
    return win / (len(pos) * len(neg))


def gain(wrong, cloud):
    """PGR of the router, of a random and a perfect router at the same share."""
    n, w = len(wrong), sum(wrong)
    share = sum(cloud) / n
    pgr = sum(1 for x, c in zip(wrong, cloud) if x and c) / w if w else 0.0
    perfect = min(1.0, share * n / w) if w else 0.0
    frac = (pgr - share) / (perfect - share) if perfect > share else None
    return {"realized": share, "pgr": pgr, "random_pgr": share, "perfect_pgr": perfect,
            "gain_fraction": frac}


def post(port, path, body, stream, headers=None, timeout=600):
    """One request; returns (status, final spillway object, text, ttft seconds)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    t0 = time.perf_counter()
    c.request("POST", path, json.dumps(body), h)
    r = c.getresponse()
    if not stream:
        data = json.loads(r.read())
        c.close()
        sp = data.get("spillway", {})
        if "choices" in data:
            text = data["choices"][0]["message"]["content"] or ""
        else:
            text = "".join(b.get("text", "") for b in data.get("content", []))
        return r.status, sp, text, None
    sp, text, first = {}, [], None
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        # the last "spillway" object in a stream is the final decision
        for holder in (ev, ev.get("message", {}), ev.get("delta", {})):
            if isinstance(holder, dict) and "spillway" in holder:
                sp = holder["spillway"]
        piece = ""
        if ev.get("choices"):
            piece = ev["choices"][0].get("delta", {}).get("content") or ""
        elif ev.get("type") == "content_block_delta":
            piece = ev["delta"].get("text", "")
        if piece:
            if first is None:
                first = time.perf_counter() - t0
            text.append(piece)
    c.close()
    return r.status, sp, "".join(text), first


def chat_body(text, max_tokens, stream, anthropic=False, **extra):
    b = {"messages": [{"role": "user", "content": text}], "max_tokens": max_tokens,
         "temperature": 0, "stream": stream}
    if anthropic:
        b["model"] = "local"
    b.update(extra)
    return b


def user_text(item):
    return [m for m in item["messages"] if m["role"] == "user"][-1]["content"]


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode:
        sys.exit(f"{' '.join(cmd)}: exit {r.returncode}: {r.stderr}")
    return r.stdout


def serve_half(a, router, test, share, fake):
    """One server run at one share (router None: the default monitor, no
    --router and no --cloud-share); every measurement comes from responses."""
    flags = ["--router", router, "--cloud-share", str(share)] if router else []
    srv = Server(a.model, "--ctx", "1024", "--cloud-provider", "anthropic", "--cloud-url",
                 fake.url, "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV,
                 *flags, env={KEY_ENV: KEY})
    fake.reset()
    rows, private = [], []
    try:
        for i, it in enumerate(test):
            stream = i % 2 == 1
            anth = i % 4 >= 2  # a quarter each: OpenAI/Anthropic x whole/stream
            path = "/v1/messages" if anth else "/v1/chat/completions"
            st, sp, text, _ = post(srv.port, path,
                                   chat_body(user_text(it), a.max_tokens, stream, anth), stream)
            # the monitor does not score answers shorter than its min_tokens
            if st != 200 or (router and "route_score" not in sp):
                sys.exit(f"item {i}: HTTP {st}, spillway {sp}")
            rows.append({"i": i, "stream": stream, "api": "anthropic" if anth else "openai",
                         "route": sp["route"], "reason": sp["reason"],
                         "route_score": sp.get("route_score"), "text": text})
            if i % PRIVATE_EVERY == PRIVATE_EVERY - 1:
                k = len(private)
                marker = f"zq{k:03d}marker"
                if k % 3 == 0:
                    body, hdr, want = chat_body(f"{user_text(it)} ({marker})", 8, k % 2 == 1,
                                                spillway={"private": True}), None, "private"
                elif k % 3 == 1:
                    body, hdr, want = chat_body(f"{user_text(it)} ({marker})", 8, k % 2 == 1), \
                        {"X-Spillway-Private": "1"}, "private"
                else:
                    body, hdr, want = chat_body(
                        f"{user_text(it)} Mail the answer to {marker}@example.com.", 8,
                        k % 2 == 1), None, "pii"
                st, sp, _, _ = post(srv.port, "/v1/chat/completions", body, body["stream"], hdr)
                private.append({"marker": marker, "status": st, "route": sp.get("route"),
                                "reason": sp.get("reason"), "want": want})
        received = json.loads(_get(fake.port, "/_received"))["bodies"]
        hits = fake.hits()
    finally:
        srv.stop()
    leaked = [p["marker"] for p in private if any(p["marker"] in b for b in received)]
    return rows, private, leaked, hits


def _get(port, path):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", path)
    data = c.getresponse().read()
    c.close()
    return data


def ttft_run(a, router, test, share, fake):
    """Streaming, alternating forced local and auto over the same prompts."""
    srv = Server(a.model, "--ctx", "1024", "--cloud-provider", "anthropic", "--cloud-url",
                 fake.url, "--cloud-model", CLOUD_MODEL, "--cloud-key-env", KEY_ENV,
                 "--router", router, "--cloud-share", str(share), env={KEY_ENV: KEY})
    t = {"local": [], "auto": []}
    try:
        # each prompt once, the modes taking turns (a repeated prompt would
        # come from the prefix cache, favouring the mode that goes second)
        for i, it in enumerate(test[: 2 * a.ttft_n]):
            mode = ("local", "auto")[i % 2]
            body = chat_body(user_text(it), 8, True, spillway={"route": mode})
            st, sp, _, first = post(srv.port, "/v1/chat/completions", body, True)
            if st == 200 and sp.get("route") == "local" and first is not None:
                t[mode].append(first)
    finally:
        srv.stop()
    p50 = {m: sorted(v)[len(v) // 2] * 1000 for m, v in t.items() if v}
    return {"p50_ms": p50, "n": {m: len(v) for m, v in t.items()},
            "ratio_auto_over_local": p50["auto"] / p50["local"] if len(p50) == 2 else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-m", "--model", required=True)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="labelled JSON lines (local_ok)")
    src.add_argument("--refs", help="JSON lines with references: labelled first")
    ap.add_argument("--name", required=True)
    ap.add_argument("--shares", default="0.2,0.4")
    ap.add_argument("--features", default=None,
                    help="spillway-router train --features (default: its default)")
    ap.add_argument("--max-tokens", type=int, default=32, help="per live request (default 32)")
    ap.add_argument("--label-tokens", type=int, default=128,
                    help="spillway-router label --max-tokens (default 128)")
    ap.add_argument("--ttft-n", type=int, default=30, help="prompts per mode")
    ap.add_argument("--monitor", action="store_true",
                    help="also serve the half with the default monitor (no --router)")
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "bin"))
    ap.add_argument("--out", default=None, help="result JSON (default bench/results/...)")
    a = ap.parse_args()
    os.environ.setdefault("SW_BIN_DIR", a.bin)
    rbin = os.path.join(a.bin, "spillway-router")
    tmp = tempfile.mkdtemp(prefix="live-eval-")
    cmds = []
    data = a.data
    if a.refs:
        data = os.path.join(tmp, "labelled.jsonl")
        cmds.append([rbin, "label", "-m", a.model, "--data", a.refs, "--out", data, "-q",
                     "--max-tokens", str(a.label_tokens)])
        run(cmds[-1])
    lines = open(data).readlines()
    tr, te = os.path.join(tmp, "train.jsonl"), os.path.join(tmp, "test.jsonl")
    open(tr, "w").writelines(lines[0::2])
    open(te, "w").writelines(lines[1::2])
    test = [json.loads(x) for x in lines[1::2]]
    router, scores = os.path.join(tmp, "router.json"), os.path.join(tmp, "scores.jsonl")
    cmds.append([rbin, "train", "-m", a.model, "--data", tr, "--out", router, "-q"] +
                 (["--features", a.features] if a.features else []))
    train_out = run(cmds[-1]).strip()
    print(train_out, flush=True)
    # offline scores of the same items, for the train/serve consistency check
    cmds.append([rbin, "eval", "-m", a.model, "--data", te, "--router", router, "--json", "-q",
                 "--scores", scores, "--max-tokens", "1"])
    run(cmds[-1])
    offline = [json.loads(x)["precall"] for x in open(scores)]
    wrong = [not x["local_ok"] for x in test]
    warm = json.load(open(router))["training"]["oof_scores"]
    res = {"train": train_out, "n_train": len(lines[0::2]), "n_test": len(test),
           "test_wrong": sum(wrong), "warm_start": {"n": len(warm), "mean": sum(warm) / len(warm)},
           "runs": []}
    fake = Fake()
    try:
        for share in [float(x) for x in a.shares.split(",")]:
            rows, private, leaked, hits = serve_half(a, router, test, share, fake)
            live = [r["route_score"] for r in rows]
            cloud = [r["reason"] == "route_score" for r in rows]
            diffs = [abs(x - y) for x, y in zip(live, offline)]
            agree = sum(1 for r, it in zip(rows, test) if r["route"] == "local" and (
                it.get("local_answer", "").startswith(r["text"].strip()[:40])
                or r["text"].startswith(it.get("local_answer", "").strip()[:40])))
            n_local = sum(1 for r in rows if r["route"] == "local")
            g = gain(wrong, cloud)
            run_res = {
                "cloud_share": share, "auroc": auroc(live, wrong), **g,
                "realized_by_half": [sum(cloud[: len(cloud) // 2]) / (len(cloud) // 2),
                                     sum(cloud[len(cloud) // 2:]) / (len(cloud) - len(cloud) // 2)],
                "by_api": {k: sum(c for c, r in zip(cloud, rows) if f"{r['api']}/{r['stream']}"
                                  == k) for k in sorted({f"{r['api']}/{r['stream']}"
                                                         for r in rows})},
                "private_pii_sent": len(private), "private_pii_to_cloud": len(leaked),
                "private_pii_routes": sorted({f"{p['route']}/{p['reason']}" for p in private}),
                "private_pii_wrong_reason": sum(p["reason"] != p["want"] for p in private),
                "provider_hits": hits,
                "live_vs_offline_score": {"max_abs_diff": max(diffs),
                                          "mean_abs_diff": sum(diffs) / len(diffs)},
                "live_mean_score": sum(live) / len(live),
                "local_answers_matching_label": [agree, n_local]}
            res["runs"].append(run_res)
            print(f"share {share}: AUROC {run_res['auroc']:.3f}, realized {g['realized']:.3f}, "
                  f"gain {g['gain_fraction']}, private/PII to cloud {len(leaked)}/{len(private)}, "
                  f"live-offline score |d| max {max(diffs):.4f}, local answers = label "
                  f"{agree}/{n_local}", flush=True)
        if a.monitor:
            rows, private, leaked, hits = serve_half(a, None, test, None, fake)
            cloud = [r["reason"] == "low_confidence" for r in rows]
            scored = [(r["route_score"], w) for r, w in zip(rows, wrong)
                      if r["route_score"] is not None]
            g = gain(wrong, cloud)
            res["default_monitor"] = {
                "auroc": auroc([x for x, _ in scored], [w for _, w in scored]),
                "n_scored": len(scored), **g,
                "realized_by_half": [sum(cloud[: len(cloud) // 2]) / (len(cloud) // 2),
                                     sum(cloud[len(cloud) // 2:]) / (len(cloud) - len(cloud) // 2)],
                "reasons": {k: sum(1 for r in rows if r["reason"] == k)
                            for k in sorted({r["reason"] for r in rows})},
                "private_pii_sent": len(private), "private_pii_to_cloud": len(leaked),
                "provider_hits": hits}
            dm = res["default_monitor"]
            print(f"default monitor: escalated {dm['realized']:.3f}, AUROC {dm['auroc']}, "
                  f"scored {len(scored)}/{len(rows)}, gain {dm['gain_fraction']}, "
                  f"private/PII to cloud {len(leaked)}/{len(private)}", flush=True)
        res["ttft"] = ttft_run(a, router, test, float(a.shares.split(",")[0]), fake)
        print(f"TTFT p50: {res['ttft']}", flush=True)
    finally:
        fake.stop()
    commit = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    flags = []
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("flags"):
                flags = [f for f in line.split(":")[1].split() if f.startswith(("avx", "fma"))]
                break
    except OSError:
        pass
    doc = {"bench": "router-live-eval", "name": a.name,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit, "host": {"machine": platform.machine(), "nproc": os.cpu_count(),
                                      "cpu_flags": flags,
                                      "note": "shared 2-core machine under load"},
           "model": os.path.basename(a.model), "command": " ".join(sys.argv),
           "commands": [" ".join(c) for c in cmds], "result": res}
    out = a.out or os.path.join(SRC, "bench", "results", "router-live-{}-{}.json".format(
        a.name, datetime.date.today().isoformat()))
    json.dump(doc, open(out, "w"), indent=1)
    print(out)


if __name__ == "__main__":
    main()
