/* fuzz_mlp_load.c — libFuzzer harness for the model-file parser (src/nn/io.c), the
 * bytes as they come: every input loads, or is refused with NODE_EFORMAT and a
 * message (fuzz_common.h).  fuzz_mlp_load_crc.c is its structure-aware twin.
 * Build: cmake -S . -B build-fuzz -DLIBNODE_FUZZ=ON -DCMAKE_C_COMPILER=clang
 * Run:   ./build-fuzz/fuzz_mlp_load -runs=0 tests/fuzz/corpus        (replay the seeds)
 *        mkdir -p fuzz-out && ./build-fuzz/fuzz_mlp_load -max_total_time=30 fuzz-out \
 *            tests/fuzz/corpus      (libFuzzer writes new inputs to the FIRST folder)
 */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_check(data, size);
    return 0;
}
