/* fuzz_net_load.c — libFuzzer harness for the network-file parser (src/net/io.c):
 * every input loads, or is refused with NODE_EFORMAT (NODE_ENOMEM for networks too
 * large for this machine) and a message; what loads saves back to the same bytes.
 * Each input is tried as it comes and with its last 4 bytes replaced by the CRC-32
 * of the rest, so that mutations get past the checksum to the success path.
 * Seeds: tests/fuzz/corpus (net_valid_* / net_invalid_*: tests/fuzz/make_net_corpus.py;
 * the MLP's files there are refused by their magic).
 * Build and run as fuzz_mlp_load.c:
 *   ./build-fuzz/fuzz_net_load -runs=0 tests/fuzz/corpus
 */
#include "net/net_internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CAP 4

static void check(const unsigned char *data, size_t size)
{
    node_net *nets[CAP] = { NULL };
    size_t k = 0;
    char msg[NODE_MESSAGE_SIZE];
    msg[0] = '\0';
    node_status st = node__net_load_mem(data, size, nets, CAP, &k, msg);
    if (st == NODE_OK) {
        unsigned char *buf;
        size_t len;
        if (k == 0 || k > CAP)
            abort();
        if (node__net_save_mem((const node_net *const *)nets, k, &buf, &len) == NODE_OK) {
            if (len != size || memcmp(buf, data, size) != 0)
                abort();   /* what loads must save back to the same bytes */
            node__free(buf);
        }
        for (size_t i = 0; i < k; i++)
            node_net_free(nets[i]);
    } else {
        for (size_t i = 0; i < CAP; i++)
            if (nets[i])
                abort();   /* out is written only on success */
        if ((st != NODE_EFORMAT && st != NODE_ENOMEM) || msg[0] == '\0')
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check(data, size);
    if (size >= 4) {
        unsigned char *buf = malloc(size);
        if (!buf)
            return 0;
        memcpy(buf, data, size);
        uint32_t crc = node__crc32(0, buf, size - 4);
        for (int i = 0; i < 4; i++)
            buf[size - 4 + i] = (unsigned char)(crc >> (8 * i));
        check(buf, size);
        free(buf);
    }
    return 0;
}
