#!/usr/bin/env python3
"""torchdiffeq_bench.py — the peer side of libnode's bench/bench_train.c: time per
training iteration (dopri5 forward at rtol 1e-7 / atol 1e-9 over 10 outputs + MSE +
backward + Adam step) of dy/dt = MLP(y^3) on the spiral of torchdiffeq's ode_demo,
with the same protocol: MLP 2-50-2 at batch 20 ("demo") and MLP 2-256-2 at batch 256
("wide"); W ~ N(0, 0.1), b = 0; warm-up iterations, then the mean over the measured
ones; gradients by odeint_adjoint (default norm, then seminorm) and by backprop
through odeint.  CPU, one thread (torch.set_num_threads(1)), float64 like libnode.
NFE counts calls of the dynamics' forward (in the backward pass: the adjoint's
vector-Jacobian products, one forward each).

Getting the peer: torchdiffeq is pure Python on top of PyTorch.  Fetch
https://github.com/rtqichen/torchdiffeq, then
    git archive HEAD torchdiffeq | tar -x -C /work/peers
and put /work/peers on PYTHONPATH (Debian's python3-torch provides torch):
    PYTHONPATH=/work/peers /usr/bin/python3 bench/peers/torchdiffeq_bench.py [--quick]
"""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn

from torchdiffeq import odeint, odeint_adjoint

DATA, BT = 1000, 10


class Lambda(nn.Module):
    def __init__(self):
        super().__init__()
        self.A = torch.tensor([[-0.1, 2.0], [-2.0, -0.1]])

    def forward(self, t, y):
        return torch.mm(y ** 3, self.A)


class ODEFunc(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, width), nn.Tanh(), nn.Linear(width, 2))
        for m in self.net.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0, std=0.1)
                nn.init.constant_(m.bias, val=0)
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return self.net(y ** 3)


def run_case(true_y, t, width, batch, mode, warmup, iters):
    torch.manual_seed(1)
    rng = np.random.default_rng(1)
    func = ODEFunc(width)
    opt = torch.optim.Adam(func.parameters())   # lr 1e-3, PyTorch's defaults
    batch_t = t[:BT]
    kw = dict(rtol=1e-7, atol=1e-9, method="dopri5")
    if mode == "adjoint+seminorm":
        kw["adjoint_options"] = dict(norm="seminorm")
    fwd = bwd = step = nfe_f = nfe_b = 0.0
    for it in range(warmup + iters):
        s = torch.from_numpy(rng.choice(DATA - BT, batch, replace=False))
        batch_y0 = true_y[s]
        batch_y = torch.stack([true_y[s + i] for i in range(BT)], dim=0)
        opt.zero_grad()
        func.nfe = 0
        t0 = time.perf_counter()
        if mode == "backprop":
            pred = odeint(func, batch_y0, batch_t, **kw)
        else:
            pred = odeint_adjoint(func, batch_y0, batch_t, **kw)
        loss = torch.mean((pred - batch_y) ** 2)
        t1 = time.perf_counter()
        n_f = func.nfe
        loss.backward()
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if it >= warmup:
            fwd += t1 - t0
            bwd += t2 - t1
            step += t3 - t2
            nfe_f += n_f
            nfe_b += func.nfe - n_f
    n = float(iters)
    return dict(ms=1e3 * (fwd + bwd + step) / n, fwd=1e3 * fwd / n, bwd=1e3 * bwd / n,
                step=1e6 * step / n, nfe_f=nfe_f / n, nfe_b=nfe_b / n)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--iters", type=int, default=0)
    ap.add_argument("--case", choices=["demo", "wide"], default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)

    t = torch.linspace(0.0, 25.0, DATA)
    with torch.no_grad():   # libnode's reference: DOP853 (= torchdiffeq's dopri8) at 1e-12
        true_y = odeint(Lambda(), torch.tensor([[2.0, 0.0]]), t, method="dopri8",
                        rtol=1e-12, atol=1e-12)[:, 0, :]

    cases = [("demo: MLP 2-50-2, batch 20", 50, 20, 10, 100),
             ("wide: MLP 2-256-2, batch 256", 256, 256, 2, 10)]
    print(f"torchdiffeq {getattr(__import__('torchdiffeq'), '__version__', '?')}, torch {torch.__version__}, "
          f"one thread, float64{' (--quick)' if args.quick else ''}\n")
    print("| setting | gradient | ms / iter | forward ms | backward ms | Adam µs | NFE fwd | NFE bwd |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name, width, batch, warm, iters in cases:
        if args.case and not name.startswith(args.case):
            continue
        if args.iters:
            iters = args.iters
        elif args.quick:
            iters, warm = max(1, iters // 10), 1
        for mode in ("adjoint", "adjoint+seminorm", "backprop"):
            r = run_case(true_y, t, width, batch, mode, warm, iters)
            print(f"| {name} | {mode} | {r['ms']:.2f} | {r['fwd']:.2f} | {r['bwd']:.2f} | "
                  f"{r['step']:.0f} | {r['nfe_f']:.1f} | {r['nfe_b']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
