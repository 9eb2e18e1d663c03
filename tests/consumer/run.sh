#!/usr/bin/env bash
# run.sh — build a tiny program against an INSTALLED libnode, as a user would, and
# check the install itself:
#   - configured for one prefix, installed with `cmake --install --prefix P1`, then moved
#     to P2: the CMake package and both pkg-config files must work from P2 (relocatable);
#   - (a) find_package(libnode): libnode::node (static) and libnode::node_shared;
#     (b) pkg-config libnode (static archive); (c) pkg-config libnode_ode (shared);
#     (d) the same with absolute CMAKE_INSTALL_LIBDIR / CMAKE_INSTALL_INCLUDEDIR;
#   - no link line (pkg-config --libs, CMake's link commands) has a bare -lnode, which
#     would link Node.js's libnode.so on many systems;
#   - nothing installed is named like Node.js's files (libnode.so*, include/node/, node.h);
#   - libnode_ode.so exports only node_* symbols; soname libnode_ode.so.MAJOR.MINOR before
#     1.0 (MAJOR from 1.0 on), with the usual symlink chain.
# Usage: tests/consumer/run.sh   (builds its own copy in a temporary folder)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cflags=(-std=c99 -Wall -Wextra -Wpedantic -Werror)

say()  { echo "consumer: $*"; }
fail() { echo "consumer: FAIL: $*" >&2; exit 1; }

# no_bare_lnode WHAT TEXT: TEXT must not contain -lnode other than as -lnode_ode.
# (No `| grep -q` on a pipeline here or below: with pipefail, grep -q quitting early
# can make a match look like a failure.)
no_bare_lnode() {
    case "${2//-lnode_ode/}" in
        *-lnode*) printf '%s\n' "$2" >&2
                  fail "$1 has a bare -lnode (that would link Node.js's libnode.so)" ;;
    esac
}
# The check itself must fire on a bare -lnode and only there.
(no_bare_lnode self-test "cc a.o -lnode -lm") 2>/dev/null && fail "the -lnode check does not fire"
(no_bare_lnode self-test "cc a.o -L/x -lnode_ode -lm") || fail "the -lnode check fires on -lnode_ode"

# needs BINARY PATTERN: BINARY has a DT_NEEDED entry matching the grep PATTERN.
needs() {
    local n
    n=$(readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    grep -q -e "$2" <<< "$n"
}

version=$(sed -n 's/^project(libnode VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
major=${version%%.*}; minor=${version#*.}; minor=${minor%%.*}
if [ "$major" = 0 ]; then soversion=$major.$minor; else soversion=$major; fi

# ---- configure for one prefix, install into another, then move it ----------------
p1=$work/p1
p2=$work/elsewhere/p2
cmake -S "$root" -B "$work/lib" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_INSTALL_PREFIX="$work/configured" -DCMAKE_INSTALL_LIBDIR=lib \
      -DLIBNODE_BUILD_TESTS=OFF -DLIBNODE_BUILD_EXAMPLES=OFF -DLIBNODE_BUILD_BENCH=OFF \
      -DLIBNODE_WERROR=ON >/dev/null
cmake --build "$work/lib" -j2 >/dev/null
cmake --install "$work/lib" --prefix "$p1" >/dev/null
[ ! -e "$work/configured" ] || fail "cmake --install --prefix also wrote to the configured prefix"

say "installed files (cmake --install --prefix P1):"
(cd "$p1" && find . -type f -o -type l | sort | sed 's/^/  /')
if find "$p1" \( -name 'libnode.so*' -o -path '*/include/node/*' -o -name node.h \) | grep -q .; then
    fail "the install collides with Node.js's names"
fi

mkdir -p "$(dirname "$p2")"
mv "$p1" "$p2"
say "moved the install from P1 to P2 = $p2"
if stale=$(grep -rIl -e "$p1" -e "$work/configured" "$p2"); then
    fail "installed files still name the configured or the install-time prefix: $stale"
fi
libdir=$p2/lib

# ---- the shared library: soname, symlinks, exports --------------------------------
so=$libdir/libnode_ode.so
[ -L "$so" ] || fail "libnode_ode.so is missing or not a symlink"
[ "$(readlink "$so")" = "libnode_ode.so.$soversion" ] || fail "libnode_ode.so -> $(readlink "$so"), want libnode_ode.so.$soversion"
if [ "$soversion" != "$version" ]; then
    [ "$(readlink "$libdir/libnode_ode.so.$soversion")" = "libnode_ode.so.$version" ] ||
        fail "libnode_ode.so.$soversion does not point to libnode_ode.so.$version"
fi
if [ ! -f "$libdir/libnode_ode.so.$version" ] || [ -L "$libdir/libnode_ode.so.$version" ]; then
    fail "libnode_ode.so.$version is not the real file"
fi
soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libnode_ode.so.$soversion" ] || fail "soname is '$soname', want libnode_ode.so.$soversion"
say "soname $soname; libnode_ode.so -> libnode_ode.so.$soversion -> libnode_ode.so.$version"
bad=$(nm -D --defined-only "$so" | awk '$2 ~ /[TDBRWV]/ {print $3}' | grep -v '^node_' || true)
[ -z "$bad" ] || fail "libnode_ode.so exports non-node_ symbols: $bad"
say "libnode_ode.so exports $(nm -D --defined-only "$so" | grep -c ' node_') node_* symbols and nothing else"

# ---- (a) CMake package, from the moved tree ----------------------------------------
cmake_consumer() {    # cmake_consumer BUILD_DIR PREFIX LIBDIR: configure, build, run both
    local b=$1 prefix=$2 ld=$3
    cmake -S "$root/tests/consumer" -B "$b" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
    local found
    found=$(sed -n 's/^libnode_DIR:PATH=//p' "$b/CMakeCache.txt")
    [ "$found" = "$ld/cmake/libnode" ] || fail "find_package(libnode) found '$found', want $ld/cmake/libnode"
    cmake --build "$b" --verbose > "$b/build.log" 2>&1 || { cat "$b/build.log"; fail "CMake consumer build failed"; }
    local link_static link_shared
    link_static=$(grep -e '-o consumer_static ' "$b/build.log" || true)
    link_shared=$(grep -e '-o consumer_shared ' "$b/build.log" || true)
    if [ -z "$link_static" ] || [ -z "$link_shared" ]; then
        fail "no link command for consumer_static / consumer_shared in the verbose build"
    fi
    no_bare_lnode "CMake's link command for consumer_static ($link_static)" "$link_static"
    no_bare_lnode "CMake's link command for consumer_shared ($link_shared)" "$link_shared"
    case "$link_static" in *" $ld/libnode.a "*) ;; *) fail "consumer_static did not link $ld/libnode.a" ;; esac
    case "$link_shared" in *" $ld/libnode_ode.so"*) ;; *) fail "consumer_shared did not link $ld/libnode_ode.so" ;; esac
    ! needs "$b/consumer_static" libnode || fail "consumer_static needs a shared libnode"
    "$b/consumer_static"
    [ -x "$b/consumer_shared" ] || fail "libnode::node_shared is missing from the CMake package"
    needs "$b/consumer_shared" "^libnode_ode\.so\.$soversion\$" || fail "consumer_shared does not need libnode_ode.so.$soversion"
    LD_LIBRARY_PATH="$ld" "$b/consumer_shared"
}
cmake_consumer "$work/cm" "$p2" "$libdir"
say "(a) find_package(libnode) from the moved install: libnode::node and libnode::node_shared OK"
# The package version follows the soname: before 1.0, an older minor version is refused.
if [ "$major" = 0 ] && [ "$minor" -gt 0 ]; then
    older=0.$((minor - 1))
    mkdir -p "$work/older"
    printf 'cmake_minimum_required(VERSION 3.16)\nproject(older NONE)\nfind_package(libnode %s REQUIRED)\n' \
        "$older" > "$work/older/CMakeLists.txt"
    if cmake -S "$work/older" -B "$work/older/build" -DCMAKE_PREFIX_PATH="$p2" >/dev/null 2>&1; then
        fail "find_package(libnode $older) accepted libnode $version (another ABI before 1.0)"
    fi
    say "find_package(libnode $older) refuses $version"
