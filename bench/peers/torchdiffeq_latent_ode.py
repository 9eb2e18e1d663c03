#!/usr/bin/env python3
"""torchdiffeq_latent_ode.py — the peer side of examples/latent_ode.c: time per training
iteration of torchdiffeq's latent-ODE model (examples/latent_ode.py: RecognitionRNN,
LatentODEfunc, Decoder) at libnode's sizes and batch, on the same data and the same
kind of mini-batch.

What one iteration does (the same steps as node_latent_loss + Adam in latent_ode.c):
B random training series are put on the sorted union of their times (with the data's
first time in front, as latent_ode.c does); the recognition RNN (tanh, 25 hidden)
runs backwards over the union, input [x_i, t_next - t_i] (the gap to the series' next
observation, 0 for its last), skipping the times a series is not observed; a linear
layer gives q(z0) (latent 4); z0 = mean + exp(logvar/2) eps; the latent ODE
(4-20-20-4, elu) is solved by dopri5 through every union time (odeint_adjoint, or
odeint with --backprop); the decoder (4-20-2, relu) gives the mean of a Gaussian of
std 0.3; loss = mean over the series of (-masked log-likelihood + KL(q || N(0, I)));
backward; Adam (lr 0.01).  CPU, one thread (torch.set_num_threads(1)), float64 like
libnode.  NFE counts calls of the dynamics' forward (in the backward pass: one per
vector-Jacobian product of the adjoint).

Data: the training CSV that `latent_ode --write-data` writes (long format
series,t,x1,...,xD), e.g.
    ./build/latent_ode --model latent-ode --n-obs 30 --iters 20 --write-data --out /tmp/lat
    PYTHONPATH=/work/peers /usr/bin/python3 bench/peers/torchdiffeq_latent_ode.py \
        --train /tmp/lat/spirals_n30_train.csv --batch-size 50 --iters 20
Getting torchdiffeq: see README.md in this folder.

With --test (the test CSV of the same --write-data run) and --n-obs N, the model is
trained for --iters iterations and then evaluated the way latent_ode.c evaluates it:
each test series' first N points (its observed window) go to the encoder, z0 = the
posterior mean, the solve runs through all of the series' times, and the RMSE is
printed over the window and over the points after it (the predictive RMSE of Table 2).
--obs-std and --ema match latent_ode's flags of the same names, so that the peer model
can be trained the way libnode's was, e.g. (20 to 40 minutes on one core)
    PYTHONPATH=/work/peers /usr/bin/python3 bench/peers/torchdiffeq_latent_ode.py \
        --train /tmp/lat/spirals_n30_train.csv --test /tmp/lat/spirals_n30_test.csv \
        --n-obs 30 --batch-size 100 --iters 10000 --backprop --obs-std 0.1 --ema 0.999
"""
import argparse
import csv
import time

import numpy as np
import torch
import torch.nn as nn

from torchdiffeq import odeint, odeint_adjoint


class LatentODEfunc(nn.Module):        # torchdiffeq examples/latent_ode.py
    def __init__(self, latent_dim=4, nhidden=20):
        super().__init__()
        self.elu = nn.ELU(inplace=True)
        self.fc1 = nn.Linear(latent_dim, nhidden)
        self.fc2 = nn.Linear(nhidden, nhidden)
        self.fc3 = nn.Linear(nhidden, latent_dim)
        self.nfe = 0

    def forward(self, t, x):
        self.nfe += 1
        out = self.elu(self.fc1(x))
        out = self.elu(self.fc2(out))
        return self.fc3(out)


class RecognitionRNN(nn.Module):       # latent_ode.py's, with the time gap as an input
    def __init__(self, latent_dim=4, nin=3, nhidden=25):
        super().__init__()
        self.nhidden = nhidden
        self.i2h = nn.Linear(nin + nhidden, nhidden)
        self.h2o = nn.Linear(nhidden, latent_dim * 2)

    def forward(self, x, h):
        return torch.tanh(self.i2h(torch.cat((x, h), dim=1)))


