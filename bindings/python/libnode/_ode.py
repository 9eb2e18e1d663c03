"""_ode.py — odeint, odeint_adjoint and odeint_backprop over node_solver_*, with
Python dynamics (ctypes callbacks) or a libnode MLP (callbacks that stay in C)."""
import collections
import ctypes
import math
import threading
from ctypes import byref, c_double, c_int32

import numpy as np

from ._lib import lib, Options, Stats as _CStats, System, F_T, VJP_T
from ._errors import InvalidArgumentError, raise_for

# ---- argument checks (all before any C call) ----------------------------------------------


def as_f64(x, name, ndim=None, shape=None):
    """x as a C-contiguous float64 array (no copy when it already is one).  Real
    numbers only: booleans, integers and floats convert; complex, object, string and
    datetime arrays are refused, as are wrong shapes."""
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise InvalidArgumentError("%s has dtype %s: libnode takes real numbers (float64)"
                                   % (name, a.dtype))
    a = np.asarray(a, dtype=np.float64, order="C")
    if ndim is not None and a.ndim != ndim:
        raise InvalidArgumentError("%s has %d dimension(s), shape %s: expected %d"
                                   % (name, a.ndim, a.shape, ndim))
    if shape is not None and a.shape != tuple(shape):
        raise InvalidArgumentError("%s has shape %s: expected %s" % (name, a.shape, tuple(shape)))
    return a


def out_f64(x, name, shape):
    """A caller's output array: float64, C-contiguous, writable, the right shape;
    refused rather than copied (a copy would not be written back)."""
    if not isinstance(x, np.ndarray) or x.dtype != np.float64 or not x.flags.c_contiguous \
            or not x.flags.writeable:
        raise InvalidArgumentError("%s must be a writable C-contiguous float64 numpy array" % name)
    if x.shape != tuple(shape):
        raise InvalidArgumentError("%s has shape %s: expected %s" % (name, x.shape, tuple(shape)))
    return x


def _times(t):
    t = as_f64(t, "t")
    if t.ndim == 0:
        raise InvalidArgumentError("t is a scalar: give the output times as a 1-D array "
                                   "(t[0] is the time of y0)")
    if t.ndim != 1 or t.size < 1:
        raise InvalidArgumentError("t has shape %s: expected a non-empty 1-D array" % (t.shape,))
    return t


# ---- options -------------------------------------------------------------------------------

# torchdiffeq's method names that libnode does not have, with what to use instead.
_NOT_HERE = {
    "fehlberg2": "bosh3", "adaptive_heun": "bosh3", "heun3": "rk4",
    "explicit_adams": "dopri5", "implicit_adams": "dopri5", "fixed_adams": "rk4",
    "scipy_solver": "dopri5", "rk4_38": "rk4", "heun2": "midpoint",
}
_FIXED = {"euler", "midpoint", "rk4"}
_OPTION_KEYS = {"step_size", "first_step", "max_step", "max_num_steps", "max_steps",
                "seminorm", "norm", "checkpoints", "perturb", "grid_constructor", "interp", "dtype"}
_method_cache = {}


def _parse_method(method):
    if method is None:
        return 4, "dopri5"   # NODE_DOPRI5
    if not isinstance(method, str):
        raise InvalidArgumentError("method must be a string such as 'dopri5', not %r" % (method,))
    m = _method_cache.get(method)
    if m is None:
        v = c_int32()
        if lib.node_method_parse(method.encode(), byref(v)) != 0:
            hint = _NOT_HERE.get(method)
            raise InvalidArgumentError(
                "unknown method %r%s; libnode has euler, midpoint, rk4, bosh3, dopri5, "
                "dop853 (aliases rk45, bs3, dp853, dopri8)"
                % (method, " (torchdiffeq's; the nearest here is %r)" % hint if hint else ""))
        m = _method_cache[method] = (v.value, lib.node_method_name(v.value).decode())
    return m


