#!/usr/bin/env bash
# Install what Spillway needs on Debian 12, idempotently: system packages with
# apt-get (only when one is missing). With --test, also a Python virtualenv
# (.venv) with the test-only packages pinned in tests/requirements.txt (gguf
# reference reader, numpy, the official openai and anthropic clients, jinja2,
# jsonschema), and Debian's chromium for the web page's browser test
# (tests/py/test_web.py drives it headless over the DevTools pipe). Serving
# needs neither. Safe to run again; does nothing when all is present.
#   scripts/install-deps.sh          build + serve dependencies
#   scripts/install-deps.sh --test   also the test virtualenv
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config git curl ca-certificates
      libcurl4-openssl-dev libcjson-dev libmicrohttpd-dev libpcre2-dev
      libcmocka-dev libstb-dev libvulkan-dev glslc mesa-vulkan-drivers vulkan-tools
      python3 python3-venv python3-pip clang libclang-rt-14-dev)
[ "${1:-}" = "--test" ] && PKGS+=(chromium)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]} (apt-get log: /tmp/spillway-apt.log)" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  # apt's progress goes to a log; on failure its tail is shown
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
           -o Dpkg::Use-Pty=0 --no-install-recommends "${missing[@]}"; } >/tmp/spillway-apt.log 2>&1; then
    tail -n 20 /tmp/spillway-apt.log >&2
    echo "install-deps: apt-get failed (full log: /tmp/spillway-apt.log)" >&2
    exit 1
  fi
  echo "install-deps: installed ${#missing[@]} package(s)" >&2
fi

[ "${1:-}" = "--test" ] || exit 0

# Test-only Python packages live in a virtualenv (Debian's Python is
# externally managed). Use the system interpreter so the venv does not depend
# on a user-level Python.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=$(command -v python3)
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements-installed
if [ ! -f "$stamp" ] || ! cmp -s tests/requirements.txt "$stamp"; then
  echo "install-deps: installing the pinned python test packages into .venv" >&2
  .venv/bin/pip install -q --disable-pip-version-check -r tests/requirements.txt >&2
  cp tests/requirements.txt "$stamp"
fi
