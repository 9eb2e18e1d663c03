/* isa.c — which compiled copy of the kernels this CPU runs: cpuid through the
 * compiler's __builtin_cpu_supports (which also checks that the OS saves the wide
 * registers), capped by the environment variable LIBNODE_ISA.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static const char *const isa_names[NODE__NISA] = { "generic", "avx2", "avx512" };

const char *node__isa_name(node__isa isa)
{
    return (unsigned)isa < NODE__NISA ? isa_names[isa] : NULL;
}

bool node__isa_usable(node__isa isa)
{
    switch (isa) {
    case NODE__ISA_GENERIC:
        return true;
    case NODE__ISA_AVX2:
#if NODE__HAVE_AVX2 && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
        return false;
#endif
    case NODE__ISA_AVX512:
#if NODE__HAVE_AVX512 && (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512cd");
#else
        return false;
#endif
    case NODE__NISA:
        break;
    }
    return false;
}

node__isa node__isa_select(void)
{
    node__isa cap = NODE__ISA_AVX512;
    const char *env = getenv("LIBNODE_ISA");
    if (env && *env)
        for (int i = 0; i < NODE__NISA; i++)
            if (strcmp(env, isa_names[i]) == 0)
                cap = (node__isa)i;
    for (int i = cap; i > NODE__ISA_GENERIC; i--)
        if (node__isa_usable((node__isa)i))
            return (node__isa)i;
    return NODE__ISA_GENERIC;
}

const char *node_isa_name(void)
{
    return isa_names[node__isa_select()];
}