def make_options(t, rtol, atol, method, options, adjoint_rtol=None, adjoint_atol=None,
                 adjoint_options=None):
    code, name = _parse_method(method)
    o = Options()
    o.method = code
    o.rtol = rtol
    o.atol = atol
    for label, d in (("options", options), ("adjoint_options", adjoint_options)):
        if d is None:
            continue
        if not isinstance(d, dict):
            raise InvalidArgumentError("%s must be a dict, not %s" % (label, type(d).__name__))
        for k in d:
            if k not in _OPTION_KEYS:
                raise InvalidArgumentError(
                    "%s[%r] is not an option libnode knows (step_size, first_step, max_step, "
                    "max_num_steps, checkpoints, and in adjoint_options norm='seminorm')" % (label, k))
    options = options or {}
    for k in ("perturb", "grid_constructor", "interp", "dtype"):
        if options.get(k) not in (None, False):
            raise InvalidArgumentError("options[%r]: torchdiffeq's, not supported by libnode" % k)
    step = options.get("step_size", options.get("first_step"))
    if step is None and name in _FIXED:
        # torchdiffeq steps on the grid of t when step_size is not given
        d = np.abs(np.diff(t))
        if d.size == 0:
            step = 1.0
        else:
            step = float(d.min())
    if step is not None:
        o.step = step
    if options.get("max_step") is not None:
        o.max_step = options["max_step"]
    ms = options.get("max_num_steps", options.get("max_steps"))
    if ms is not None:
        if ms == math.inf:
            ms = 0
        o.max_steps = int(ms)
    ck = options.get("checkpoints")
    if ck is not None:
        if isinstance(ck, bool) or not isinstance(ck, (int, np.integer)) or ck < 0:
            raise InvalidArgumentError("options['checkpoints'] = %r: a number of saved states "
                                       ">= 0 (0 = record every step)" % (ck,))
        o.checkpoints = int(ck)
    if adjoint_rtol is not None:
        o.adjoint_rtol = adjoint_rtol
    if adjoint_atol is not None:
        o.adjoint_atol = adjoint_atol
    semi = options.get("seminorm", False)
    ao = adjoint_options or {}
    if ao.get("norm") is not None:
        if ao["norm"] != "seminorm":
            raise InvalidArgumentError("adjoint_options['norm'] = %r: only 'seminorm' is "
                                       "supported" % (ao["norm"],))
        semi = True
    o.seminorm = 1 if semi or ao.get("seminorm") else 0
    return o


# ---- statistics ----------------------------------------------------------------------------

class Stats(collections.namedtuple(
        "Stats", "nfe nsteps naccept nreject t_reached rows_done callback_rc message")):
    """What a solve or gradient call did (node_stats): evaluations of f (a vjp call
    counts as one), steps attempted, accepted and rejected, the time reached, the
    output rows written (forward solves), and after a failure the library's message."""
    __slots__ = ()

    @classmethod
    def _from(cls, s):
        return cls(s.nfe, s.nsteps, s.naccept, s.nreject, s.t_reached, s.rows_done,
                   s.callback_rc, s.message.decode("utf-8", "replace"))


Gradients = collections.namedtuple("Gradients", "y0 params t")
Gradients.__doc__ = """(dL/dy0, dL/dθ, dL/dt): dL/dy0 has y0's shape, dL/dθ the shape of
params (None without params), dL/dt one entry per output time."""

# ---- solvers: one per thread, reused (no allocation once warm) ------------------------------


class _Solver:
    __slots__ = ("ptr", "busy")

    def __init__(self):
        p = ctypes.c_void_p()
        raise_for(lib.node_solver_create(byref(p)), what="node_solver_create")
        self.ptr = p.value
        self.busy = False

    def __del__(self):
        if lib is not None and getattr(self, "ptr", None):
            lib.node_solver_free(self.ptr)
            self.ptr = None


_local = threading.local()


