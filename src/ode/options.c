/* options.c — solver options: defaults, method names, validation (node__options_resolve)
 * and the check of the output times (node__check_ts).
 */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* Default max_steps per call when options.max_steps is 0. */
#define NODE__DEFAULT_MAX_STEPS 1000000L

node_options node_options_default(void)
{
    node_options o;
    memset(&o, 0, sizeof o);
    o.method = NODE_DOPRI5;
    o.rtol = 1e-7;
    o.atol = 1e-9;
    return o;
}

const char *node_method_name(node_method m)
{
    const node__tableau *tab = node__tableau_get(m);
    return tab ? tab->name : NULL;
}

node_status node_method_parse(const char *name, node_method *out)
{
    if (!name || !out)
        return NODE_EINVAL;
    for (size_t i = 0; i < node__tableau_count(); i++) {
        const node__tableau *tab = node__tableau_at(i);
        bool match = strcmp(name, tab->name) == 0;
        for (int a = 0; !match && a < NODE__MAXALIASES && tab->aliases[a]; a++)
            match = strcmp(name, tab->aliases[a]) == 0;
        if (match) {
            *out = tab->method;
            return NODE_OK;
        }
    }
    return NODE_EINVAL;
}

static bool positive(double x) { return x > 0 && isfinite(x); }

node_status node__options_resolve(const node_options *opt, node_options *out, char *msg)
{
    node_options o = opt ? *opt : node_options_default();
    const node__tableau *tab = node__tableau_get(o.method);
    if (!tab)
        return node__msg(msg, NODE_EINVAL, "opt->method = %d is not a method of libnode %s",
                         (int)o.method, node_version());
    if (o.reserved0_ || o.reserved1_ || o.reserved2_ ||
        !node__zero_words(o.reserved_, sizeof o.reserved_ / sizeof o.reserved_[0]))
        return node__msg(msg, NODE_EINVAL,
                         "opt has non-zero reserved fields: the program was built against a "
                         "newer libnode header than libnode %s, or did not start from "
                         "node_options_default()", node_version());
    if (!positive(o.rtol))
        return node__msg(msg, NODE_EINVAL, "opt->rtol = %g: tolerances must be positive and finite",
                         o.rtol);
    if (!positive(o.atol))
        return node__msg(msg, NODE_EINVAL, "opt->atol = %g: tolerances must be positive and finite",
                         o.atol);
    /* step: finite and >= 0; max_step: >= 0 (+Inf = no limit); NaN fails both. */
    if (!(o.step >= 0) || !isfinite(o.step))
        return node__msg(msg, NODE_EINVAL, "opt->step = %g: must be finite and >= 0", o.step);
    if (!(o.max_step >= 0))
        return node__msg(msg, NODE_EINVAL, "opt->max_step = %g: must be >= 0 (0 = no limit)",
                         o.max_step);
    if (o.max_steps < 0)
        return node__msg(msg, NODE_EINVAL, "opt->max_steps = %lld: must be >= 0 (0 = default)",
                         (long long)o.max_steps);
    if (o.checkpoints < 0)
        return node__msg(msg, NODE_EINVAL,
                         "opt->checkpoints = %lld: must be >= 0 (0 = record every step)",
                         (long long)o.checkpoints);
    if (o.record != 0 && o.record != 1)
        return node__msg(msg, NODE_EINVAL,
                         "opt->record = %d: must be 0 (no recording) or 1 (node_solver_odeint "
                         "records its solve for node_solver_backprop)", (int)o.record);
    if (tab->err_order == 0 && !(o.step > 0))
        return node__msg(msg, NODE_EINVAL,
                         "opt->step = 0: the fixed-step method %s needs a step > 0", tab->name);
    if (o.adjoint_rtol == 0)
        o.adjoint_rtol = o.rtol;
    if (o.adjoint_atol == 0)
        o.adjoint_atol = o.atol;
    if (!positive(o.adjoint_rtol))
        return node__msg(msg, NODE_EINVAL,
                         "opt->adjoint_rtol = %g: must be positive and finite (0 = rtol)",
                         o.adjoint_rtol);
    if (!positive(o.adjoint_atol))
        return node__msg(msg, NODE_EINVAL,
                         "opt->adjoint_atol = %g: must be positive and finite (0 = atol)",
                         o.adjoint_atol);
    if (o.max_step == INFINITY)
        o.max_step = 0;
    if (o.max_steps == 0)
        o.max_steps = NODE__DEFAULT_MAX_STEPS;
    *out = o;
    return NODE_OK;
}

node_status node__check_ts(const double *ts, size_t nt, char *msg)
{
    if (!ts)
        return node__msg(msg, NODE_EINVAL, "ts is NULL");
    if (nt == 0)
        return node__msg(msg, NODE_EINVAL, "nt = 0: at least one output time (ts[0]) is needed");
    for (size_t i = 0; i < nt; i++)
        if (!isfinite(ts[i]))
            return node__msg(msg, NODE_EINVAL, "ts[%zu] = %g: output times must be finite", i,
                             ts[i]);
    if (nt == 1)
        return NODE_OK;
    bool up = ts[1] > ts[0];
    for (size_t i = 1; i < nt; i++)
        if (ts[i] == ts[i - 1])
            return node__msg(msg, NODE_EINVAL,
                             "ts[%zu] = ts[%zu] = %.17g: ts must be strictly increasing or "
                             "strictly decreasing", i, i - 1, ts[i]);
        else if (up ? !(ts[i] > ts[i - 1]) : !(ts[i] < ts[i - 1]))
            return node__msg(msg, NODE_EINVAL,
                             "ts[%zu] = %.17g is not %s ts[%zu] = %.17g: ts must be strictly "
                             "increasing or strictly decreasing", i, ts[i],
                             up ? "after" : "before", i - 1, ts[i - 1]);
    return NODE_OK;
}
