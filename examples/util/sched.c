/* sched.c — see sched.h. */
#include "sched.h"

#include <stdio.h>
#include <string.h>

int ex_sched_make(const char *name, double lr, double lr_min, long step_size, double gamma,
                  long iters, node_sched *out, char *why, size_t why_size)
{
    node_sched s = node_sched_constant(lr);
    if (!name || (strcmp(name, "constant") && strcmp(name, "cosine") && strcmp(name, "step"))) {
        snprintf(why, why_size, "unknown --sched '%s' (constant, cosine, step)",
                 name ? name : "(null)");
        return -1;
    }
    if (!(lr_min >= 0) || lr_min > lr || !(gamma >= 0) || step_size < 0) {
        snprintf(why, why_size, "--lr-min must be in [0, %g] (the learning rate), --gamma "
                 ">= 0, --step-size >= 0", lr);
        return -1;
    }
    if (!strcmp(name, "cosine")) {
        s.kind = NODE_SCHED_COSINE;
        s.T = iters > 0 ? iters : 1;
        s.lr_min = lr_min;
    } else if (!strcmp(name, "step")) {
        s.kind = NODE_SCHED_STEP;
        s.step_size = step_size > 0 ? step_size : (iters >= 3 ? iters / 3 : 1);
        s.gamma = gamma;
    }
    *out = s;
    return 0;
}
