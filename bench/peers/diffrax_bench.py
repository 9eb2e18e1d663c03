#!/usr/bin/env python3
"""diffrax_bench.py — the diffrax side of libnode's bench/bench_train.c: time per
training iteration (dopri5 forward at rtol 1e-7 / atol 1e-9 over 10 outputs + MSE +
backward + Adam step) of dy/dt = MLP(y^3) on the spiral of torchdiffeq's ode_demo,
with the protocol of torchdiffeq_bench.py: MLP 2-50-2 at batch 20 ("demo") and
MLP 2-256-2 at batch 256 ("wide"); W ~ N(0, 0.1), b = 0; float64; warm-up
iterations (which include JIT compilation), then the mean over the measured ones;
gradients by diffrax's BacksolveAdjoint (the continuous adjoint, like libnode's
node_solver_adjoint) and by RecursiveCheckpointAdjoint (discretise-then-optimise,
like node_solver_backprop).  One CPU thread.

Getting the peer: JAX, diffrax, equinox and optax are not Debian packages; this script
is meant for a machine that has them (the project's device machine does).  Run it as
    JAX_PLATFORMS=cpu XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
        taskset -c 2 python3 bench/peers/diffrax_bench.py [--quick]
(bench/peers/device_run.sh does this, next to bench_train and torchdiffeq_bench.py).
"""
import argparse
import os
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS",
                      "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # noqa: E402
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import diffrax  # noqa: E402
import equinox as eqx  # noqa: E402
import optax  # noqa: E402

DATA, BT = 1000, 10
A = jnp.array([[-0.1, 2.0], [-2.0, -0.1]])


class Func(eqx.Module):
    mlp: eqx.nn.MLP

    def __init__(self, width, key):
        k0, k1, k2 = jax.random.split(key, 3)
        mlp = eqx.nn.MLP(2, 2, width, 1, activation=jnp.tanh, key=k0)
        mlp = eqx.tree_at(lambda m: m.layers[0].weight, mlp,
                          0.1 * jax.random.normal(k1, (width, 2)))
        mlp = eqx.tree_at(lambda m: m.layers[0].bias, mlp, jnp.zeros(width))
        mlp = eqx.tree_at(lambda m: m.layers[1].weight, mlp,
                          0.1 * jax.random.normal(k2, (2, width)))
        mlp = eqx.tree_at(lambda m: m.layers[1].bias, mlp, jnp.zeros(2))
        self.mlp = mlp

    def __call__(self, t, y, args):
        return jax.vmap(self.mlp)(y ** 3)     # a batch of rows is one ODE


def make_step(adjoint, ts, optim):
    def loss_fn(func, y0, ys):
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(func), diffrax.Dopri5(), t0=ts[0], t1=ts[-1], dt0=None,
            y0=y0, saveat=diffrax.SaveAt(ts=ts),
            stepsize_controller=diffrax.PIDController(rtol=1e-7, atol=1e-9),
            adjoint=adjoint, max_steps=4096)
        return jnp.mean((sol.ys - ys) ** 2), sol.stats["num_steps"]

    @eqx.filter_jit
    def step(func, opt_state, y0, ys):
        (loss, nsteps), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(func, y0, ys)
        updates, opt_state = optim.update(grads, opt_state, eqx.filter(func, eqx.is_inexact_array))
        return eqx.apply_updates(func, updates), opt_state, loss, nsteps

    return step


def true_trajectory(t):
    term = diffrax.ODETerm(lambda t, y, args: (y ** 3) @ A)
    sol = diffrax.diffeqsolve(term, diffrax.Dopri8(), t0=t[0], t1=t[-1], dt0=None,
                              y0=jnp.array([2.0, 0.0]), saveat=diffrax.SaveAt(ts=t),
                              stepsize_controller=diffrax.PIDController(rtol=1e-12, atol=1e-12),
                              max_steps=1 << 20)
    return np.asarray(sol.ys)


def run_case(true_y, t, width, batch, adjoint, warmup, iters):
    rng = np.random.default_rng(1)
    func = Func(width, jax.random.PRNGKey(1))
    optim = optax.adam(1e-3)
    opt_state = optim.init(eqx.filter(func, eqx.is_inexact_array))
    step = make_step(adjoint, jnp.asarray(t[:BT]), optim)
    total = steps = 0.0
    for it in range(warmup + iters):
        s = rng.choice(DATA - BT, batch, replace=False)
        y0 = jnp.asarray(true_y[s])
        ys = jnp.asarray(np.stack([true_y[s + i] for i in range(BT)], axis=0))
        t0 = time.perf_counter()
        func, opt_state, loss, nsteps = step(func, opt_state, y0, ys)
        loss.block_until_ready()
        t1 = time.perf_counter()
        if it >= warmup:
            total += t1 - t0
            steps += int(nsteps)
    return 1e3 * total / iters, steps / iters


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--case", choices=["demo", "wide"], default=None)
    args = ap.parse_args()
    t = np.linspace(0.0, 25.0, DATA)
    true_y = true_trajectory(jnp.asarray(t))
    cases = [("demo: MLP 2-50-2, batch 20", 50, 20, 10, 100),
             ("wide: MLP 2-256-2, batch 256", 256, 256, 3, 10)]
    print(f"diffrax {diffrax.__version__}, jax {jax.__version__}, one CPU thread, float64"
          f"{' (--quick)' if args.quick else ''}\n")
    print("| setting | gradient | ms / iter | forward steps |")
    print("|---|---|---:|---:|")
    for name, width, batch, warm, iters in cases:
        if args.case and not name.startswith(args.case):
            continue
        if args.quick:
            iters = max(2, iters // 10)
        for label, adjoint in (("backsolve adjoint", diffrax.BacksolveAdjoint()),
                               ("checkpointed backprop", diffrax.RecursiveCheckpointAdjoint())):
            ms, nsteps = run_case(true_y, t, width, batch, adjoint, warm, iters)
            print(f"| {name} | {label} | {ms:.3f} | {nsteps:.1f} |", flush=True)


if __name__ == "__main__":
    main()