fi

# ---- (b), (c) pkg-config, from the moved tree ----------------------------------------
pc_consumer() {       # pc_consumer PKGCONFIG_DIR LIBDIR OUT_PREFIX
    local pcdir=$1 ld=$2 out=$3 libs
    for pc in libnode libnode_ode; do
        [ -f "$pcdir/$pc.pc" ] || fail "$pc.pc is not installed"
        for mode in "" --static; do
            libs=$(PKG_CONFIG_PATH="$pcdir" pkg-config $mode --libs "$pc")
            no_bare_lnode "pkg-config $mode --libs $pc ($libs)" "$libs"
        done
    done
    # (b) the static archive
    # shellcheck disable=SC2046
    cc "${cflags[@]}" $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags libnode) \
       "$root/tests/consumer/consumer.c" -o "$out-static" $(PKG_CONFIG_PATH="$pcdir" pkg-config --libs libnode)
    ! needs "$out-static" libnode || fail "pkg-config libnode linked a shared libnode"
    "$out-static"
    # (c) the shared library
    # shellcheck disable=SC2046
    cc "${cflags[@]}" $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags libnode_ode) \
       "$root/tests/consumer/consumer.c" -o "$out-shared" $(PKG_CONFIG_PATH="$pcdir" pkg-config --libs libnode_ode)
    needs "$out-shared" "^libnode_ode\.so\.$soversion\$" || fail "pkg-config libnode_ode did not link libnode_ode.so.$soversion"
    LD_LIBRARY_PATH="$ld" "$out-shared"
}
pc_consumer "$libdir/pkgconfig" "$libdir" "$work/pc"
say "(b) pkg-config libnode: $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --libs libnode)"
say "(c) pkg-config libnode_ode: $(PKG_CONFIG_PATH="$libdir/pkgconfig" pkg-config --libs libnode_ode)"

# ---- (d) absolute install dirs still work ------------------------------------------
# (outside the install prefix, which then holds nothing)
abs=$work/abs
cmake -S "$root" -B "$work/lib" -DCMAKE_INSTALL_PREFIX="$work/abs-prefix" \
      -DCMAKE_INSTALL_LIBDIR="$abs/lib" -DCMAKE_INSTALL_INCLUDEDIR="$abs/include" >/dev/null
cmake --build "$work/lib" -j2 >/dev/null
cmake --install "$work/lib" >/dev/null
if [ ! -f "$abs/include/libnode.h" ] || [ ! -f "$abs/lib/libnode.a" ] || [ -e "$work/abs-prefix" ]; then
    fail "absolute CMAKE_INSTALL_LIBDIR/INCLUDEDIR not honoured"
fi
pc_consumer "$abs/lib/pkgconfig" "$abs/lib" "$work/abs-pc"
cmake_consumer "$work/abs-cm" "$abs" "$abs/lib"
say "(d) absolute CMAKE_INSTALL_LIBDIR/INCLUDEDIR: pkg-config and CMake package OK"

say "OK (relocated install: CMake package, pkg-config libnode and libnode_ode; no bare -lnode)"