class _use_solver:
    """The calling thread's solver, or a fresh one while that one is busy (a solve
    started from inside a callback)."""
    __slots__ = ("s",)

    def __enter__(self):
        s = getattr(_local, "solver", None)
        if s is None:
            s = _local.solver = _Solver()
        if s.busy:
            s = _Solver()
        s.busy = True
        self.s = s
        return s.ptr

    def __exit__(self, *exc):
        self.s.busy = False


# ---- systems -------------------------------------------------------------------------------

def _view(addr, n, shape, writeable):
    a = np.frombuffer((c_double * n).from_address(addr), dtype=np.float64).reshape(shape)
    if not writeable:
        a.flags.writeable = False
    return a


class PySystem:
    """A node_system whose f and vjp are Python functions.  y and a reach them as
    read-only numpy views of libnode's buffers, valid during the call only (copy
    what you keep).  An exception raised in them stops the solve; the caller
    re-raises it."""

    def __init__(self, func, shape, vjp=None, pshape=None):
        if not callable(func):
            raise InvalidArgumentError("func must be callable as func(t, y) -> dy/dt, or a "
                                       "libnode.MLP; got %s" % type(func).__name__)
        if vjp is not None and not callable(vjp):
            raise InvalidArgumentError("vjp must be callable as vjp(t, y, a) -> (a^T df/dy, "
                                       "a^T df/dparams[, a^T df/dt])")
        self.exc = None
        n = int(np.prod(shape, dtype=np.int64))
        np_ = 0 if pshape is None else int(np.prod(pshape, dtype=np.int64))
        self.shape = shape
        frombuffer, f64, arr_t, ndarray = np.frombuffer, np.float64, c_double * n, np.ndarray
        ro, rw = {}, {}   # views of libnode's buffers by address: they recur every step

        def view(addr, cache, writeable):
            v = cache.get(addr)
            if v is None:
                if len(cache) > 64:
                    cache.clear()
                v = frombuffer(arr_t.from_address(addr), f64).reshape(shape)
                v.flags.writeable = writeable
                cache[addr] = v
            return v

        def put(addr, value, what):
            v = value if type(value) is ndarray else np.asarray(value, dtype=f64)
            if v.shape != shape:
                raise InvalidArgumentError("%s returned shape %s: expected %s (the shape of y0)"
                                           % (what, v.shape, shape))
            out = rw.get(addr)
            if out is None:
                out = view(addr, rw, True)
            out[...] = v

        def f_c(ctx, t, y, dydt):
            try:
                yv = ro.get(y)
                if yv is None:
                    yv = view(y, ro, False)
                put(dydt, func(t, yv), "func")
                return 0
            except BaseException as e:   # KeyboardInterrupt stops the solve too
                self.exc = e
                return 1

        self._f = F_T(f_c)
        self._vjp = None
        if vjp is not None:
            def vjp_c(ctx, t, y, a, dydt, vy, vp, vt):
                try:
                    yv = view(y, ro, False)
                    av = view(a, ro, False)
                    if dydt:
                        put(dydt, func(t, yv), "func")
                    r = vjp(t, yv, av)
                    if not isinstance(r, (tuple, list)) or len(r) not in (2, 3):
                        raise InvalidArgumentError(
                            "vjp must return (vjp_y, vjp_params) or (vjp_y, vjp_params, "
                            "vjp_t), got %s" % type(r).__name__)
                    put(vy, r[0], "vjp's vjp_y")
                    if vp:
                        g = np.asarray(r[1], dtype=f64)
                        if g.size != np_:
                            raise InvalidArgumentError(
                                "vjp's vjp_params has %d entries: expected %d (params' size)"
                                % (g.size, np_))
                        _view(vp, np_, (np_,), True)[...] = g.reshape(-1)
                    if vt:
                        c_double.from_address(vt).value = float(r[2]) if len(r) == 3 else 0.0
                    return 0
                except BaseException as e:
                    self.exc = e
                    return 1
            self._vjp = VJP_T(vjp_c)
        s = System()
        s.dim = n
        s.nparams = np_
        s.f = ctypes.cast(self._f, ctypes.c_void_p).value
        s.vjp = ctypes.cast(self._vjp, ctypes.c_void_p).value if self._vjp else None
        self.sys = s
        self.ref = byref(s)

    def raise_pending(self):
        e, self.exc = self.exc, None
        if e is not None:
            raise e.with_traceback(e.__traceback__)


