#!/usr/bin/env python3
"""torchdiffeq_odenet.py — the peer side of examples/odenet.c: time per training epoch of
torchdiffeq's examples/odenet_mnist.py model on the same Fashion-MNIST images, width,
batch and number of threads.

The model is written here after odenet_mnist.py (commit 657943a), not copied: conv
downsampling (Conv2d(1, W, 3, 1), GN, ReLU, Conv2d(W, W, 4, 2, 1), GN, ReLU,
Conv2d(W, W, 4, 2, 1)), then an ODE block (ODEfunc: GN, ReLU, ConcatConv2d 3x3, GN,
ReLU, ConcatConv2d 3x3, GN; odeint(..., rtol=tol, atol=tol), dopri5, over [0, 1]) or 6
ResBlocks, then GN, ReLU, AdaptiveAvgPool2d(1), flatten, Linear(W, 10); GN =
GroupNorm(min(32, W), W).  --network rknet: the same ODE block through odeint with
method='rk4' and step_size (torchdiffeq's fixed-grid RK4), backprop.  SGD lr 0.1 x B/128,
momentum 0.9, cross-entropy, random crops (padding 4, as RandomCrop(28, padding=4)).
odenet_mnist.py computes in float32 (PyTorch's default); --dtype float64 matches
libnode's arithmetic.  NFE-F / NFE-B count ODEfunc calls in the forward / backward pass.

One epoch is the first --train-limit images in full batches (drop_last, as the
original); --batches N times only N batches and extrapolates to the epoch (said so in
the output).  The first --warmup batches are not timed.

Run (torch 1.13, torchdiffeq 0.2.5 sources):
    PYTHONPATH=/work/peers /usr/bin/python3 bench/peers/torchdiffeq_odenet.py \
        --width 32 --train-limit 1280 --threads 1
The last line of standard output is a JSON object.
"""
import argparse
import gzip
import json
import os
import resource
import time

import numpy as np
import torch
import torch.nn as nn


def read_idx(path):
    op = gzip.open if path.endswith('.gz') else open
    with op(path, 'rb') as f:
        b = f.read()
    nd = b[3]
    dims = [int.from_bytes(b[4 + 4 * i:8 + 4 * i], 'big') for i in range(nd)]
    return np.frombuffer(b, dtype=np.uint8, offset=4 + 4 * nd).reshape(dims)


def read_set(d, prefix):
    def find(base):
        p = os.path.join(d, base + '.gz')
        return p if os.path.exists(p) else os.path.join(d, base)
    return read_idx(find(prefix + '-images-idx3-ubyte')), read_idx(find(prefix + '-labels-idx1-ubyte'))


def norm(dim):
    return nn.GroupNorm(min(32, dim), dim)


class ConcatConv2d(nn.Module):
    """A 3x3 convolution that also sees a constant channel holding t."""

    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin + 1, cout, 3, 1, 1, bias=True)

    def forward(self, t, x):
        tt = torch.ones_like(x[:, :1]) * t
        return self.conv(torch.cat([tt, x], 1))


