#!/usr/bin/env bash
# Run the whole Spillway test suite: install dependencies, build (CUDA compiled
# when nvcc exists — compile only without a GPU; Vulkan on, tested on Mesa's
# lavapipe), run ctest, then rebuild with ASan+UBSan and run the tests again,
# then run every fuzzer (tests/fuzz/fuzz_*.c: GGUF, OpenAI and Anthropic
# requests, SSE, route config, tokenizers, grammars, templates, ...) for a
# bounded time each. Ends with one summary of all three stages.
#   scripts/test.sh            everything
#   scripts/test.sh --quick    main build + ctest only
# SW_FUZZ_SECONDS (default 30) sets the time per fuzzer.
set -uo pipefail
cd "$(dirname "$0")/.."
QUICK=0
[ "${1:-}" = "--quick" ] && QUICK=1
JOBS=$(nproc)
FUZZ_SECONDS=${SW_FUZZ_SECONDS:-30}
LOG=build-logs
mkdir -p "$LOG"

step() { printf '\n==== %s ====\n' "$*"; }
SUMMARY=()
FAILED=0
record() { # stage, status, detail
  SUMMARY+=("$(printf '%-22s %-6s %s' "$1" "$2" "$3")")
  [ "$2" = ok ] || FAILED=1
}
summary() {
  step "summary"
  printf '%s\n' "${SUMMARY[@]}"
  if [ "$FAILED" = 0 ]; then echo "ALL PASSED"; else echo "FAILED"; fi
  exit "$FAILED"
}
# ctest's own tail: "N% tests passed, M tests failed out of K" and the list of skips.
ctest_stage() { # name, build dir, extra env...
  local name=$1 dir=$2; shift 2
  local out=$LOG/ctest-$name.log
  env "$@" ctest --test-dir "$dir" --output-on-failure -j"$JOBS" 2>&1 | tee "$out"
  local rc=${PIPESTATUS[0]}
  local line skipped
  line=$(grep -E '^[0-9]+% tests passed' "$out" | tail -n1)
  skipped=$(grep -cE '\(Skipped\)$' "$out")
  if [ "$rc" = 0 ]; then record "tests ($name)" ok "$line; $skipped skipped"
  else record "tests ($name)" FAIL "$line (see $out)"; fi
}

if ! scripts/install-deps.sh --test; then
  record "install-deps" FAIL "scripts/install-deps.sh --test"
  summary
fi

step "build (Release)"
if cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null && cmake --build build -j"$JOBS"; then
  record "build (Release)" ok ""
  step "tests (Release)"
  ctest_stage Release build
else
  record "build (Release)" FAIL ""
  summary
fi

[ "$QUICK" = 1 ] && summary

step "build (ASan + UBSan)"
# CUDA objects add nothing to a host-side sanitizer run; they were compiled above.
if cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DSW_SANITIZE=ON -DSW_CUDA=OFF >/dev/null &&
   cmake --build build-asan -j"$JOBS"; then
  record "build (ASan+UBSan)" ok ""
  step "tests (ASan + UBSan)"
  ctest_stage ASan+UBSan build-asan ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
else
  record "build (ASan+UBSan)" FAIL ""
fi

step "fuzz (libFuzzer, ${FUZZ_SECONDS}s per target)"
targets=()
for src in tests/fuzz/fuzz_*.c; do targets+=("$(basename "$src" .c)"); done
if CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DSW_FUZZ=ON -DSW_CUDA=OFF \
     -DSW_VULKAN=OFF >/dev/null && cmake --build build-fuzz -j"$JOBS" --target "${targets[@]}"; then
  for name in "${targets[@]}"; do
    corpus="tests/fuzz/corpus/${name#fuzz_}"
    work=build-fuzz/corpus-$name
    mkdir -p "$work" "$corpus"
    echo "---- $name ----"
    # fuzz_tokenizer reads the test vocabularies from ../shared (it says so when absent)
    SW_SHARED_DIR="$(cd .. && pwd)/shared" \
      build-fuzz/bin/"$name" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 \
      -print_final_stats=1 "$work" "$corpus" >"$LOG/$name.log" 2>&1
    rc=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$LOG/$name.log" | grep -oE '[0-9]+$')
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$LOG/$name.log"
    if [ "$rc" = 0 ]; then record "fuzz $name" ok "${runs:-?} runs in ${FUZZ_SECONDS}s"
    else tail -n 40 "$LOG/$name.log"; record "fuzz $name" FAIL "rc $rc (see $LOG/$name.log)"; fi
  done
else
  record "build (fuzz)" FAIL ""
fi
summary