def _system(func, y0, vjp=None, params=None, need_grad=False):
    """(system wrapper, params array or None) for func, which is a Python callable or a
    libnode.MLP."""
    from ._mlp import MLP
    if isinstance(func, MLP):
        if vjp is not None:
            raise InvalidArgumentError("vjp: a libnode.MLP brings its own vector-Jacobian "
                                       "products; leave vjp out")
        if params is not None and not (isinstance(params, np.ndarray) and
                                       params.ctypes.data == func.params.ctypes.data):
            raise InvalidArgumentError("params: a libnode.MLP differentiates its own "
                                       "parameters (mlp.params); leave params out")
        return func._ode_system(y0.shape), func.params
    if params is not None:
        params = np.asarray(params)
        if params.dtype.kind not in "biuf":
            raise InvalidArgumentError("params has dtype %s: expected real numbers" % params.dtype)
        if params.size == 0:
            raise InvalidArgumentError("params is empty: leave it out for a system "
                                       "without parameters")
    if need_grad and vjp is None:
        raise InvalidArgumentError(
            "vjp is required for gradients of a Python func: vjp(t, y, a) returning "
            "(a^T df/dy, a^T df/dparams[, a^T df/dt]) (a libnode.MLP needs none)")
    return PySystem(func, y0.shape, vjp, None if params is None else params.shape), params


class _MLPSystemRef:
    """What _system returns for an MLP: the C system, no Python callbacks."""
    __slots__ = ("sys", "ref", "shape")
    exc = None

    def __init__(self, sys, shape):
        self.sys = sys
        self.ref = byref(sys)
        self.shape = shape

    def raise_pending(self):
        pass


# ---- the three entry points -----------------------------------------------------------------

def _fail(status, st, system, what):
    system.raise_pending()
    raise_for(status, st.message, what=what, stats=Stats._from(st))


def odeint(func, y0, t, rtol=1e-7, atol=1e-9, method=None, options=None, *,
           return_stats=False):
    """Solve dy/dt = func(t, y) from y(t[0]) = y0 and return y at every t, an array of
    shape (len(t),) + y0.shape (row 0 is y0) — torchdiffeq's odeint.

    func: a Python callable func(t, y) -> dy/dt (t a float, y a read-only float64
    array of y0's shape), or a libnode.MLP (dy/dt = MLP(t, y), y0 of shape
    (..., width): the rows are a batch, and the callbacks stay in C).
    method: euler, midpoint, rk4, bosh3, dopri5 (default), dop853 (alias dopri8).
    options: step_size (fixed methods; default the smallest spacing of t) or
    first_step (adaptive), max_step, max_num_steps.
    return_stats=True returns (ys, Stats).
    Raises the exception of the failing status (InvalidArgumentError, MaxStepsError,
    StepSizeError, NonFiniteError, ...) with the library's message and .stats, or
    re-raises the exception func raised."""
    y0 = as_f64(y0, "y0")
    if y0.size == 0:
        raise InvalidArgumentError("y0 is empty")
    t = _times(t)
    system, _ = _system(func, y0)
    opt = make_options(t, rtol, atol, method, options)
    ys = np.empty((t.size,) + y0.shape)
    st = _CStats()
    with _use_solver() as s:
        status = lib.node_solver_odeint(s, system.ref, y0.ctypes.data, t.ctypes.data, t.size,
                                        ys.ctypes.data, byref(opt), byref(st))
    if status:
        _fail(status, st, system, "odeint")
    return (ys, Stats._from(st)) if return_stats else ys