class ODEfunc(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.n1, self.c1, self.n2, self.c2, self.n3 = norm(dim), ConcatConv2d(dim, dim), \
            norm(dim), ConcatConv2d(dim, dim), norm(dim)
        self.nfe = 0

    def forward(self, t, x):
        self.nfe += 1
        h = self.c1(t, torch.relu(self.n1(x)))
        h = self.c2(t, torch.relu(self.n2(h)))
        return self.n3(h)


class ODEBlock(nn.Module):
    def __init__(self, func, solve, options):
        super().__init__()
        self.func, self.solve, self.options = func, solve, options

    def forward(self, x):
        t = torch.tensor([0.0, 1.0], dtype=x.dtype)
        return self.solve(self.func, x, t, **self.options)[1]


class ResBlock(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.n1, self.c1 = norm(dim), nn.Conv2d(dim, dim, 3, 1, 1, bias=False)
        self.n2, self.c2 = norm(dim), nn.Conv2d(dim, dim, 3, 1, 1, bias=False)

    def forward(self, x):
        h = self.c1(torch.relu(self.n1(x)))
        return x + self.c2(torch.relu(self.n2(h)))


def build(a):
    from torchdiffeq import odeint, odeint_adjoint
    W = a.width
    down = [nn.Conv2d(1, W, 3, 1), norm(W), nn.ReLU(), nn.Conv2d(W, W, 4, 2, 1), norm(W), nn.ReLU(),
            nn.Conv2d(W, W, 4, 2, 1)]
    func = None
    if a.network == 'resnet':
        block = [ResBlock(W) for _ in range(6)]
    else:
        func = ODEfunc(W)
        if a.network == 'rknet':
            block = [ODEBlock(func, odeint, dict(method='rk4', options=dict(step_size=a.rk_step)))]
        else:
            solve = odeint if a.backprop else odeint_adjoint
            block = [ODEBlock(func, solve, dict(rtol=a.tol, atol=a.tol))]
    head = [norm(W), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(W, 10)]
    return nn.Sequential(*down, *block, *head), func


def crop(x, rng):
    """RandomCrop(28, padding=4) of every image of x (B x 28 x 28 uint8)."""
    B, R, C = x.shape
    p = np.zeros((B, R + 8, C + 8), dtype=x.dtype)
    p[:, 4:4 + R, 4:4 + C] = x
    out = np.empty_like(x)
    for i in range(B):
        dy, dx = rng.integers(0, 9, size=2)
        out[i] = p[i, dy:dy + R, dx:dx + C]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--network', choices=['odenet', 'resnet', 'rknet'], default='odenet')
    ap.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    ap.add_argument('--width', type=int, default=64)
    ap.add_argument('--batch-size', type=int, default=128)
    ap.add_argument('--train-limit', type=int, default=2000)
    ap.add_argument('--batches', type=int, default=0, help='time only N batches, extrapolate')
    ap.add_argument('--warmup', type=int, default=1)
    ap.add_argument('--tol', type=float, default=1e-3)
    ap.add_argument('--rk-step', type=float, default=0.25)
    ap.add_argument('--backprop', action='store_true', help='odenet: odeint instead of odeint_adjoint')
    ap.add_argument('--lr', type=float, default=0.1)
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--dtype', choices=['float32', 'float64'], default='float32')
    ap.add_argument('--seed', type=int, default=1)
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dtype = getattr(torch, a.dtype)
    torch.set_default_dtype(dtype)
    images, labels = read_set(a.data, 'train')
    n = min(a.train_limit, len(images)) if a.train_limit > 0 else len(images)
    images, labels = images[:n], labels[:n].astype(np.int64)
    B = a.batch_size
    per_epoch = n // B
    timed = min(a.batches, per_epoch) if a.batches > 0 else per_epoch
    model, func = build(a)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.SGD(model.parameters(), lr=a.lr * B / 128, momentum=0.9)
    lossf = nn.CrossEntropyLoss()
    rng = np.random.default_rng(a.seed)
    order = rng.permutation(n)
    print('torchdiffeq %s: width %d, %d parameters, %s, %d threads, batch %d; %d images, '
          '%d batches an epoch, timing %d after %d warm-up' %
          (a.network, a.width, params, a.dtype, a.threads, B, n, per_epoch, timed, a.warmup),
          flush=True)
    secs, nf, nb, correct, seen = 0.0, 0, 0, 0, 0
    for b in range(a.warmup + timed):
        i = order[(b % per_epoch) * B:(b % per_epoch + 1) * B]
        t0 = time.perf_counter()
        x = torch.from_numpy(crop(images[i], rng).astype(np.float32) / 255.0).to(dtype).unsqueeze(1)
        y = torch.from_numpy(labels[i])
        opt.zero_grad()
        if func is not None:
            func.nfe = 0
        logits = model(x)
        f_nfe = func.nfe if func is not None else 0
        loss = lossf(logits, y)
        if func is not None:
            func.nfe = 0
        loss.backward()
        b_nfe = func.nfe if func is not None else 0
        opt.step()
        dt = time.perf_counter() - t0
        if b >= a.warmup:
            secs += dt
            nf += f_nfe
            nb += b_nfe
            correct += int((logits.argmax(1) == y).sum())
            seen += B
        print('batch %d: %.3f s, loss %.4f, NFE-F %d, NFE-B %d%s' %
              (b + 1, dt, loss.item(), f_nfe, b_nfe, ' (warm-up)' if b < a.warmup else ''),
              flush=True)
    per_batch = secs / timed
    epoch = per_batch * per_epoch
    print('%s per batch %.3f s; one epoch of %d batches: %.1f s%s; %.1f images/s' %
          (a.network, per_batch, per_epoch, epoch,
           ' (extrapolated from %d)' % timed if timed < per_epoch else '', B / per_batch))
    print(json.dumps({'peer': 'torchdiffeq', 'network': a.network, 'params': params,
                      'width': a.width, 'dtype': a.dtype, 'threads': a.threads,
                      'batch_size': B, 'train_images': n, 'batches_timed': timed,
                      'extrapolated': timed < per_epoch, 'seconds_per_batch': per_batch,
                      'seconds_per_epoch': epoch, 'images_per_second': B / per_batch,
                      'nfe_forward': nf / timed, 'nfe_backward': nb / timed,
                      'train_accuracy': correct / max(seen, 1),
                      'peak_rss_kb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))


if __name__ == '__main__':
    main()