class Decoder(nn.Module):
    def __init__(self, latent_dim=4, obs_dim=2, nhidden=20):
        super().__init__()
        self.relu = nn.ReLU(inplace=True)
        self.fc1 = nn.Linear(latent_dim, nhidden)
        self.fc2 = nn.Linear(nhidden, obs_dim)

    def forward(self, z):
        return self.fc2(self.relu(self.fc1(z)))


def log_normal_pdf(x, mean, logvar):
    const = torch.log(torch.tensor(2. * np.pi))
    return -.5 * (const + logvar + (x - mean) ** 2. / torch.exp(logvar))


def normal_kl(mu1, lv1, mu2, lv2):
    v1, v2 = torch.exp(lv1), torch.exp(lv2)
    return lv2 / 2. - lv1 / 2. + (v1 + (mu1 - mu2) ** 2.) / (2. * v2) - .5


def read_csv(path):
    series = {}
    with open(path) as f:
        rd = csv.reader(f)
        next(rd)
        for row in rd:
            series.setdefault(int(row[0]), []).append([float(v) for v in row[1:]])
    return [np.array(v) for v in series.values()]   # each n × (1 + D)


def make_batch(series, sel, t0):
    """Union of times (t0 first), values nt × B × D, mask nt × B, gaps nt × B."""
    ts = np.unique(np.concatenate([series[i][:, 0] for i in sel] + [[t0]]))
    D = series[sel[0]].shape[1] - 1
    nt, B = len(ts), len(sel)
    xs = np.zeros((nt, B, D))
    mask = np.zeros((nt, B))
    gap = np.zeros((nt, B))
    for b, i in enumerate(sel):
        s = series[i]
        rows = np.searchsorted(ts, s[:, 0])
        xs[rows, b] = s[:, 1:]
        mask[rows, b] = 1
        gap[rows[:-1], b] = np.diff(s[:, 0])
    return (torch.from_numpy(ts), torch.from_numpy(xs), torch.from_numpy(mask),
            torch.from_numpy(gap))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--train", required=True, help="training CSV (latent_ode --write-data)")
    ap.add_argument("--batch-size", type=int, default=50)
    ap.add_argument("--iters", type=int, default=20, help="measured iterations")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--rtol", type=float, default=1e-5)
    ap.add_argument("--atol", type=float, default=1e-7)
    ap.add_argument("--backprop", action="store_true", help="odeint instead of odeint_adjoint")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--obs-std", type=float, default=0.3, help="sigma of the likelihood")
    ap.add_argument("--test", help="test CSV: train, then print the RMSE (needs --n-obs)")
    ap.add_argument("--n-obs", type=int, default=0, help="points of a test series' window")
    ap.add_argument("--ema", type=float, default=0.0,
                    help="evaluate an exponential moving average of the parameters")
    args = ap.parse_args()
    if args.test and args.n_obs < 1:
        ap.error("--test needs --n-obs")
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    series = read_csv(args.train)
    D = series[0].shape[1] - 1
    t0 = min(s[0, 0] for s in series)
    L, H, NH = 4, 25, 20
    func, rec, dec = LatentODEfunc(L, NH), RecognitionRNN(L, D + 1, H), Decoder(L, D, NH)
    params = list(func.parameters()) + list(dec.parameters()) + list(rec.parameters())
    opt = torch.optim.Adam(params, lr=0.01)
    noise_logvar = 2. * np.log(args.obs_std)
    avg = [p.detach().clone() for p in params]
    solve = odeint if args.backprop else odeint_adjoint
    kw = dict(rtol=args.rtol, atol=args.atol, method="dopri5")

    tot = nfe_f = nfe_b = 0.0
    union = 0.0
    for it in range(args.warmup + args.iters):
        sel = rng.choice(len(series), args.batch_size, replace=False)
        ts, xs, mask, gap = make_batch(series, sel, t0)
        t_start = time.perf_counter()
        opt.zero_grad()
        h = torch.zeros(len(sel), H)
        for i in reversed(range(len(ts))):
            hn = rec(torch.cat((xs[i], gap[i][:, None]), dim=1), h)
            m = mask[i][:, None]
            h = m * hn + (1 - m) * h
        out = rec.h2o(h)
        qz0_mean, qz0_logvar = out[:, :L], out[:, L:]
        z0 = torch.randn(qz0_mean.size()) * torch.exp(.5 * qz0_logvar) + qz0_mean
        func.nfe = 0
        pred_z = solve(func, z0, ts, **kw)                  # nt × B × L
        n_fwd = func.nfe
        pred_x = dec(pred_z)
        logpx = (log_normal_pdf(xs, pred_x, torch.tensor(noise_logvar)) * mask[..., None]).sum(-1).sum(0)
        kl = normal_kl(qz0_mean, qz0_logvar, torch.zeros(L), torch.zeros(L)).sum(-1)
        loss = torch.mean(-logpx + kl)
        loss.backward()
        opt.step()
        if args.ema > 0:   # bias-free start, as latent_ode.c's --ema
            d = min(args.ema, (1.0 + it) / (10.0 + it))
            with torch.no_grad():
                for a, p in zip(avg, params):
                    a.mul_(d).add_(p, alpha=1 - d)
        dt = time.perf_counter() - t_start
        if it >= args.warmup:
            tot += dt
            nfe_f += n_fwd
            nfe_b += func.nfe - n_fwd
            union += len(ts)
    n = float(args.iters)
    print(f"torchdiffeq {getattr(__import__('torchdiffeq'), '__version__', '?')}, torch "
          f"{torch.__version__}, one thread, float64; {len(series)} series of dimension {D}, "
          f"batch {args.batch_size}, mean union {union / n:.1f} times, dopri5 rtol {args.rtol:g} "
          f"atol {args.atol:g}, {'backprop' if args.backprop else 'adjoint'}")
    print(f"ms/iter {1e3 * tot / n:.2f}  NFE fwd {nfe_f / n:.1f}  NFE bwd {nfe_b / n:.1f}  "
          f"(mean over {args.iters} iterations after {args.warmup} warm-up; final loss "
          f"{loss.item():.3f})")
    if args.test:
        if args.ema > 0:
            with torch.no_grad():
                for a, p in zip(avg, params):
                    p.copy_(a)
        evaluate(args, read_csv(args.test), t0, func, rec, dec, L, H, kw)


