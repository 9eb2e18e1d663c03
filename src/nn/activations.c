/* activations.c — the activation registry as data (the list itself is
 * NODE__ACTIVATIONS in nn_internal.h; the kernels are act.c) and the lookups by
 * value and by name.  Nothing here depends on the enum's order.
 */
#include "nn/nn_internal.h"

#include <string.h>

#define NODE__ACT_INFO(value, name, kernel, vec, unit) { value, name, vec, unit },
const node__act_info node__act_registry[NODE__NACT] = { NODE__ACTIVATIONS(NODE__ACT_INFO) };

size_t node__act_index(int64_t value)
{
    for (size_t i = 0; i < NODE__NACT; i++)
        if ((int64_t)node__act_registry[i].value == value)
            return i;
    return NODE__NACT;
}

const char *node_activation_name(node_activation a)
{
    size_t i = node__act_index((int64_t)a);
    return i < NODE__NACT ? node__act_registry[i].name : NULL;
}

node_status node_activation_parse(const char *name, node_activation *out)
{
    if (!name || !out)
        return NODE_EINVAL;
    for (size_t i = 0; i < NODE__NACT; i++)
        if (strcmp(name, node__act_registry[i].name) == 0) {
            *out = node__act_registry[i].value;
            return NODE_OK;
        }
    return NODE_EINVAL;
}
