"""libnode.torch — a libnode MLP ODE block inside a PyTorch model.

    block = libnode.torch.ODEBlock(libnode.MLP([2, 50, 2], "tanh"))
    ys = block(y0, t)              # y0: (..., 2) tensor, t: (nt,) tensor
    ys[-1].pow(2).sum().backward() # dL/dy0, dL/dθ (block.theta.grad), dL/dt by libnode

The forward solve and the gradients (the adjoint, or exact backprop with
gradient="backprop") run in libnode, in float64; inputs of another floating dtype are
converted and their gradients returned in it.  block.theta is a torch Parameter that
shares its memory with the MLP's parameters, so any torch optimizer trains the MLP.
"""
import numpy as np
import torch

from . import _ode
from ._mlp import MLP
from ._errors import InvalidArgumentError


def _np(x):
    return x.detach().to(dtype=torch.float64, device="cpu").contiguous().numpy()


class MLPODEFunction(torch.autograd.Function):
    """apply(y0, theta, t, mlp, kwargs, gradient) -> ys; theta must be the MLP's
    parameters (the memory of mlp.params, or a tensor copied into it)."""

    @staticmethod
    def forward(ctx, y0, theta, t, mlp, kwargs, gradient):
        p = mlp.params
        if theta.data_ptr() != p.ctypes.data:
            p[...] = _np(theta).reshape(p.shape)
        y0n, tn = _np(y0), _np(t)
        ys = _ode.odeint(mlp, y0n, tn, **kwargs)
        ctx.mlp, ctx.kwargs, ctx.gradient = mlp, kwargs, gradient
        ctx.np = (y0n, tn, ys)
        ctx.dtypes = (y0.dtype, theta.dtype, t.dtype)
        return torch.from_numpy(ys).to(y0.dtype)

    @staticmethod
    def backward(ctx, grad_ys):
        y0n, tn, ys = ctx.np
        fn = _ode.odeint_adjoint if ctx.gradient == "adjoint" else _ode.odeint_backprop
        kw = dict(ctx.kwargs)
        if ctx.gradient != "adjoint":
            for k in ("adjoint_rtol", "adjoint_atol", "adjoint_options"):
                kw.pop(k, None)
        g = fn(ctx.mlp, y0n, tn, _np(grad_ys), ys=ys, **kw)
        dy, dp, dt = ctx.dtypes
        return (torch.from_numpy(g.y0).to(dy), torch.from_numpy(g.params).to(dp),
                torch.from_numpy(g.t).to(dt), None, None, None)


class ODEBlock(torch.nn.Module):
    """dy/dt = mlp(t, y) solved by libnode: forward(y0, t) -> ys of shape
    (len(t),) + y0.shape.  Keyword arguments as libnode.odeint (rtol, atol, method,
    options) and odeint_adjoint (adjoint_rtol, adjoint_atol, adjoint_options);
    gradient: "adjoint" (default) or "backprop"."""

    def __init__(self, mlp, gradient="adjoint", **kwargs):
        super().__init__()
        if not isinstance(mlp, MLP):
            raise InvalidArgumentError("ODEBlock takes a libnode.MLP, not %s" % type(mlp).__name__)
        if gradient not in ("adjoint", "backprop"):
            raise InvalidArgumentError("gradient must be 'adjoint' or 'backprop', not %r" % (gradient,))
        self.mlp = mlp
        self.gradient = gradient
        self.kwargs = kwargs
        self.theta = torch.nn.Parameter(torch.from_numpy(mlp.params))   # shared memory

    def forward(self, y0, t):
        if not torch.is_tensor(t):
            t = torch.as_tensor(np.asarray(t, dtype=np.float64))
        return MLPODEFunction.apply(y0, self.theta, t, self.mlp, self.kwargs, self.gradient)