def evaluate(args, test, t0, func, rec, dec, L, H, kw):
    """RMSE over each test series' first n_obs points and over the rest, the posterior
    mean z0 from the first n_obs points, one series at a time."""
    so = sp = 0.0
    no = npred = 0
    with torch.no_grad():
        for s in test:
            w = s[:args.n_obs]
            ts, xs, mask, gap = make_batch([w], [0], t0)
            h = torch.zeros(1, H)
            for i in reversed(range(len(ts))):
                hn = rec(torch.cat((xs[i], gap[i][:, None]), dim=1), h)
                m = mask[i][:, None]
                h = m * hn + (1 - m) * h
            z0 = rec.h2o(h)[:, :L]
            tq = np.concatenate([[t0], s[:, 0]]) if s[0, 0] > t0 else s[:, 0]
            px = dec(odeint(func, z0, torch.from_numpy(tq), **kw))[-len(s):, 0].numpy()
            e = ((px - s[:, 1:]) ** 2).sum(1)
            so += e[:args.n_obs].sum()
            sp += e[args.n_obs:].sum()
            no += args.n_obs
            npred += len(s) - args.n_obs
    D = test[0].shape[1] - 1
    print(f"rmse_observed {np.sqrt(so / (no * D)):.4f}  rmse_predicted "
          f"{np.sqrt(sp / (npred * D)):.4f}  ({len(test)} test series, window {args.n_obs})")


if __name__ == "__main__":
    main()
