#!/usr/bin/env bash
# bench/kernels.sh NAME [spillway-bench kernels options...]
# Runs `spillway-bench kernels --json` with the options and saves the report,
# with the commit it ran on, to bench/results/kernels-NAME-DATE-COMMIT.json
# (docs/bench.md). SW_BIN_DIR picks the build (default: build/bin).
set -euo pipefail
if [[ $# -lt 1 || "$1" == -* ]]; then
    echo "usage: bench/kernels.sh NAME [spillway-bench kernels options...]" >&2
    exit 2
fi
name="$1"
shift
root="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SW_BIN_DIR:-$root/build/bin}"
commit="$(git -C "$root" rev-parse --short HEAD)"
dirty="$(git -C "$root" status --porcelain --untracked-files=no | head -1)"
out="$root/bench/results/kernels-$name-$(date -u +%Y-%m-%d)-$commit.json"
tmp="$(mktemp)"
trap 'rm -f "$tmp"' EXIT
"$bin/spillway-bench" kernels --json "$@" >"$tmp"
python3 - "$tmp" "$out" "$commit${dirty:+-dirty}" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d = {"commit": sys.argv[3], **d}
with open(sys.argv[2], "w") as f:
    json.dump(d, f, indent=1)
    f.write("\n")
PY
echo "$out"
