/* activations.c — the activations' names (the functions themselves are act.c). */
#include "nn/nn_internal.h"

#include <string.h>

/* ---- names ------------------------------------------------------------------ */

static const char *const act_names[] = {
    "identity", "tanh", "relu", "softplus", "sigmoid", "elu", "silu"
};
#define NACTS (sizeof act_names / sizeof act_names[0])

const char *node_activation_name(node_activation a)
{
    if ((unsigned)a >= NACTS)
        return NULL;
    return act_names[a];
}

node_status node_activation_parse(const char *name, node_activation *out)
{
    if (!name || !out)
        return NODE_EINVAL;
    for (size_t i = 0; i < NACTS; i++)
        if (strcmp(name, act_names[i]) == 0) {
            *out = (node_activation)i;
            return NODE_OK;
        }
    return NODE_EINVAL;
}
