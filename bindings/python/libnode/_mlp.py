"""_mlp.py — libnode.MLP: a node_mlp with a writable numpy view of its parameters."""
import ctypes
import os
from ctypes import byref, c_double, c_int32, c_size_t, c_void_p

import numpy as np

from ._lib import lib, Error, System
from ._errors import InvalidArgumentError, raise_for
from ._ode import as_f64, out_f64, _MLPSystemRef

_ACT_CODES = {}


def _act(name):
    if not isinstance(name, str):
        raise InvalidArgumentError("activation %r: give a name such as 'tanh'" % (name,))
    c = _ACT_CODES.get(name)
    if c is None:
        v = c_int32()
        if lib.node_activation_parse(name.encode(), byref(v)) != 0:
            raise InvalidArgumentError(
                "unknown activation %r (identity, tanh, relu, softplus, sigmoid, elu, silu)"
                % name)
        c = _ACT_CODES[name] = v.value
    return c


class MLP:
    """A multilayer perceptron y = MLP(t, x), usable as ODE dynamics dy/dt = MLP(t, y).

    MLP(sizes, activations, time_input=False, seed=0): sizes = [in, hidden..., out];
    activations one name per layer (len(sizes) - 1 of them), or one name for every
    hidden layer with a linear (identity) output layer.  Names: identity, tanh, relu,
    softplus, sigmoid, elu, silu.  time_input appends t as an input of the first
    layer.  Initialised as PyTorch's nn.Linear (U(±1/√fan_in)) from seed; seed=None
    leaves the parameters zero.

    .params is a writable float64 view of θ = [W_1, b_1, W_2, b_2, ...] (W row-major,
    out × in, as torch.nn.Linear.weight): write it, hand it to an optimizer, or share
    it with torch (torch.from_numpy(mlp.params))."""

    def __init__(self, sizes, activations="tanh", time_input=False, seed=0):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2:
            raise InvalidArgumentError("sizes %r: need at least [inputs, outputs]" % (sizes,))
        if any(s <= 0 for s in sizes):
            raise InvalidArgumentError("sizes %r: every size must be positive" % (sizes,))
        nl = len(sizes) - 1
        if isinstance(activations, str):
            activations = [activations] * (nl - 1) + ["identity"]
        activations = list(activations)
        if len(activations) != nl:
            raise InvalidArgumentError("%d activations for %d layers (sizes %r)"
                                       % (len(activations), nl, sizes))
        codes = (c_int32 * nl)(*[_act(a) for a in activations])
        csizes = (c_size_t * (nl + 1))(*sizes)
        p, err = c_void_p(), Error()
        raise_for(lib.node_mlp_create_ex(byref(p), nl, csizes, codes, 1 if time_input else 0,
                                         byref(err)), err.message, "MLP")
        self._adopt(p.value)
        if seed is not None:
            lib.node_mlp_init(self._ptr, int(seed) & 0xFFFFFFFFFFFFFFFF)

    def _adopt(self, ptr):
        self._ptr = ptr
        self._systems = {}
        n = lib.node_mlp_nparams(ptr)
        buf = (c_double * n).from_address(lib.node_mlp_params(ptr))
        buf._owner = self      # the view keeps the model alive
        self._params = np.frombuffer(buf, dtype=np.float64)
        nl = lib.node_mlp_nlayers(ptr)
        self.sizes = tuple(lib.node_mlp_size(ptr, k) for k in range(nl + 1))
        self.activations = tuple(lib.node_activation_name(lib.node_mlp_activation(ptr, k)).decode()
                                 for k in range(nl))
        self.time_input = bool(lib.node_mlp_time_input(ptr))

    @classmethod
    def load(cls, path):
        """A model saved by MLP.save (or by the C API's node_mlp_save)."""
        p, err = c_void_p(), Error()
        raise_for(lib.node_mlp_load_ex(byref(p), os.fsencode(path), byref(err)), err.message)
        m = cls.__new__(cls)
        m._adopt(p.value)
        return m

    def save(self, path):
        """Write the model to path (atomically: a failure leaves the old file intact)."""
        err = Error()
        raise_for(lib.node_mlp_save_ex(self._ptr, os.fsencode(path), byref(err)), err.message)

    def __del__(self):
        ptr = getattr(self, "_ptr", None)
        if ptr and lib is not None:
            lib.node_mlp_free(ptr)   # frees its systems too
            self._ptr = None

    @property
    def params(self):
        """θ, a writable float64 view (length nparams)."""
        return self._params

    @params.setter
    def params(self, value):
        self._params[...] = as_f64(value, "params", shape=self._params.shape)

    @property
    def nparams(self):
        return self._params.size

    def init(self, seed=0):
        """Re-initialise θ as PyTorch's nn.Linear does, from seed."""
        lib.node_mlp_init(self._ptr, int(seed) & 0xFFFFFFFFFFFFFFFF)

    def __repr__(self):
        return "libnode.MLP(%r, %r, time_input=%r)  # %d parameters" % (
            list(self.sizes), list(self.activations), self.time_input, self.nparams)

    def forward(self, x, t=0.0, out=None):
        """MLP(t, x) for x of shape (..., sizes[0]) → (..., sizes[-1]).  out: an
        array to write the result into (float64, C-contiguous, that shape), returned."""
        if type(x) is not np.ndarray or x.dtype != np.float64 or not x.flags.c_contiguous:
            x = as_f64(x, "x")
        w = self.sizes[0]
        if x.ndim == 0 or x.shape[-1] != w:
            raise InvalidArgumentError("x has shape %s: expected (..., %d)" % (x.shape, w))
        shape = x.shape[:-1] + (self.sizes[-1],)
        y = np.empty(shape) if out is None else out_f64(out, "out", shape)
        st = lib.node_mlp_forward(self._ptr, x.size // w, t, x.ctypes.data, y.ctypes.data)
        if st:
            raise_for(st, what="MLP.forward")
        return y

    __call__ = forward

    def vjp(self, x, a, t=0.0, y=None, vjp_x=None, vjp_p=None):
        """Vector-Jacobian products at x for the cotangent a (shape (..., sizes[-1])):
        returns (y, aᵀ∂y/∂x, Σ_rows aᵀ∂y/∂θ, Σ_rows aᵀ∂y/∂t).  y, vjp_x, vjp_p: arrays
        to write those into (float64, C-contiguous, the right shapes)."""
        x = as_f64(x, "x")
        w = self.sizes[0]
        if x.ndim == 0 or x.shape[-1] != w:
            raise InvalidArgumentError("x has shape %s: expected (..., %d)" % (x.shape, w))
        a = as_f64(a, "a", shape=x.shape[:-1] + (self.sizes[-1],))
        y = np.empty(a.shape) if y is None else out_f64(y, "y", a.shape)
        gx = np.empty(x.shape) if vjp_x is None else out_f64(vjp_x, "vjp_x", x.shape)
        gp = np.empty(self.nparams) if vjp_p is None else out_f64(vjp_p, "vjp_p", (self.nparams,))
        gt = c_double()
        raise_for(lib.node_mlp_vjp(self._ptr, x.size // w, float(t), x.ctypes.data, a.ctypes.data,
                                   y.ctypes.data, gx.ctypes.data, gp.ctypes.data, byref(gt)),
                  what="MLP.vjp")
        return y, gx, gp, gt.value

    def _ode_system(self, shape):
        """The C system dy/dt = MLP(t, y) for states of this shape (cached per batch)."""
        w = self.sizes[0]
        if self.sizes[-1] != w:
            raise InvalidArgumentError("this MLP maps %d inputs to %d outputs: as ODE dynamics "
                                       "it needs as many outputs as inputs" % (w, self.sizes[-1]))
        if len(shape) == 0 or shape[-1] != w:
            raise InvalidArgumentError("y0 has shape %s: this MLP's state has width %d, so "
                                       "y0 must be of shape (..., %d)" % (shape, w, w))
        b = 1
        for d in shape[:-1]:
            b *= d
        r = self._systems.get(b)
        if r is None:
            s = System()
            raise_for(lib.node_mlp_system(self._ptr, b, byref(s)), what="node_mlp_system")
            r = self._systems[b] = s
        return _MLPSystemRef(r, shape)
