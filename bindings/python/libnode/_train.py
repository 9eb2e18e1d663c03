"""_train.py — losses, optimizers (PyTorch's update rules), gradient clipping and
learning-rate schedules over flat numpy parameter vectors."""
from ctypes import byref, c_double, c_int64, c_void_p

import numpy as np

from ._lib import lib, Error, OptimConfig, Sched
from ._errors import InvalidArgumentError, raise_for
from ._ode import as_f64, out_f64

# ---- losses ----------------------------------------------------------------------------------


def _loss(kind, pred, target, mask, nan_missing, name):
    pred = as_f64(pred, "pred")
    target = as_f64(target, "target", shape=pred.shape)
    if pred.size == 0:
        raise InvalidArgumentError("pred is empty")
    m = None
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != pred.shape:
            raise InvalidArgumentError("mask has shape %s: expected %s (pred's)" % (m.shape, pred.shape))
        m = np.ascontiguousarray(m != 0, dtype=np.uint8)
    loss = c_double()
    grad = np.empty(pred.shape)
    err = Error()
    raise_for(lib.node_loss(kind, pred.size, pred.ctypes.data, target.ctypes.data,
                            None if m is None else m.ctypes.data, 1 if nan_missing else 0,
                            byref(loss), grad.ctypes.data, byref(err)), err.message, name)
    return loss.value, grad


def mse_loss(pred, target, mask=None, nan_missing=False):
    """Mean squared error over the observed entries and its gradient:
    (loss, dL/dpred).  mask: nonzero = observed; nan_missing: a NaN target marks a
    missing entry."""
    return _loss(0, pred, target, mask, nan_missing, "mse_loss")


def mae_loss(pred, target, mask=None, nan_missing=False):
    """Mean absolute error over the observed entries and its gradient:
    (loss, dL/dpred) (sign(0) = 0, as PyTorch)."""
    return _loss(1, pred, target, mask, nan_missing, "mae_loss")


def clip_grad_norm(grad, max_norm):
    """torch.nn.utils.clip_grad_norm_ on one array, in place; returns the norm before
    clipping."""
    grad = out_f64(grad, "grad", np.shape(grad))
    norm = c_double()
    raise_for(lib.node_clip_grad_norm(grad.size, grad.ctypes.data, float(max_norm),
                                      byref(norm)), what="clip_grad_norm")
    return norm.value

# ---- optimizers ------------------------------------------------------------------------------


class Optimizer:
    """An optimizer over a float64 numpy array of parameters, updated in place by
    .step(grad) — e.g. libnode.Adam(mlp.params, lr=1e-3).  The subclasses SGD,
    RMSprop, Adam and AdamW take PyTorch's hyper-parameters and defaults."""
    _kind = None
    _fields = ()

    def __init__(self, params, **hyper):
        self.params = out_f64(params, "params", np.shape(params))
        if self.params.size == 0:
            raise InvalidArgumentError("params is empty")
        cfg = OptimConfig()
        raise_for(lib.node_optim_defaults(self._kind, byref(cfg)))
        for k, v in hyper.items():
            if k not in self._fields:
                raise InvalidArgumentError("%s has no hyper-parameter %r (it has %s)"
                                           % (type(self).__name__, k, ", ".join(self._fields)))
            if k == "betas":
                cfg.beta1, cfg.beta2 = (float(b) for b in v)
            elif k in ("nesterov", "centered", "amsgrad"):
                setattr(cfg, k, 1 if v else 0)
            else:
                setattr(cfg, k, float(v))
        p, err = c_void_p(), Error()
        raise_for(lib.node_optim_create_ex(byref(p), self.params.size, byref(cfg), byref(err)),
                  err.message, type(self).__name__)
        self._ptr = p.value

    def __del__(self):
        if getattr(self, "_ptr", None) and lib is not None:
            lib.node_optim_free(self._ptr)
            self._ptr = None

    def step(self, grad):
        """One update of params with the gradient grad (params' shape).  On a NaN or
        Inf (NonFiniteError) nothing changes, so the batch can be skipped."""
        g = self._g = as_f64(grad, "grad", shape=self.params.shape)
        raise_for(lib.node_optim_step(self._ptr, self.params.ctypes.data, g.ctypes.data),
                  what="%s.step" % type(self).__name__)

    @property
    def lr(self):
        v = c_double()
        lib.node_optim_get_lr(self._ptr, byref(v))
        return v.value

    @lr.setter
    def lr(self, value):
        raise_for(lib.node_optim_set_lr(self._ptr, float(value)), what="lr")

    @property
    def steps(self):
        """Steps taken since creation or reset()."""
        v = c_int64()
        lib.node_optim_get_step(self._ptr, byref(v))
        return v.value

    def reset(self):
        """Forget the moments and the step count (the learning rate stays)."""
        lib.node_optim_reset(self._ptr)

    def schedule(self, schedule, it):
        """Set lr from a Schedule at iteration it (0-based)."""
        raise_for(lib.node_optim_schedule(self._ptr, byref(schedule._s), int(it)),
                  what="schedule")


class SGD(Optimizer):
    """torch.optim.SGD: lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False."""
    _kind = 0
    _fields = ("lr", "momentum", "dampening", "weight_decay", "nesterov")


class RMSprop(Optimizer):
    """torch.optim.RMSprop: lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
    centered=False."""
    _kind = 1
    _fields = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered")


class Adam(Optimizer):
    """torch.optim.Adam: lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
    amsgrad=False."""
    _kind = 2
    _fields = ("lr", "betas", "eps", "weight_decay", "amsgrad")


class AdamW(Adam):
    """torch.optim.AdamW: as Adam with decoupled weight_decay=1e-2."""
    _kind = 3


class Schedule:
    """A learning-rate schedule: Schedule('constant', lr0), Schedule('step', lr0,
    step_size=, gamma=) (StepLR), Schedule('cosine', lr0, T=, lr_min=0)
    (CosineAnnealingLR without restarts).  .lr(it) is the rate at iteration it."""
    _KINDS = {"constant": 0, "step": 1, "cosine": 2}

    def __init__(self, kind, lr0, step_size=1, gamma=1.0, T=1, lr_min=0.0):
        if kind not in self._KINDS:
            raise InvalidArgumentError("unknown schedule %r (constant, step, cosine)" % (kind,))
        s = self._s = Sched()
        s.kind, s.lr0, s.step_size, s.gamma, s.T, s.lr_min = (
            self._KINDS[kind], float(lr0), int(step_size), float(gamma), int(T), float(lr_min))
        self.lr(0)   # refuses bad fields now, with the library's message

    def lr(self, it):
        v = c_double()
        raise_for(lib.node_sched_lr(byref(self._s), int(it), byref(v)), what="Schedule")
        return v.value
