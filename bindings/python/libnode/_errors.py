"""_errors.py — one exception class per node_status, carrying the library's message."""
from ._lib import lib


class NodeError(Exception):
    """A libnode call failed.  .status is the node_status value, .message the
    library's one-line message (which argument, which file, which time and why),
    .stats the Stats of a failed solve or gradient (None for other calls)."""
    status = None

    def __init__(self, message, status=None, stats=None):
        super().__init__(message)
        if status is not None:
            self.status = status
        self.message = message
        self.stats = stats


class InvalidArgumentError(NodeError, ValueError):
    """NODE_EINVAL: a bad argument (also raised by the binding itself for bad
    shapes and dtypes, before any C call)."""
    status = 1


class OutOfMemoryError(NodeError, MemoryError):
    """NODE_ENOMEM."""
    status = 2


class MaxStepsError(NodeError):
    """NODE_EMAXSTEPS: options['max_num_steps'] reached before the end time."""
    status = 3


class StepSizeError(NodeError, ArithmeticError):
    """NODE_ESTEPSIZE: the adaptive step underflowed (a singularity, or tolerances
    no step can meet)."""
    status = 4


class NonFiniteError(NodeError, ArithmeticError):
    """NODE_ENONFINITE: NaN or Inf in a state, a derivative, a gradient or a loss."""
    status = 5


class CallbackError(NodeError):
    """NODE_ECALLBACK: a callback returned non-zero (a Python exception inside a
    callback is re-raised as itself, not as this)."""
    status = 6


class FileIOError(NodeError, OSError):
    """NODE_EIO: reading or writing a file failed."""
    status = 7


class FormatError(NodeError):
    """NODE_EFORMAT: a model file is malformed, truncated or fails its checksum."""
    status = 8


_BY_STATUS = {c.status: c for c in (InvalidArgumentError, OutOfMemoryError, MaxStepsError,
                                    StepSizeError, NonFiniteError, CallbackError,
                                    FileIOError, FormatError)}


def strerror(status):
    """The library's description of a status code."""
    return lib.node_strerror(status).decode()


def raise_for(status, message=b"", what=None, stats=None):
    """Raise the exception of a non-zero status; message is the library's (bytes or
    str), or its strerror when empty; what, when given, prefixes it."""
    if status == 0:
        return
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    if not message:
        message = strerror(status)
    if what:
        message = "%s: %s" % (what, message)
    cls = _BY_STATUS.get(status, NodeError)
    raise cls(message, status=status, stats=stats)
