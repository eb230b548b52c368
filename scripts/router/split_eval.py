#!/usr/bin/env python3
"""The hidden evaluation's protocol on a labelled dev set: train the router on
one half (even lines) with `spillway-router train`, score the other half with
`spillway-router eval --router --scores`, then replay those scores in arrival
order through the cloud-share controller's rule (fallback/share.c: a window of
the last 500 scores, warm-started from the router's out-of-fold scores; cloud
when above the (1 - S) quantile) at S = 0.2 and 0.4. Reports AUROC of
route_score, realized share, PGR, and the gain over a random router as a
fraction of the way to a perfect one. Writes bench/results JSON.

    split_eval.py -m MODEL --data labelled.jsonl --name devset2 [--features F]
"""
import argparse
import bisect
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile

SRC = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WINDOW = 500


def replay(warm, scores, share):
    m = len(warm)
    k = min(m, WINDOW)
    p = 7919 if k % 7919 else 1
    ring = [warm[((i * p) % k * m + m // 2) // k] for i in range(k)]
    srt = sorted(ring)
    out = []
    for s in scores:
        i = math.ceil((1 - share) * len(srt)) - 1
        out.append(s > (srt[i] if i >= 0 else -math.inf))
        if len(ring) == WINDOW:
            srt.remove(ring.pop(0))
        ring.append(s)
        bisect.insort(srt, s)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--features", default=None,
                    help="spillway-router train --features (default: its default)")
    ap.add_argument("--bin", default=os.path.join(SRC, "build", "bin", "spillway-router"))
    a = ap.parse_args()
    lines = open(a.data).readlines()
    tmp = tempfile.mkdtemp()
    tr, te = os.path.join(tmp, "train.jsonl"), os.path.join(tmp, "test.jsonl")
    open(tr, "w").writelines(lines[0::2])
    open(te, "w").writelines(lines[1::2])
    router, scores = os.path.join(tmp, "router.json"), os.path.join(tmp, "scores.jsonl")
    cmds = [[a.bin, "train", "-m", a.model, "--data", tr, "--out", router, "-q"] +
             (["--features", a.features] if a.features else []),
            [a.bin, "eval", "-m", a.model, "--data", te, "--router", router, "--json", "-q",
             "--scores", scores, "--max-tokens", "128"]]
    outs = []
    for c in cmds:
        r = subprocess.run(c, capture_output=True, text=True)
        if r.returncode:
            sys.exit(f"{' '.join(c)}: {r.stderr}")
        outs.append(r.stdout)
    ev = json.loads(outs[1])
    warm = sorted(json.load(open(router))["training"]["oof_scores"])
    items = [json.loads(x) for x in open(scores)]
    wrong = [not x["local_ok"] for x in items]
    res = {"train_cv": outs[0].strip(), "eval": ev, "budget": []}
    for share in (0.2, 0.4):
        cloud = replay(warm, [x["precall"] for x in items], share)
        n, w = len(items), sum(wrong)
        real = sum(cloud) / n
        pgr = sum(1 for x, c in zip(wrong, cloud) if x and c) / w
        perfect = min(1.0, real * n / w)
        res["budget"].append({"cloud_share": share, "realized": real, "pgr": pgr,
                              "random_pgr": real, "perfect_pgr": perfect,
                              "gain_fraction": (pgr - real) / (perfect - real)
                              if perfect > real else None})
        print(f"share {share}: realized {real:.3f}, PGR {pgr:.3f} (random {real:.3f}, perfect "
              f"{perfect:.3f})")
    print(f"held-out AUROC of route_score: {ev['signals'][0]['auroc']:.3f}")
    commit = subprocess.run(["git", "-C", SRC, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    doc = {"bench": "router-split-eval", "name": a.name,
           "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "commit": commit, "host": {"machine": platform.machine(), "nproc": os.cpu_count()},
           "model": os.path.basename(a.model), "command": " ".join(sys.argv),
           "commands": [" ".join(c) for c in cmds], "result": res}
    path = os.path.join(SRC, "bench", "results",
                        f"router-split-{a.name}-{datetime.date.today().isoformat()}.json")
    json.dump(doc, open(path, "w"), indent=1)
    print(path)


if __name__ == "__main__":
    main()
