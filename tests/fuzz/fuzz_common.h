/* fuzz_common.h — the check both model-file harnesses run on one input: it must
 * load, or be refused with NODE_EFORMAT (NODE_ENOMEM for a model too large for
 * this machine) and a message; a model that loads must save back to the same bytes.
 * A crash, a leak or an out-of-bounds access is caught by the sanitizers
 * (-fsanitize=fuzzer,address,undefined).
 */
#ifndef LIBNODE_FUZZ_COMMON_H
#define LIBNODE_FUZZ_COMMON_H

#include "nn/nn_internal.h"

#include <stdlib.h>
#include <string.h>

static void fuzz_check(const unsigned char *data, size_t size)
{
    node_mlp *m = NULL;
    char msg[NODE_MESSAGE_SIZE];
    msg[0] = '\0';
    node_status st = node__mlp_load_mem(data, size, &m, msg);
    if (st == NODE_OK) {
        unsigned char *buf;
        size_t len;
        if (node__mlp_save_mem(m, &buf, &len) == NODE_OK) {
            if (len != size || memcmp(buf, data, size) != 0)
                abort();   /* a loaded model must save back to the same bytes */
            node__free(buf);
        }
        node_mlp_free(m);
    } else if ((st != NODE_EFORMAT && st != NODE_ENOMEM) || msg[0] == '\0' || m) {
        abort();
    }
}

#endif /* LIBNODE_FUZZ_COMMON_H */
