"""_lib.py — finding and loading libnode_ode.so, the struct mirrors, the prototypes,
and the version and ABI checks done once at import.

Nothing here is public: the package's modules use `lib` (the ctypes.CDLL with every
prototype set) and the Structure classes.
"""
import ctypes
import ctypes.util
import os
import sys
from ctypes import (POINTER, CFUNCTYPE, Structure, c_char, c_char_p, c_double, c_int,
                    c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_void_p)

# The header version this binding mirrors (include/libnode/core.h).
HEADER_VERSION = (0, 2, 0)
HEADER_VERSION_NUMBER = HEADER_VERSION[0] * 10000 + HEADER_VERSION[1] * 100 + HEADER_VERSION[2]
MESSAGE_SIZE = 200


class LibraryNotFoundError(ImportError):
    """libnode_ode.so could not be found or loaded, or does not match this binding."""


# ---- finding the library -------------------------------------------------------------

_SONAME = "libnode_ode.so.%d.%d" % HEADER_VERSION[:2]
_NAMES = (_SONAME, "libnode_ode.so") if sys.platform != "darwin" else (
    "libnode_ode.%d.%d.dylib" % HEADER_VERSION[:2], "libnode_ode.dylib")


def _candidates():
    """(where, path) pairs in the order they are tried."""
    env = os.environ.get("LIBNODE_LIBRARY")
    if env:
        yield "LIBNODE_LIBRARY", env
        return   # an explicit choice is never second-guessed
    here = os.path.dirname(os.path.abspath(__file__))
    # 1. the build the package was installed from (recorded by setup.py) ...
    try:
        from . import _build_info   # written by setup.py at install time
        for d in getattr(_build_info, "LIBRARY_DIRS", ()):
            for n in _NAMES:
                yield "the build it was installed from", os.path.join(d, n)
    except ImportError:
        pass
    # 2. ... or the source tree it sits in (bindings/python/libnode -> build/)
    root = os.path.normpath(os.path.join(here, "..", "..", ".."))
    for b in ("build", "build-release", "build-shared"):
        for n in _NAMES:
            yield "the source tree's %s/" % b, os.path.join(root, b, n)
    # 3. an installed one: the dynamic linker's search path, then the usual prefixes
    for n in _NAMES:
        yield "the dynamic linker's path", n
    found = ctypes.util.find_library("node_ode")
    if found:
        yield "ldconfig", found
    for d in ("/usr/local/lib", "/usr/local/lib64", "/usr/lib", "/usr/lib64",
              os.path.join(sys.prefix, "lib")):
        for n in _NAMES:
            yield "an installed one", os.path.join(d, n)


def _load():
    tried = []
    for where, path in _candidates():
        if os.sep in path and not os.path.exists(path):
            tried.append(path)
            continue
        try:
            return ctypes.CDLL(path), path, where
        except OSError as e:
            tried.append("%s (%s)" % (path, e))
            if where == "LIBNODE_LIBRARY":
                break
    raise LibraryNotFoundError(
        "libnode: cannot find the shared library libnode_ode.so (tried: %s). Build it "
        "(cmake -S . -B build && cmake --build build; LIBNODE_BUILD_SHARED is ON by "
        "default), install it, or set LIBNODE_LIBRARY=/path/to/libnode_ode.so"
        % "; ".join(tried[:8] + (["..."] if len(tried) > 8 else [])))


lib, library_path, library_found_by = _load()

# ---- version ---------------------------------------------------------------------------

