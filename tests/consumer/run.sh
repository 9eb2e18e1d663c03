#!/usr/bin/env bash
# run.sh — install libnode into a scratch prefix and build a tiny program against the
# installed copy through both its CMake package and pkg-config.  Also checks that the
# install collides with nothing of Node.js's (libnode.so, include/node/) and that the
# shared library exports only node_* symbols.
# Usage: tests/consumer/run.sh   (builds its own copy in a temporary folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake -S "$root" -B "$work/lib" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$prefix" \
      -DLIBNODE_BUILD_TESTS=OFF -DLIBNODE_BUILD_EXAMPLES=OFF -DLIBNODE_BUILD_BENCH=OFF \
      -DLIBNODE_WERROR=ON >/dev/null
cmake --build "$work/lib" -j2 >/dev/null
cmake --install "$work/lib" >/dev/null

echo "consumer: installed files:"
(cd "$prefix" && find . -type f -o -type l | sort | sed 's/^/  /')
if find "$prefix" \( -name 'libnode.so*' -o -path '*/include/node/*' -o -name node.h \) | grep -q .; then
    echo "consumer: FAIL: the install collides with Node.js's names" >&2
    exit 1
fi

libdir=$(dirname "$(find "$prefix" -name libnode.a | head -n1)")
shared=$(find "$prefix" -name 'libnode_ode.so' | head -n1)
if [ -n "$shared" ]; then
    bad=$(nm -D --defined-only "$shared" | awk '$2 ~ /[TDBRW]/ {print $3}' | grep -v '^node_' || true)
    if [ -n "$bad" ]; then
        echo "consumer: FAIL: libnode_ode.so exports non-node_ symbols:" $bad >&2
        exit 1
    fi
    echo "consumer: libnode_ode.so exports $(nm -D --defined-only "$shared" | grep -c ' node_') node_* symbols and nothing else"
fi

# 1. CMake package
cmake -S "$root/tests/consumer" -B "$work/cm" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cm" >/dev/null
"$work/cm/consumer_static"
if [ -x "$work/cm/consumer_shared" ]; then
    LD_LIBRARY_PATH="$libdir" "$work/cm/consumer_shared"
fi

# 2. pkg-config
export PKG_CONFIG_PATH="$libdir/pkgconfig"
cc -std=c99 -Wall -Wextra -Wpedantic -Werror $(pkg-config --cflags libnode) \
   "$root/tests/consumer/consumer.c" -o "$work/pc" $(pkg-config --libs libnode)
"$work/pc"
echo "consumer: OK (CMake package and pkg-config)"
