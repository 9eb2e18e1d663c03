"""Error paths: the library's messages in per-status exceptions, shapes and dtypes
refused before any C call, exceptions inside callbacks re-raised as themselves."""
import os
import traceback

import numpy as np
import pytest

import libnode


def test_status_classes():
    assert issubclass(libnode.InvalidArgumentError, ValueError)
    assert issubclass(libnode.FileIOError, OSError)
    for cls in (libnode.InvalidArgumentError, libnode.MaxStepsError, libnode.StepSizeError,
                libnode.NonFiniteError, libnode.CallbackError, libnode.FormatError):
        assert issubclass(cls, libnode.NodeError)
    assert "argument" in libnode.strerror(1).lower()


def test_library_message_for_non_monotone_times():
    with pytest.raises(libnode.InvalidArgumentError, match=r"ts\[2\].*strictly") as e:
        libnode.odeint(lambda t, y: -y, [1.0], [0.0, 1.0, 1.0])
    assert e.value.status == 1 and e.value.stats is not None


def test_max_steps_and_nonfinite():
    with pytest.raises(libnode.MaxStepsError, match="max_steps = 5") as e:
        libnode.odeint(lambda t, y: -y, [1.0], [0.0, 100.0], options={"max_num_steps": 5})
    assert e.value.stats.nsteps == 5 and 0 < e.value.stats.t_reached < 100
    with pytest.raises((libnode.NonFiniteError, libnode.StepSizeError)):
        libnode.odeint(lambda t, y: y * y, [1.0], [0.0, 2.0])    # blows up at t = 1


@pytest.mark.parametrize("kwargs,match", [
    (dict(y0=np.array([1.0 + 1j])), "dtype complex"),
    (dict(y0=np.array(["a"])), "dtype <U1"),
    (dict(y0=np.zeros(0)), "y0 is empty"),
    (dict(t=1.0), "t is a scalar"),
    (dict(t=np.zeros((2, 2))), "shape"),
    (dict(method="fehlberg2"), "nearest here is 'bosh3'"),
    (dict(method="nope"), "unknown method 'nope'"),
    (dict(options={"stepsize": 0.1}), "options\\['stepsize'\\]"),
])
def test_bad_arguments_refused_before_any_call(kwargs, match):
    calls = []

    def f(t, y):
        calls.append(t)
        return -y
    args = dict(func=f, y0=np.array([1.0]), t=np.array([0.0, 1.0]))
    args.update(kwargs)
    with pytest.raises(libnode.InvalidArgumentError, match=match):
        libnode.odeint(**args)
    assert calls == []


def test_func_returning_a_wrong_shape():
    with pytest.raises(libnode.InvalidArgumentError, match=r"func returned shape \(3,\)"):
        libnode.odeint(lambda t, y: np.zeros(3), [1.0, 2.0], [0.0, 1.0])


def test_gradient_argument_checks():
    f = lambda t, y: -y                                                 # noqa: E731
    with pytest.raises(libnode.InvalidArgumentError, match="vjp is required"):
        libnode.odeint_adjoint(f, [1.0], [0.0, 1.0], np.ones((2, 1)))
    with pytest.raises(libnode.InvalidArgumentError, match=r"grad_y has shape \(2,\)"):
        libnode.odeint_adjoint(f, [1.0], [0.0, 1.0], np.ones(2), vjp=lambda t, y, a: (-a, None))
    m = libnode.MLP([2, 4, 2])
    with pytest.raises(libnode.InvalidArgumentError, match="brings its own"):
        libnode.odeint_adjoint(m, [[1.0, 2.0]], [0.0, 1.0], np.ones((2, 1, 2)), vjp=f)
    with pytest.raises(libnode.InvalidArgumentError, match=r"y0 has shape \(3,\)"):
        libnode.odeint(m, [1.0, 2.0, 3.0], [0.0, 1.0])


class Boom(RuntimeError):
    pass


def _explode(t, y):
    if t > 0.3:
        raise Boom("at t = %g" % t)
    return -y


def test_callback_exception_is_reraised_with_its_traceback():
    with pytest.raises(Boom) as e:
        libnode.odeint(_explode, [1.0], [0.0, 1.0])
    frames = [f.name for f in traceback.extract_tb(e.value.__traceback__)]
    assert "_explode" in frames                      # the frame that raised is kept
    assert frames.index("_explode") > frames.index("odeint")
    # the solver is usable again afterwards
    assert np.allclose(libnode.odeint(lambda t, y: -y, [1.0], [0.0, 1.0])[-1], np.exp(-1))


def test_exception_in_vjp_and_keyboard_interrupt():
    def vjp(t, y, a):
        raise KeyError("in vjp")
    with pytest.raises(KeyError, match="in vjp"):
        libnode.odeint_adjoint(lambda t, y: -y, [1.0], [0.0, 1.0], [[0.0], [1.0]], vjp=vjp)

    def f(t, y):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        libnode.odeint(f, [1.0], [0.0, 1.0])


def test_nested_solve_inside_a_callback():
    # a callback may call libnode itself (it gets a solver of its own)
    def f(t, y):
        inner = libnode.odeint(lambda s, z: -z, [1.0], [0.0, 1.0])[-1, 0]
        return -inner * y
    ys = libnode.odeint(f, [1.0], [0.0, 1.0])
    assert np.allclose(ys[-1], np.exp(-np.exp(-1)), rtol=1e-6)


def test_y_is_read_only_in_callbacks():
    def f(t, y):
        y[0] = 5.0
        return y
    with pytest.raises(ValueError, match="read-only"):
        libnode.odeint(f, [1.0], [0.0, 1.0])


def test_library_not_found_says_what_to_do(tmp_path):
    import subprocess
    import sys
    pkg = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    env = dict(os.environ, LIBNODE_LIBRARY=str(tmp_path / "libnode_ode.so"), PYTHONPATH=pkg)
    r = subprocess.run([sys.executable, "-c", "import libnode"], env=env, capture_output=True,
                       text=True)
    assert r.returncode != 0
    assert "LibraryNotFoundError" in r.stderr and "LIBNODE_LIBRARY" in r.stderr
    assert str(tmp_path) in r.stderr
    bogus = tmp_path / "libnode_ode.so"
    bogus.write_text("not a library")
    r = subprocess.run([sys.executable, "-c", "import libnode"], env=env, capture_output=True,
                       text=True)
    assert r.returncode != 0 and "LibraryNotFoundError" in r.stderr
