#!/usr/bin/env bash
# Run the whole Spillway test suite: install dependencies, build (CUDA compiled
# when nvcc exists — compile only without a GPU; Vulkan on, tested on Mesa's
# lavapipe), run ctest, then rebuild with ASan+UBSan and run the tests again,
# then run the fuzzers (GGUF, OpenAI requests, SSE, route config, tokenizers,
# the JSON-mode grammar) for a bounded time each.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    main build + ctest only
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
JOBS=$(nproc)
FUZZ_SECONDS=${SW_FUZZ_SECONDS:-40}

scripts/install-deps.sh --test

step() { printf '\n==== %s ====\n' "$*"; }

step "build (Release)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$JOBS"

step "tests (Release)"
ctest --test-dir build --output-on-failure -j"$JOBS"

if [ "$QUICK" = 1 ]; then exit 0; fi

step "build (ASan + UBSan)"
# CUDA objects add nothing to a host-side sanitizer run; they were compiled above.
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSW_SANITIZE=ON -DSW_CUDA=OFF >/dev/null
cmake --build build-asan -j"$JOBS"

step "tests (ASan + UBSan)"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$JOBS"

step "fuzz (libFuzzer, ${FUZZ_SECONDS}s per target)"
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSW_FUZZ=ON -DSW_CUDA=OFF -DSW_VULKAN=OFF >/dev/null
cmake --build build-fuzz -j"$JOBS" --target fuzz_gguf fuzz_oai fuzz_sse fuzz_route_config fuzz_tokenizer fuzz_json_grammar
for f in build-fuzz/bin/fuzz_*; do
  name=$(basename "$f"); corpus="tests/fuzz/corpus/${name#fuzz_}"
  work=build-fuzz/corpus-$name; mkdir -p "$work"
  # fuzz_tokenizer reads the test vocabularies from ../shared (it says so when absent)
  SW_SHARED_DIR="$(cd .. && pwd)/shared" \
    "$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 "$work" "$corpus" 2>&1 | tail -n 12
done
echo "fuzz: no crash"
