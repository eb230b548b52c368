#!/usr/bin/env bash
# Run HERE (Debian 12, with apt): download — not install — the .deb files a
# build on the lent GPU machine needs, into gpu-carry/debs (git-ignored). That
# machine has nvcc, cmake and ninja but no package registry and none of our C
# libraries; scripts/gpu/build.sh unpacks these into a private prefix there.
# Name gpu-carry in the device tool's `carry` list (the limit is 64 MiB).
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p gpu-carry/debs
cd gpu-carry/debs
PKGS=(
  # headers + link-time .so + pkg-config files
  libcjson-dev libpcre2-dev libcmocka-dev libmicrohttpd-dev libcurl4-openssl-dev libvulkan-dev
  # their runtime libraries (sonames the device image may lack)
  libcjson1 libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libcmocka0 libmicrohttpd12
  libcurl4 libvulkan1 libbrotli1 libgssapi-krb5-2 libkrb5-3 libk5crypto3 libkrb5support0
  libkeyutils1 libidn2-0 libunistring2 libldap-2.5-0 libsasl2-2 libnghttp2-14 libpsl5 librtmp1
  libssh2-1 libgnutls30 libhogweed6 libnettle8 libgmp10 libp11-kit0 libtasn1-6 libffi8
  # the shader compiler for the Vulkan build
  glslc libshaderc1
)
apt-get download "${PKGS[@]}" >/dev/null
du -sh .
