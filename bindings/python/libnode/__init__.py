"""libnode — neural ODEs in C, from Python.

    import numpy as np, libnode
    ys = libnode.odeint(lambda t, y: -y, np.array([1.0, 2.0]), np.linspace(0, 1, 5))

The interface follows torchdiffeq's (odeint(func, y0, t, rtol, atol, method,
options)); gradients come from libnode's adjoint (odeint_adjoint) or exact backprop
(odeint_backprop); libnode.MLP is a network whose ODE runs entirely in C.  Arrays are
numpy float64.  The shared library is found beside the build the package was
installed from, in the source tree, among installed libraries, or at
LIBNODE_LIBRARY=/path/to/libnode_ode.so; its version and struct layouts are checked
here, at import.
"""
from ._lib import (lib as _lib_handle, library_path, library_version, HEADER_VERSION,
                   LibraryNotFoundError)
from ._errors import (NodeError, InvalidArgumentError, OutOfMemoryError, MaxStepsError,
                      StepSizeError, NonFiniteError, CallbackError, FileIOError, FormatError,
                      strerror)
from ._ode import odeint, odeint_adjoint, odeint_backprop, Stats, Gradients
from ._mlp import MLP
from ._train import (mse_loss, mae_loss, clip_grad_norm, Optimizer, SGD, RMSprop, Adam,
                     AdamW, Schedule)

__version__ = "%d.%d.%d" % HEADER_VERSION


def isa():
    """The kernel level the library runs on this CPU: 'avx512', 'avx2' or 'generic'."""
    return _lib_handle.node_isa_name().decode()


__all__ = ["odeint", "odeint_adjoint", "odeint_backprop", "Stats", "Gradients", "MLP",
           "mse_loss", "mae_loss", "clip_grad_norm", "Optimizer", "SGD", "RMSprop", "Adam",
           "AdamW", "Schedule", "NodeError", "InvalidArgumentError", "OutOfMemoryError",
           "MaxStepsError", "StepSizeError", "NonFiniteError", "CallbackError",
           "FileIOError", "FormatError", "LibraryNotFoundError", "strerror", "isa",
           "library_path", "library_version"]
