"""`spillway-bench serve` against a spillway-server: every request completes
with the tokens it asked for, and --distinct-prompts really keeps every
prompt out of the server's prefix cache (no cache hit), while the same
prompt sent again is served from it (so the check can fail). Numbers are not
checked: performance is shown by benchmarks, not by tests."""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_server import Server, find_model, metric, run, server_bin, skip  # noqa: E402

BENCH = os.path.join(os.path.dirname(server_bin()), "spillway-bench")


def bench(port, *extra):
    r = subprocess.run([BENCH, "serve", "--url", f"http://127.0.0.1:{port}", "--concurrency",
                        "1,3", "--requests", "6", "--prompt-tokens", "40", "--max-tokens", "3",
                        "--json", *extra], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    levels = json.loads(r.stdout)
    assert [lv["concurrency"] for lv in levels] == [1, 3], levels
    for lv in levels:
        assert lv["failed"] == 0 and lv["gen_tokens"] == 6 * 3, lv
    return levels


def hits(port):
    return metric(port, "spillway_prefix_cache_hits_total") or 0


def test_distinct_prompts(model):
    srv = Server(model, "--parallel", "4", "--threads", "1")
    try:
        bench(srv.port, "--distinct-prompts")
        assert hits(srv.port) == 0, "a distinct prompt was found in the prefix cache"
        bench(srv.port)  # one prompt twelve times: the cache serves it
        assert hits(srv.port) > 0, "the repeated prompt never hit the prefix cache"
    finally:
        assert srv.stop() == 0


def test_bad_flag():
    r = subprocess.run([BENCH, "serve", "--url", "http://127.0.0.1:1", "--distinct"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--distinct" in r.stderr, (r.returncode, r.stderr)


def main():
    if not os.access(BENCH, os.X_OK):
        skip(f"no spillway-bench at {BENCH}")
    model, _ = find_model()
    run([("test_distinct_prompts", lambda: test_distinct_prompts(model)),
         ("test_bad_flag", test_bad_flag)])


if __name__ == "__main__":
    main()
