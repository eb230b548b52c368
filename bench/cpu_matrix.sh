#!/bin/sh
# bench/cpu_matrix.sh — the model table of docs/cpu.md in one command: makes
# the synthetic models (spillway-mkmodel, seed 1) if missing, fetches SmolLM2,
# and runs bench/cpu_compare.py (ours and llama-bench alternating) on every
# model for each kernel set, one JSON per set and thread count under
# bench/results/ (cpu-DATE-COMMIT-ISA-tTHREADS.json).
#
# usage: LLAMA_BENCH=PATH [LLAMA_BENCH_AVX2=PATH] bench/cpu_matrix.sh
#            [-t THREADS] [-r ROUNDS] [-n REPS] [-i "avx512 avx2"] [-d MODEL_DIR] [-g]
#   LLAMA_BENCH       llama-bench of a GGML_NATIVE=ON build (the avx512 rows)
#   LLAMA_BENCH_AVX2  llama-bench of a GGML_NATIVE=OFF GGML_AVX2=ON GGML_AVX512=OFF
#                     build (the avx2 rows; default LLAMA_BENCH)
#   PEER_ENV          NAME=VALUE for llama-bench's environment, e.g.
#                     OMP_WAIT_POLICY=passive on a loaded host (cpu_compare.py --peer-env)
#   -t  threads (default 1)      -r  rounds (default 3)
#   -n  repetitions per round for the 100M shapes and SmolLM2 (default 3); the
#       tiny models, whose runs last milliseconds, get 4x as many
#   -g  add Gemma 3 270M (scripts/fetch-model.sh gemma3)
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=1 R=3 N=3 ISAS="avx512 avx2" DIR=${TMPDIR:-/tmp}/spillway-cpu-models GEMMA=0
while getopts t:r:n:i:d:g o; do
    case $o in
    t) T=$OPTARG ;; r) R=$OPTARG ;; n) N=$OPTARG ;; i) ISAS=$OPTARG ;; d) DIR=$OPTARG ;;
    g) GEMMA=1 ;;
    *) sed -n '2,18p' "$0" >&2; exit 2 ;;
    esac
done
: "${LLAMA_BENCH:?set LLAMA_BENCH to llama.cpp's llama-bench (see docs/cpu.md)}"
MK=$ROOT/build/bin/spillway-mkmodel
mkdir -p "$DIR"
for t in q4_0 q4_k_m q8_0; do
    f=$DIR/synth-100m-$t.gguf
    [ -s "$f" ] || "$MK" -o "$f" --shape 100m --type "$t" --seed 1 >/dev/null
done
for t in q4_k q5_k q6_k; do
    f=$DIR/tiny512-$t.gguf
    [ -s "$f" ] || "$MK" -o "$f" --shape tiny --dim 512 --ff 1536 --heads 8 --kv-heads 4 \
        --type "$t" --seed 1 >/dev/null
done
BIG="$("$ROOT"/scripts/fetch-model.sh smollm2) $DIR/synth-100m-q4_0.gguf"
BIG="$BIG $DIR/synth-100m-q4_k_m.gguf $DIR/synth-100m-q8_0.gguf"
[ "$GEMMA" = 1 ] && BIG="$BIG $("$ROOT"/scripts/fetch-model.sh gemma3)"
TINY="$DIR/tiny512-q4_k.gguf $DIR/tiny512-q5_k.gguf $DIR/tiny512-q6_k.gguf"
COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
for isa in $ISAS; do
    if [ "$isa" = avx2 ]; then
        LB=${LLAMA_BENCH_AVX2:-$LLAMA_BENCH} LABEL="GGML_NATIVE=OFF GGML_AVX2=ON GGML_AVX512=OFF"
    else
        LB=$LLAMA_BENCH LABEL="GGML_NATIVE=ON"
    fi
    OUT=$ROOT/bench/results/cpu-$(date -u +%Y-%m-%d)-$COMMIT-$isa-t$T
    # shellcheck disable=SC2086
    python3 "$ROOT"/bench/cpu_compare.py --llama-bench "$LB" --peer-label "$LABEL" \
        --peer-commit "${LLAMA_COMMIT:-3f545becc}" --isa "$isa" --threads "$T" --rounds "$R" \
        --reps "$N" ${PEER_ENV:+--peer-env "$PEER_ENV"} --out "$OUT.json" $BIG
    # shellcheck disable=SC2086
    python3 "$ROOT"/bench/cpu_compare.py --llama-bench "$LB" --peer-label "$LABEL" \
        --peer-commit "${LLAMA_COMMIT:-3f545becc}" --isa "$isa" --threads "$T" --rounds "$R" \
        --reps $((4 * N)) ${PEER_ENV:+--peer-env "$PEER_ENV"} --out "$OUT-tiny.json" $TINY
done