lib.node_version.restype = c_char_p
lib.node_version.argtypes = []
lib.node_version_number.restype = c_uint32
lib.node_version_number.argtypes = []
library_version = lib.node_version().decode()
_L = lib.node_version_number()
_V = HEADER_VERSION_NUMBER
if not ((_V // 10000 == 0 and _L // 100 == _V // 100 and _L >= _V) or
        (_V // 10000 > 0 and _L // 10000 == _V // 10000 and _L >= _V)):
    raise LibraryNotFoundError(
        "libnode: %s is libnode %s, but this Python package was written for libnode "
        "%d.%d.x (>= %d.%d.%d%s); install the matching package, or point "
        "LIBNODE_LIBRARY at a matching library"
        % (library_path, library_version, HEADER_VERSION[0], HEADER_VERSION[1],
           HEADER_VERSION[0], HEADER_VERSION[1], HEADER_VERSION[2],
           ", same MAJOR.MINOR before 1.0" if _V < 10000 else ", same MAJOR"))

# ---- struct mirrors ----------------------------------------------------------------------

F_T = CFUNCTYPE(c_int, c_void_p, c_double, c_void_p, c_void_p)
VJP_T = CFUNCTYPE(c_int, c_void_p, c_double, c_void_p, c_void_p, c_void_p, c_void_p,
                  c_void_p, c_void_p)


class Error(Structure):
    _fields_ = [("status", c_int32), ("reserved0_", c_uint32),
                ("message", c_char * MESSAGE_SIZE), ("reserved_", c_uint64 * 3)]


class System(Structure):
    _fields_ = [("dim", c_size_t), ("nparams", c_size_t), ("ctx", c_void_p),
                ("f", c_void_p), ("vjp", c_void_p), ("reserved_", c_uint64 * 11)]


class Options(Structure):
    _fields_ = [("method", c_int32), ("reserved0_", c_uint32), ("rtol", c_double),
                ("atol", c_double), ("step", c_double), ("max_step", c_double),
                ("max_steps", c_int64), ("adjoint_rtol", c_double),
                ("adjoint_atol", c_double), ("seminorm", c_int32), ("reserved1_", c_uint32),
                ("checkpoints", c_int64), ("record", c_int32), ("reserved2_", c_uint32),
                ("reserved_", c_uint64 * 13)]


class Stats(Structure):
    _fields_ = [("nfe", c_int64), ("nsteps", c_int64), ("naccept", c_int64),
                ("nreject", c_int64), ("t_reached", c_double), ("rows_done", c_int64),
                ("callback_rc", c_int32), ("status", c_int32),
                ("message", c_char * MESSAGE_SIZE), ("reserved_", c_uint64 * 8)]


class OptimConfig(Structure):
    _fields_ = [("kind", c_int32), ("reserved0_", c_uint32), ("lr", c_double),
                ("weight_decay", c_double), ("momentum", c_double), ("dampening", c_double),
                ("nesterov", c_int32), ("reserved1_", c_uint32), ("alpha", c_double),
                ("centered", c_int32), ("reserved2_", c_uint32), ("beta1", c_double),
                ("beta2", c_double), ("eps", c_double), ("amsgrad", c_int32),
                ("reserved3_", c_uint32), ("reserved_", c_uint64 * 12)]


class Sched(Structure):
    _fields_ = [("kind", c_int32), ("reserved0_", c_uint32), ("lr0", c_double),
                ("step_size", c_int64), ("gamma", c_double), ("T", c_int64),
                ("lr_min", c_double), ("reserved_", c_uint64 * 10)]


_MIRRORS = {"node_error": Error, "node_system": System, "node_options": Options,
            "node_stats": Stats, "node_optim_config": OptimConfig, "node_sched": Sched}

# ---- prototypes ------------------------------------------------------------------------------

P = c_void_p          # every array and object pointer travels as an address
S = c_int32           # node_status and the other enums: 32-bit
_PROTOS = {
    "node_abi_sizeof": (c_size_t, [c_char_p]),
    "node_abi_offsetof": (c_size_t, [c_char_p, c_char_p]),
    "node_isa_name": (c_char_p, []),
    "node_strerror": (c_char_p, [S]),
    "node_options_default": (Options, []),
    "node_method_name": (c_char_p, [S]),
    "node_method_parse": (S, [c_char_p, P]),
    "node_odeint": (S, [P, P, P, c_size_t, P, P, P]),
    "node_solver_create": (S, [P]),
    "node_solver_free": (None, [P]),
    "node_solver_odeint": (S, [P, P, P, P, c_size_t, P, P, P]),
    "node_solver_adjoint": (S, [P, P, P, c_size_t, P, P, P, P, P, P, P]),
    "node_solver_backprop": (S, [P, P, P, c_size_t, P, P, P, P, P, P, P]),
    "node_activation_name": (c_char_p, [S]),
    "node_activation_parse": (S, [c_char_p, P]),
    "node_mlp_create_ex": (S, [P, c_size_t, P, P, c_int, P]),
    "node_mlp_free": (None, [P]),
    "node_mlp_nparams": (c_size_t, [P]),
    "node_mlp_params": (P, [P]),
    "node_mlp_nlayers": (c_size_t, [P]),
    "node_mlp_size": (c_size_t, [P, c_size_t]),
    "node_mlp_activation": (S, [P, c_size_t]),
    "node_mlp_time_input": (c_int, [P]),
    "node_mlp_init": (None, [P, c_uint64]),
    "node_mlp_reserve": (S, [P, c_size_t]),
    "node_mlp_forward": (S, [P, c_size_t, c_double, P, P]),
    "node_mlp_vjp": (S, [P, c_size_t, c_double, P, P, P, P, P, P]),
    "node_mlp_system": (S, [P, c_size_t, P]),
    "node_mlp_system_release": (S, [P, P]),
    "node_mlp_save_ex": (S, [P, c_char_p, P]),
    "node_mlp_load_ex": (S, [P, c_char_p, P]),
    "node_loss": (S, [S, c_size_t, P, P, P, c_uint32, P, P, P]),
    "node_optim_name": (c_char_p, [S]),
    "node_optim_parse": (S, [c_char_p, P]),
    "node_optim_defaults": (S, [S, P]),
    "node_optim_create_ex": (S, [P, c_size_t, P, P]),
    "node_optim_free": (None, [P]),
    "node_optim_step": (S, [P, P, P]),
    "node_optim_set_lr": (S, [P, c_double]),
    "node_optim_get_lr": (S, [P, P]),
    "node_optim_get_step": (S, [P, P]),
    "node_optim_reset": (S, [P]),
    "node_clip_grad_norm": (S, [c_size_t, P, c_double, P]),
    "node_sched_lr": (S, [P, c_int64, P]),
    "node_optim_schedule": (S, [P, P, c_int64]),
}


def _bind():
    missing = []
    for name, (res, args) in _PROTOS.items():
        try:
            fn = getattr(lib, name)
        except AttributeError:
            missing.append(name)
            continue
        fn.restype = res
        fn.argtypes = args
    if missing:
        raise LibraryNotFoundError("libnode: %s (libnode %s) lacks %s: not a build of "
                                   "libnode %d.%d" % (library_path, library_version,
                                                      ", ".join(missing), *HEADER_VERSION[:2]))


def _check_abi():
    bad = []
    for cname, cls in _MIRRORS.items():
        size = lib.node_abi_sizeof(cname.encode())
        if size != ctypes.sizeof(cls):
            bad.append("sizeof(%s) = %d in the library, %d here" % (cname, size, ctypes.sizeof(cls)))
            continue
        for fname, _ in cls._fields_:
            off = lib.node_abi_offsetof(cname.encode(), fname.encode())
            if off == ctypes.c_size_t(-1).value:
                continue   # padding names (reserved0_ ...) are not in the library's table
            if off != getattr(cls, fname).offset:
                bad.append("offsetof(%s, %s) = %d in the library, %d here"
                           % (cname, fname, off, getattr(cls, fname).offset))
    if bad:
        raise LibraryNotFoundError(
            "libnode: the struct layouts of %s (libnode %s) differ from this Python "
            "package's: %s. The library and the package come from different libnode "
            "versions (or the library was built with unusual flags)"
            % (library_path, library_version, "; ".join(bad)))


_bind()
_check_abi()


def addr(a):
    """The data address of a numpy array (None for None)."""
    return None if a is None else a.ctypes.data
