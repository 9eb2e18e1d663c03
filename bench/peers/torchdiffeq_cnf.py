#!/usr/bin/env python3
"""torchdiffeq_cnf.py — the peer side of examples/cnf.c: time per training iteration of
torchdiffeq's examples/cnf.py model at the same sizes, written out here (cnf.py itself
runs on the GPU when it can, draws pictures and has no timer).

The model and step are cnf.py's (PR #110): a planar CNF of `width` units whose
parameters come from a hypernetwork of t, Linear(1, hidden) → tanh → Linear(hidden,
hidden) → tanh → Linear(hidden, 3·width·2 + width), split into W (width, 2, 1),
U (width, 1, 2), G (width, 1, 2), B (width, 1, 1), U ← U·sigmoid(G);
f(t, z) = mean_m tanh(z W_m + B_m) U_m; d logp/dt = −tr(∂f/∂z) by one autograd pass per
dimension (create_graph=True).  One iteration: 512 fresh points of
make_circles(noise=0.06, factor=0.5); (x, 0) solved from t1 = 10 down to t0 = 0 by
dopri5 at rtol = atol = 1e-5; log p(x) = log N(z(t0); 0, 0.1 I) − Δlogp(t0);
loss = −mean; backward (odeint_adjoint by default as libnode's default; --backprop for
cnf.py's default, odeint); Adam lr 1e-3.  CPU, one thread, float64 like libnode.
NFE counts calls of the dynamics (in the adjoint's backward pass: one per VJP).
Only the step is timed (not the sampling of the batch).

    PYTHONPATH=/work/peers /usr/bin/python3 bench/peers/torchdiffeq_cnf.py --iters 5
Getting torchdiffeq: see README.md in this folder.
"""
import argparse
import time

import numpy as np
import torch
import torch.nn as nn
from sklearn.datasets import make_circles

from torchdiffeq import odeint, odeint_adjoint


class HyperNetwork(nn.Module):          # torchdiffeq examples/cnf.py
    def __init__(self, in_out_dim, hidden_dim, width):
        super().__init__()
        self.blocksize = width * in_out_dim
        self.fc1 = nn.Linear(1, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.fc3 = nn.Linear(hidden_dim, 3 * self.blocksize + width)
        self.in_out_dim, self.hidden_dim, self.width = in_out_dim, hidden_dim, width

    def forward(self, t):
        params = t.reshape(1, 1)
        params = torch.tanh(self.fc1(params))
        params = torch.tanh(self.fc2(params))
        params = self.fc3(params).reshape(-1)
        W = params[:self.blocksize].reshape(self.width, self.in_out_dim, 1)
        U = params[self.blocksize:2 * self.blocksize].reshape(self.width, 1, self.in_out_dim)
        G = params[2 * self.blocksize:3 * self.blocksize].reshape(self.width, 1, self.in_out_dim)
        U = U * torch.sigmoid(G)
        B = params[3 * self.blocksize:].reshape(self.width, 1, 1)
        return [W, B, U]


def trace_df_dz(f, z):                  # cnf.py: one autograd pass per dimension
    sum_diag = 0.
    for i in range(z.shape[1]):
        sum_diag += torch.autograd.grad(f[:, i].sum(), z, create_graph=True)[0].contiguous()[:, i].contiguous()
    return sum_diag.contiguous()


class CNF(nn.Module):
    def __init__(self, in_out_dim, hidden_dim, width):
        super().__init__()
        self.width = width
        self.hyper_net = HyperNetwork(in_out_dim, hidden_dim, width)
        self.nfe = 0

    def forward(self, t, states):
        self.nfe += 1
        z = states[0]
        batchsize = z.shape[0]
        with torch.set_grad_enabled(True):
            z.requires_grad_(True)
            W, B, U = self.hyper_net(t)
            Z = torch.unsqueeze(z, 0).repeat(self.width, 1, 1)
            h = torch.tanh(torch.matmul(Z, W) + B)
            dz_dt = torch.matmul(h, U).mean(0)
            dlogp_z_dt = -trace_df_dz(dz_dt, z).view(batchsize, 1)
        return (dz_dt, dlogp_z_dt)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--iters", type=int, default=5, help="measured iterations")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=32)
    ap.add_argument("--t1", type=float, default=10.0)
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-5)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--backprop", action="store_true", help="odeint instead of odeint_adjoint")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(args.seed)
    rng = np.random.RandomState(args.seed)

    func = CNF(2, args.hidden, args.width)
    opt = torch.optim.Adam(func.parameters(), lr=args.lr)
    p_z0 = torch.distributions.MultivariateNormal(loc=torch.zeros(2),
                                                  covariance_matrix=0.1 * torch.eye(2))
    solve = odeint if args.backprop else odeint_adjoint
    ts = torch.tensor([args.t1, 0.0])
    tot = nfe_f = nfe_b = 0.0
    n = 0
    for it in range(args.warmup + args.iters):
        x = torch.tensor(make_circles(n_samples=args.batch, noise=0.06, factor=0.5,
                                      random_state=rng)[0])
        logp0 = torch.zeros(args.batch, 1)
        t_start = time.perf_counter()
        opt.zero_grad()
        func.nfe = 0
        z_t, logp_diff_t = solve(func, (x, logp0), ts, atol=args.atol, rtol=args.rtol,
                                 method="dopri5")
        f = func.nfe
        logp_x = p_z0.log_prob(z_t[-1]) - logp_diff_t[-1].view(-1)
        loss = -logp_x.mean(0)
        loss.backward()
        opt.step()
        dt = time.perf_counter() - t_start
        if it >= args.warmup:
            tot += dt
            nfe_f += f
            nfe_b += func.nfe - f
            n += 1
    print(f"torchdiffeq {getattr(__import__('torchdiffeq'), '__version__', '?')}, torch "
          f"{torch.__version__}, one thread, float64; planar CNF width {args.width}, "
          f"hypernet hidden {args.hidden}, batch {args.batch}, t in [0, {args.t1:g}], dopri5 "
          f"rtol {args.rtol:g} atol {args.atol:g}, {'backprop' if args.backprop else 'adjoint'}")
    print(f"ms/iter {1e3 * tot / n:.2f}  NFE fwd {nfe_f / n:.1f}  NFE bwd {nfe_b / n:.1f}  "
          f"loss {loss.item():.4f}")


if __name__ == "__main__":
    main()
