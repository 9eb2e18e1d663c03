#!/usr/bin/env python3
"""spiral.py — examples/spiral.c through the Python binding: learn dy/dt = MLP(y^3)
from a 2-D spiral with the adjoint method (torchdiffeq's examples/ode_demo.py).

Run: python3 examples/python/spiral.py [--iters N] [--backprop] [--out DIR]  (--help)
The model's cube runs in numpy inside Python callbacks (ctypes), the MLP and the
solver in C.  --model mlp learns dy/dt = MLP(y) instead, whose callbacks never leave C.
Writes DIR/spiral.svg, DIR/spiral.csv, DIR/spiral.model; a live progress line on
stderr; the last line of standard output is one JSON object with the results.
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                "bindings", "python"))
import libnode  # noqa: E402  (the source tree's package unless one is installed first)

A_TRUE = np.array([[-0.1, 2.0], [-2.0, -0.1]])


class CubicModel:
    """dy/dt = MLP(y^3) over a batch of rows: func and vjp for libnode's callbacks,
    with buffers allocated once per batch shape."""

    def __init__(self, mlp):
        self.mlp = mlp
        self.buf = {}

    def _bufs(self, shape):
        b = self.buf.get(shape)
        if b is None:
            b = self.buf[shape] = (np.empty(shape), np.empty(shape), np.empty(shape),
                                   np.empty(self.mlp.nparams))
        return b

    def f(self, t, y):
        u, out, _, _ = self._bufs(y.shape)
        np.multiply(y, y, out=u)
        u *= y
        return self.mlp.forward(u, t, out=out)

    def vjp(self, t, y, a):
        u, gu, y2, gp = self._bufs(y.shape)
        np.multiply(y, y, out=y2)
        np.multiply(y2, y, out=u)
        self.mlp.vjp(u, a, t, vjp_x=gu, vjp_p=gp)
        y2 *= 3.0
        y2 *= gu     # vjp_y = (a^T dMLP/du) * 3 y^2
        return y2, gp


def svg(path, t, ytrue, ypred, it):
    def poly(xs, ys, x0, x1, y0, y1, ox, color, dash=""):
        px = ox + 40 + (xs - x0) / (x1 - x0) * 360
        py = 400 - (ys - y0) / (y1 - y0) * 360
        pts = " ".join("%.1f,%.1f" % p for p in zip(px, py))
        d = ' stroke-dasharray="6 4"' if dash else ""
        return '<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>' % (color, d, pts)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="860" height="440">',
             '<rect width="860" height="440" fill="white"/>',
             '<text x="220" y="25" text-anchor="middle">Trajectories (x, y vs t)</text>',
             '<text x="640" y="25" text-anchor="middle">Phase portrait</text>']
    for k, c in ((0, "#2e9c48"), (1, "#7fc28f")):
        parts.append(poly(t, ytrue[:, k], t[0], t[-1], -2, 2, 0, c))
    for k, c in ((0, "#1f5fbf"), (1, "#e07b1a")):
        parts.append(poly(t, ypred[:, k], t[0], t[-1], -2, 2, 0, c, "d"))
    parts.append(poly(ytrue[:, 0], ytrue[:, 1], -2, 2, -2, 2, 420, "#2e9c48"))
    parts.append(poly(ypred[:, 0], ypred[:, 1], -2, 2, -2, 2, 420, "#1f5fbf", "d"))
    parts.append('<text x="850" y="432" font-size="10" text-anchor="end" fill="#888">'
                 'libnode spiral example (Python), iteration %d; solid true, dashed learned'
                 '</text></svg>' % it)
    with open(path, "w") as f:
        f.write("\n".join(parts) + "\n")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Learn dy/dt = MLP(y^3) from a spiral "
                                 "trajectory (torchdiffeq's ode_demo) through libnode's "
                                 "Python binding.")
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=1, help="seed of the weights and batches")
    ap.add_argument("--method", default="dopri5")
    ap.add_argument("--rtol", type=float, default=1e-7)
    ap.add_argument("--atol", type=float, default=1e-9)
    ap.add_argument("--opt", default="rmsprop", choices=["sgd", "rmsprop", "adam", "adamw"])
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch-size", type=int, default=20)
    ap.add_argument("--batch-time", type=int, default=10)
    ap.add_argument("--data-size", type=int, default=1000)
    ap.add_argument("--test-freq", type=int, default=20)
    ap.add_argument("--backprop", action="store_true",
                    help="exact backprop through the solver instead of the adjoint")
    ap.add_argument("--model", default="cubic", choices=["cubic", "mlp"],
                    help="cubic: MLP(y^3) as the C example (the cube in Python); "
                    "mlp: MLP(y), callbacks in C")
    ap.add_argument("--out", default="spiral_py_out")
    ap.add_argument("--load", help="start from this model file (an MLP 2 -> ... -> 2), e.g. "
                    "one the C example wrote: both then start from the same weights")
    a = ap.parse_args(argv)
    if a.iters < 0 or a.test_freq < 1 or a.data_size < 3 or not 2 <= a.batch_time < a.data_size \
            or not 1 <= a.batch_size <= a.data_size - a.batch_time or not a.rtol > 0 \
            or not a.atol > 0 or not a.lr >= 0:
        ap.error("need --iters >= 0, --test-freq >= 1, 2 <= --batch-time < --data-size, "
                 "1 <= --batch-size <= data-size - batch-time, --rtol/--atol > 0, --lr >= 0")

    N, B, T = a.data_size, a.batch_size, a.batch_time
    t = np.linspace(0.0, 25.0, N)
    ytrue = libnode.odeint(lambda t_, y: (y ** 3) @ A_TRUE, np.array([2.0, 0.0]), t,
                           rtol=1e-12, atol=1e-12, method="dop853")
    rng = np.random.default_rng(a.seed)
    if a.load:
        try:
            mlp = libnode.MLP.load(a.load)
        except libnode.NodeError as e:
            ap.error("--load: %s" % e)    # exit status 2, the file and the reason named
        if mlp.sizes[0] != 2 or mlp.sizes[-1] != 2 or mlp.time_input:
            ap.error("--load: %s is not an MLP 2 -> ... -> 2 without time input" % a.load)
    else:
        mlp = libnode.MLP([2, 50, 2], ["tanh", "identity"], seed=None)
        k = 0
        for fan_in, fan_out in ((2, 50), (50, 2)):   # W ~ N(0, 0.1^2), b = 0 (the demo's)
            mlp.params[k:k + fan_in * fan_out] = rng.normal(0.0, 0.1, fan_in * fan_out)
            k += fan_in * fan_out
            mlp.params[k:k + fan_out] = 0.0
            k += fan_out
    if a.model == "cubic":
        model = CubicModel(mlp)
        func, kw = model.f, dict(vjp=model.vjp, params=mlp.params)
    else:
        func, kw = mlp, {}
    opt = {"sgd": libnode.SGD, "rmsprop": libnode.RMSprop, "adam": libnode.Adam,
           "adamw": libnode.AdamW}[a.opt](mlp.params, lr=a.lr)
    grad_fn = libnode.odeint_backprop if a.backprop else libnode.odeint_adjoint
    opts = dict(rtol=a.rtol, atol=a.atol, method=a.method)
    bt = t[:T] - t[0]
    os.makedirs(a.out, exist_ok=True)
    print("spiral.py: MLP %s on %s (%d parameters), %s rtol %g atol %g, %s gradients, "
          "%s lr %g, batch %d x %d points, %d iterations (libnode %s, kernels %s, %s)"
          % ("-".join(map(str, mlp.sizes)), "y^3" if a.model == "cubic" else "y", mlp.nparams, a.method, a.rtol, a.atol,
             "backprop" if a.backprop else "adjoint", a.opt, a.lr, B, T, a.iters,
             libnode.library_version, libnode.isa(), libnode.library_path), flush=True)

    # warm-up (as the C example: the solver's workspaces are paid for before timing)
    y0w = np.repeat(ytrue[:1], B, axis=0)
    ysw = libnode.odeint(func, y0w, bt, **opts)
    grad_fn(func, y0w, bt, np.zeros_like(ysw), ys=ysw, **kw, **opts)

    t_train, traj_loss, loss, late, nfe_f, nfe_b = 0.0, float("nan"), float("nan"), [], 0, 0
    ypred = None
    tty = sys.stderr.isatty()
    for it in range(a.iters + 1):
        if it > 0:
            t0 = time.perf_counter()
            pick = rng.choice(N - T, B, replace=False)
            by = ytrue[pick[None, :] + np.arange(T)[:, None]]      # T x B x 2
            pred, fs = libnode.odeint(func, by[0], bt, **opts, return_stats=True)
            loss, dl = libnode.mae_loss(pred, by)
            g, bs = grad_fn(func, by[0], bt, dl, ys=pred, **kw, **opts, return_stats=True)
            opt.step(g.params)
            t_train += time.perf_counter() - t0
            nfe_f, nfe_b = fs.nfe, bs.nfe
        if it % a.test_freq == 0 or it == a.iters:
            ypred = libnode.odeint(func, ytrue[:1], t, **opts)[:, 0]
            traj_loss, _ = libnode.mae_loss(ypred, ytrue)
            if it > 0 and 4 * it > 3 * a.iters:
                late.append(traj_loss)
        if it > 0 and (tty or it % a.test_freq == 0 or it == a.iters):
            sys.stderr.write("\riter %d/%d | batch loss %.5f | traj loss %.5f | NFE fwd %d bwd "
                             "%d | %.2f ms/it" % (it, a.iters, loss, traj_loss, nfe_f, nfe_b,
                                                  1e3 * t_train / it) + ("" if tty else "\n"))
    if tty:
        sys.stderr.write("\n")
    ms = 1e3 * t_train / a.iters if a.iters else 0.0
    paths = {k: os.path.join(a.out, "spiral." + k) for k in ("svg", "csv", "model")}
    svg(paths["svg"], t, ytrue, ypred, a.iters)
    np.savetxt(paths["csv"], np.column_stack([t, ytrue, ypred]), delimiter=",",
               header="t,x_true,y_true,x_pred,y_pred", comments="", fmt="%.17g")
    mlp.save(paths["model"])
    print("done: %d iterations, %.3f ms per training iteration; full-trajectory MAE %.6f"
          % (a.iters, ms, traj_loss))
    print("wrote %s, %s, %s" % (paths["svg"], paths["csv"], paths["model"]))
    print(json.dumps({"example": "spiral.py", "iterations": a.iters, "dynamics": a.model,
                      "method": a.method, "gradient": "backprop" if a.backprop else "adjoint",
                      "ms_per_iteration": ms, "trajectory_mae": traj_loss,
                      "late_mean_mae": float(np.mean(late)) if late else traj_loss,
                      "nfe_forward": nfe_f, "nfe_backward": nfe_b, "kernels": libnode.isa(),
                      "svg": paths["svg"], "csv": paths["csv"], "model": paths["model"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
