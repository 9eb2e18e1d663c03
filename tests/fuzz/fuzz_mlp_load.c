/* fuzz_mlp_load.c — libFuzzer harness for the model-file parser: every input must
 * load or be rejected with NODE_EFORMAT, without a crash, a leak or an out-of-bounds
 * access (built with -fsanitize=fuzzer,address,undefined).  A model that loads is
 * saved to memory again and must reproduce the input byte for byte.
 * Build: cmake -S . -B build-fuzz -DLIBNODE_FUZZ=ON -DCMAKE_C_COMPILER=clang
 * Run:   ./build-fuzz/fuzz_mlp_load -runs=0 tests/fuzz/corpus        (replay the seeds)
 *        mkdir -p fuzz-out && ./build-fuzz/fuzz_mlp_load -max_total_time=30 fuzz-out \
 *            tests/fuzz/corpus      (libFuzzer writes new inputs to the FIRST folder)
 */
#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    node_mlp *m = NULL;
    node_status st = node__mlp_load_mem(data, size, &m);
    if (st == NODE_OK) {
        unsigned char *buf;
        size_t len;
        if (node__mlp_save_mem(m, &buf, &len) == NODE_OK) {
            if (len != size || memcmp(buf, data, size) != 0)
                abort();   /* a loaded model must save back to the same bytes */
            node__free(buf);
        }
        node_mlp_free(m);
    } else if (st != NODE_EFORMAT && st != NODE_ENOMEM) {
        abort();
    }
    return 0;
}
