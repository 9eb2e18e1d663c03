#!/usr/bin/env bash
# device_run.sh — the training benchmark side by side on one machine that has the peers
# (the project's device machine: PyTorch + torchdiffeq, JAX + diffrax), every program on
# one pinned core.  Builds libnode, then runs bench_train, torchdiffeq_bench.py and
# diffrax_bench.py and prints their tables.  About 5 minutes.
# Usage: bash bench/peers/device_run.sh [--quick]
set -uo pipefail
cd "$(dirname "$0")/../.."
core=${CORE:-2}
cmake -S . -B build-device -DLIBNODE_BUILD_TESTS=OFF >/dev/null && cmake --build build-device -j 8 --target bench_train >/dev/null || exit 1
echo "## machine"; lscpu | grep -E "Model name|^CPU\(s\)|MHz" ; echo
echo "## libnode (bench_train)"; taskset -c "$core" ./build-device/bench_train "$@"; echo
echo "## torchdiffeq"; taskset -c "$core" python3 bench/peers/torchdiffeq_bench.py "$@"; echo
echo "## diffrax"
JAX_PLATFORMS=cpu XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
    taskset -c "$core" python3 bench/peers/diffrax_bench.py "$@"
