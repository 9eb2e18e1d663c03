"""The torch autograd Function against torchdiffeq's gradients (skipped without torch
or torchdiffeq; torchdiffeq's sources may sit in /work/peers or on PYTHONPATH)."""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
if os.path.isdir("/work/peers") and "/work/peers" not in sys.path:
    sys.path.append("/work/peers")
torchdiffeq = pytest.importorskip("torchdiffeq")

import libnode            # noqa: E402
import libnode.torch      # noqa: E402


def _torch_net(m):
    """torch's copy of a libnode MLP 2-8-2 (tanh): the parameter layouts agree."""
    net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2)).double()
    p = torch.from_numpy(m.params.copy())
    k = 0
    with torch.no_grad():
        for lin in (net[0], net[2]):
            for q in (lin.weight, lin.bias):
                q.copy_(p[k:k + q.numel()].view_as(q))
                k += q.numel()
    return net


@pytest.mark.parametrize("gradient", ["adjoint", "backprop"])
def test_odeblock_matches_torchdiffeq(gradient):
    torch.manual_seed(0)
    m = libnode.MLP([2, 8, 2], "tanh", seed=5)
    net = _torch_net(m)
    y0 = torch.randn(4, 2, dtype=torch.float64)
    t = torch.linspace(0.0, 1.5, 6, dtype=torch.float64)
    w = torch.randn(6, 4, 2, dtype=torch.float64)
    tol = dict(rtol=1e-10, atol=1e-12)

    block = libnode.torch.ODEBlock(m, gradient=gradient, **tol)
    y0a, ta = y0.clone().requires_grad_(), t.clone().requires_grad_()
    ys = block(y0a, ta)
    (w * ys).sum().backward()

    class F(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, t, y):
            return self.net(y)
    f = F()
    y0b, tb = y0.clone().requires_grad_(), t.clone().requires_grad_()
    solve = torchdiffeq.odeint_adjoint if gradient == "adjoint" else torchdiffeq.odeint
    ysb = solve(f, y0b, tb, method="dopri5", **tol)
    (w * ysb).sum().backward()

    assert torch.allclose(ys, ysb, atol=1e-8)
    assert torch.allclose(y0a.grad, y0b.grad, rtol=1e-6, atol=1e-8)
    gtorch = torch.cat([q.grad.reshape(-1) for q in net.parameters()])
    assert torch.allclose(block.theta.grad, gtorch, rtol=1e-6, atol=1e-8)
    assert torch.allclose(ta.grad[1:], tb.grad[1:], rtol=1e-6, atol=1e-8)


def test_torch_optimizer_trains_the_mlp_through_shared_memory():
    m = libnode.MLP([2, 4, 2], "tanh", seed=1)
    block = libnode.torch.ODEBlock(m)
    before = m.params.copy()
    opt = torch.optim.SGD(block.parameters(), lr=0.1)
    ys = block(torch.ones(3, 2, dtype=torch.float64), torch.tensor([0.0, 1.0], dtype=torch.float64))
    ys[-1].pow(2).sum().backward()
    opt.step()
    assert not np.array_equal(before, m.params)
    assert np.array_equal(block.theta.detach().numpy(), m.params)