def _grad(which, func, y0, t, grad_y, vjp, params, rtol, atol, method, options,
          adjoint_rtol, adjoint_atol, adjoint_options, ys, return_stats):
    y0 = as_f64(y0, "y0")
    if y0.size == 0:
        raise InvalidArgumentError("y0 is empty")
    t = _times(t)
    shape = (t.size,) + y0.shape
    grad_y = as_f64(grad_y, "grad_y", shape=shape)
    if ys is not None:
        ys = as_f64(ys, "ys", shape=shape)
    system, params = _system(func, y0, vjp, params, need_grad=True)
    opt = make_options(t, rtol, atol, method, options, adjoint_rtol, adjoint_atol,
                       adjoint_options)
    g_y0 = np.empty(y0.shape)
    g_p = None if params is None else np.empty(params.shape)
    g_t = np.empty(t.size)
    st = _CStats()
    fn = lib.node_solver_adjoint if which == "adjoint" else lib.node_solver_backprop
    with _use_solver() as s:
        if ys is None:
            # the forward solve (backprop re-runs it anyway, but needs ys[0] and checks it)
            ys = np.empty(shape)
            status = lib.node_solver_odeint(s, system.ref, y0.ctypes.data, t.ctypes.data,
                                            t.size, ys.ctypes.data, byref(opt), byref(st))
            if status:
                _fail(status, st, system, "odeint_%s (forward solve)" % which)
        elif not np.array_equal(ys[0], y0):
            raise InvalidArgumentError("ys[0] differs from y0: pass the ys that odeint "
                                       "returned for this y0 and t")
        status = fn(s, system.ref, t.ctypes.data, t.size, ys.ctypes.data, grad_y.ctypes.data,
                    g_y0.ctypes.data, None if g_p is None else g_p.ctypes.data,
                    g_t.ctypes.data, byref(opt), byref(st))
    if status:
        _fail(status, st, system, "odeint_" + which)
    g = Gradients(g_y0, g_p, g_t)
    return (g, Stats._from(st)) if return_stats else g


def odeint_adjoint(func, y0, t, grad_y, vjp=None, params=None, rtol=1e-7, atol=1e-9,
                   method=None, options=None, *, adjoint_rtol=None, adjoint_atol=None,
                   adjoint_options=None, ys=None, return_stats=False):
    """Gradients of a loss L(y(t[0]), ..., y(t[-1])) by the adjoint method (Chen et
    al. 2018): grad_y = dL/dys (shape (len(t),) + y0.shape) in, Gradients(y0, params,
    t) = (dL/dy0, dL/dθ, dL/dt) out.

    For a Python func, vjp(t, y, a) returns (a^T df/dy, a^T df/dθ) — or with a third
    entry a^T df/dt for a non-autonomous func (omitted: 0) — and params is the array θ
    that func reads (only its size and shape are used; None: no dL/dθ).  A libnode.MLP
    needs neither.  ys: the solution odeint returned for y0 and t (saves the forward
    solve).  adjoint_rtol/atol (default: rtol/atol) and adjoint_options={'norm':
    'seminorm'} as in torchdiffeq.  return_stats=True returns (grads, Stats) (the
    backward work)."""
    return _grad("adjoint", func, y0, t, grad_y, vjp, params, rtol, atol, method, options,
                 adjoint_rtol, adjoint_atol, adjoint_options, ys, return_stats)


def odeint_backprop(func, y0, t, grad_y, vjp=None, params=None, rtol=1e-7, atol=1e-9,
                    method=None, options=None, *, ys=None, return_stats=False):
    """As odeint_adjoint, but the exact gradient of the discrete solve
    (discretise-then-optimise, as backpropagating through torchdiffeq's odeint):
    libnode re-runs the forward solve on a tape and reverses it."""
    return _grad("backprop", func, y0, t, grad_y, vjp, params, rtol, atol, method, options,
                 None, None, None, ys, return_stats)
