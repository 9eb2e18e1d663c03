/* consumer.c — a program built against the INSTALLED libnode (CMake package and
 * pkg-config), as a user's would be.  Solves y' = -y and checks y(1) = e^-1. */
#include <libnode.h>

#include <math.h>
#include <stdio.h>

static int decay(void *ctx, double t, const double *y, double *dydt)
{
    (void)ctx;
    (void)t;
    dydt[0] = -y[0];
    return 0;
}

int main(void)
{
    node_system sys = { .dim = 1, .f = decay };
    const double y0 = 1.0, ts[2] = { 0.0, 1.0 };
    double ys[2];
    node_status st = node_odeint(&sys, &y0, ts, 2, ys, NULL, NULL);
    if (st != NODE_OK) {
        fprintf(stderr, "consumer: node_odeint: %s\n", node_strerror(st));
        return 1;
    }
    double err = fabs(ys[1] - exp(-1.0));
    printf("consumer: libnode %s, y(1) = %.12f, error %.2e\n", node_version(), ys[1], err);
    return err < 1e-6 ? 0 : 1;
}
