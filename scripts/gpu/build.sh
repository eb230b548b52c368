#!/usr/bin/env bash
# Run ON THE LENT GPU MACHINE (via the device tool), from the repository root,
# with gpu-carry/ carried (see scripts/gpu/carry-deps.sh). Unpacks the carried
# .deb files into /tmp/swdeps, builds with CUDA for sm_90 (and Vulkan when the
# Vulkan loader can be found), and leaves the build in build-gpu/.
#   scripts/gpu/build.sh [extra cmake args]
# Afterwards, in the same command: source scripts/gpu/env.sh before running
# binaries, so the unpacked shared libraries are found.
set -euo pipefail
cd "$(dirname "$0")/../.."
P=/tmp/swdeps
if [ -d gpu-carry/debs ] && [ ! -f "$P/.unpacked" ]; then
  mkdir -p "$P"
  for f in gpu-carry/debs/*.deb; do dpkg -x "$f" "$P"; done
  touch "$P/.unpacked"
fi
. scripts/gpu/env.sh
VK=OFF
if [ -x "$P/usr/bin/glslc" ] && [ -e "$P/usr/lib/x86_64-linux-gnu/libvulkan.so" ]; then VK=ON; fi
GEN=()
command -v ninja >/dev/null && GEN=(-G Ninja)
# pkg-config (if the image has one) would read .pc files that point at /usr:
# the find_path/find_library fallback with CMAKE_PREFIX_PATH is used instead.
cmake -S . -B build-gpu "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DSW_CUDA=ON -DSW_VULKAN=$VK \
  -DCMAKE_CUDA_ARCHITECTURES=90 -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON \
  -DSW_GLSLC="$P/usr/bin/glslc" -DVulkan_INCLUDE_DIR="$P/usr/include" \
  -DVulkan_LIBRARY="$P/usr/lib/x86_64-linux-gnu/libvulkan.so" "$@"
cmake --build build-gpu -j"$(nproc)"
