#!/usr/bin/env bash
# coverage.sh — fuzz the model-file parser for a while, then measure the line
# coverage of the parser (node__mlp_load_mem and what it calls in src/nn/io.c) with
# clang's source-based coverage, and fail below a threshold.
# Usage: tests/fuzz/coverage.sh [SECONDS_PER_HARNESS=20] [MIN_PERCENT=85] [OUT=build-fuzzcov]
# (0 seconds: the seeds alone, no fuzzing.)
# Needs clang with libFuzzer and llvm-profdata / llvm-cov (Debian: clang,
# libclang-rt-14-dev, llvm-14; the -14 suffixed tools are found too).
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-20}
min=${2:-85}
out=${3:-build-fuzzcov}
profdata=$(command -v llvm-profdata || command -v llvm-profdata-14)
llvmcov=$(command -v llvm-cov || command -v llvm-cov-14)
mkdir -p "$out"
srcs=$(find src -name '*.c' | sort)
# The parser's functions: the entry point and everything it reaches in io.c (the
# writer and the file-path message helper are not part of it).
parser='node__mlp_load_mem|node__mlp_parse|read_head|read_params|:get |mem_read|get_u32|get_u64|sat_add|sat_mul|node__crc32|node__io_say'
profiles=()
for h in fuzz_mlp_load fuzz_mlp_load_crc; do
    # 1. fuzz with the sanitizers, from the seeds, into a fresh corpus
    clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
        "tests/fuzz/$h.c" $srcs -lm -o "$out/$h"
    rm -rf "$out/corpus-$h" && mkdir -p "$out/corpus-$h"
    cp tests/fuzz/corpus/* "$out/corpus-$h/"
    if [ "$secs" -gt 0 ]; then
        "$out/$h" -max_total_time="$secs" -seed=1 "$out/corpus-$h" 2>&1 | grep -E '^#[0-9]+[[:space:]]+DONE' || true
    fi
    # 2. replay that corpus through a coverage build
    clang -g -O1 -fsanitize=fuzzer -fprofile-instr-generate -fcoverage-mapping \
        -Iinclude -Isrc "tests/fuzz/$h.c" $srcs -lm -o "$out/$h-cov"
    LLVM_PROFILE_FILE="$out/$h.profraw" "$out/$h-cov" -runs=0 "$out/corpus-$h" >/dev/null 2>&1
    "$profdata" merge -sparse "$out/$h.profraw" -o "$out/$h.profdata"
    profiles+=("$out/$h.profraw")
    "$llvmcov" report "$out/$h-cov" -instr-profile="$out/$h.profdata" src/nn/io.c \
        --show-functions | awk -v h="$h" -v re="$parser" \
        '$0 ~ re { L += $5; M += $6 } END { printf "%s: parser lines %d, missed %d, %.1f%%\n", h, L, M, 100 * (L - M) / L }'
done
# Both harnesses together (the same sources, so one binary reads both profiles).
"$profdata" merge -sparse "${profiles[@]}" -o "$out/both.profdata"
"$llvmcov" report "$out/fuzz_mlp_load-cov" -instr-profile="$out/both.profdata" src/nn/io.c \
    --show-functions | awk -v re="$parser" -v min="$min" \
    '$0 ~ re { L += $5; M += $6; print } END { p = 100 * (L - M) / L;
      printf "parser line coverage, both harnesses: %d of %d lines, %.1f%% (minimum %s%%)\n", L - M, L, p, min;
      exit p < min }'
