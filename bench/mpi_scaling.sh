#!/usr/bin/env bash
# mpi_scaling.sh — strong scaling of examples/spiral_mpi.c: the same global batch on
# 1, 2, 4 ... ranks (each rank a core), ms per iteration split into the slowest
# rank's compute and the allreduce, with the allreduce timed alone after training.
# Prints a Markdown table; the raw JSON lines go to $OUT/*.json.
#
#   bench/mpi_scaling.sh [BUILD_DIR] [MAX_RANKS]        (defaults: build, the cores)
#   env: BATCHES="512 2048"  WIDTHS="50 256"  ITERS=10  NPS="1 2 4 8"  OUT=mpi_scaling_out
#        MPIEXEC=mpirun  MPIFLAGS="--bind-to core"  (root and oversubscription are
#        handled: Open MPI's --allow-run-as-root / --oversubscribe are added when needed)
# Build first: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build
# Across nodes: MPIFLAGS="--hostfile hosts --map-by node --bind-to core".
set -euo pipefail
build=${1:-build}
maxnp=${2:-$(nproc)}
batches=${BATCHES:-512 2048}
widths=${WIDTHS:-50 256}
iters=${ITERS:-10}
out=${OUT:-mpi_scaling_out}
mpiexec=${MPIEXEC:-mpirun}
flags=${MPIFLAGS:---bind-to core}
prog=$build/spiral_mpi
[ -x "$prog" ] || { echo "mpi_scaling.sh: $prog not built (MPI found by CMake?)" >&2; exit 2; }
command -v "$mpiexec" >/dev/null || { echo "mpi_scaling.sh: no $mpiexec" >&2; exit 2; }
if [ -z "${NPS:-}" ]; then
    NPS=""
    for ((p = 1; p <= maxnp; p *= 2)); do NPS="$NPS $p"; done
    [ $((p / 2)) -eq "$maxnp" ] || NPS="$NPS $maxnp"
fi
extra=()
if "$mpiexec" --version 2>&1 | grep -q 'Open MPI\|OpenRTE'; then
    [ "$(id -u)" -ne 0 ] || { extra+=(--allow-run-as-root); export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; }
    [ "$maxnp" -le "$(nproc)" ] || extra+=(--oversubscribe)
fi
mkdir -p "$out"
# one field of a JSON line (flat, numbers or strings), without a JSON tool
field() { sed -n "s/.*\"$2\": \([^,}]*\).*/\1/p" "$1" | tr -d '"'; }

echo "spiral_mpi strong scaling: $(uname -n), $(nproc) cores, $iters iterations per run, rk4, MLP 2-W-2 on y^3, windows of 10 points"
echo
echo "| width | params | bytes/allreduce | batch | ranks | ms/iter | compute ms (slowest rank) | compute CPU ms (slowest) | allreduce ms (in loop) | allreduce alone µs | speedup | efficiency |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for w in $widths; do
    for b in $batches; do
        base=""
        for np in $NPS; do
            [ "$np" -le "$b" ] || continue
            j=$out/w${w}_b${b}_np${np}.json
            data=$(( b + 10 > 4096 ? b + 10 : 4096 ))
            # shellcheck disable=SC2086
            "$mpiexec" "${extra[@]}" $flags -np "$np" "$prog" --width "$w" --batch-size "$b" \
                --data-size "$data" --iters "$iters" --out "$out/svg" 2>/dev/null | tail -n 1 > "$j"
            ms=$(field "$j" ms_per_iteration)
            [ -n "$base" ] || base=$ms
            awk -v w="$w" -v b="$b" -v np="$np" -v ms="$ms" -v base="$base" \
                -v p="$(field "$j" nparams)" -v by="$(field "$j" bytes_per_allreduce)" \
                -v c="$(field "$j" compute_ms_slowest)" -v cc="$(field "$j" compute_cpu_ms_slowest)" -v a="$(field "$j" allreduce_ms)" \
                -v al="$(field "$j" allreduce_alone_us)" 'BEGIN {
                    printf "| %d | %d | %d | %d | %d | %.2f | %.2f | %.2f | %.3f | %.2f | %.2f | %.0f %% |\n",
                           w, p, by, b, np, ms, c, cc, a, al, base / ms, 100 * base / ms / np }'
        done
    done
done
