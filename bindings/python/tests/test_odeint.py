"""Solutions against closed forms, gradients against central finite differences,
statistics, options and method names."""
import math

import numpy as np
import pytest

import libnode


def test_exponential_decay_closed_form():
    t = np.linspace(0.0, 2.0, 7)
    y0 = np.array([1.0, -3.0, 0.5])
    ys = libnode.odeint(lambda t, y: -0.7 * y, y0, t)
    assert ys.shape == (7, 3)
    assert np.allclose(ys, np.exp(-0.7 * t)[:, None] * y0, rtol=1e-6, atol=1e-9)


def test_harmonic_oscillator_every_method_and_2d_state():
    # y'' = -y as a 2 x 2 state (two oscillators): y = cos t, y' = -sin t
    t = np.linspace(0.0, 3.0, 4)
    y0 = np.array([[1.0, 0.0], [0.0, 1.0]])

    def f(t, y):
        return np.stack([y[:, 1], -y[:, 0]], axis=1)
    exact = np.stack([np.stack([np.cos(t), -np.sin(t)], 1), np.stack([np.sin(t), np.cos(t)], 1)], 1)
    for method, tol in (("dopri5", 1e-6), ("dop853", 1e-6), ("bosh3", 1e-5), ("rk4", 1e-4),
                        ("dopri8", 1e-6), ("rk45", 1e-6)):
        opts = {"step_size": 0.01} if method == "rk4" else None
        ys = libnode.odeint(f, y0, t, method=method, options=opts)
        assert ys.shape == (4, 2, 2)
        assert np.allclose(ys, exact, atol=tol), method


def test_time_dependent_and_backward_in_time():
    # y' = 2t y → y = y0 exp(t^2); backward from t = 1 to 0
    t = np.array([1.0, 0.5, 0.0])
    ys = libnode.odeint(lambda t, y: 2 * t * y, [math.e], t)
    assert np.allclose(ys[:, 0], np.exp(t ** 2), rtol=1e-6)


def test_fixed_step_defaults_to_the_grid_of_t():
    # euler on y' = y with step = spacing of t: y_n = (1 + h)^n exactly
    t = np.linspace(0.0, 1.0, 11)
    ys = libnode.odeint(lambda t, y: y, [1.0], t, method="euler")
    assert np.allclose(ys[:, 0], 1.1 ** np.arange(11), rtol=1e-12)


def test_stats_on_request():
    ys, st = libnode.odeint(lambda t, y: -y, [1.0], [0.0, 1.0], return_stats=True)
    assert isinstance(st, libnode.Stats)
    assert st.nfe > 0 and st.naccept > 0 and st.nsteps == st.naccept + st.nreject
    assert st.t_reached == 1.0 and st.rows_done == 2 and st.message == ""


def test_list_inputs_and_ints_convert():
    ys = libnode.odeint(lambda t, y: np.zeros(2), [1, 2], [0, 1])
    assert ys.dtype == np.float64 and np.array_equal(ys, [[1, 2], [1, 2]])


# ---- gradients -------------------------------------------------------------------------------

def _linear_problem():
    """dy/dt = A y with A = θ reshaped 2x2; L = Σ_i w_i · y(t_i)."""
    theta = np.array([-0.3, 1.1, -0.9, -0.2])
    t = np.array([0.0, 0.4, 1.0, 1.5])
    y0 = np.array([1.0, -0.5])
    w = np.random.default_rng(3).normal(size=(4, 2))

    def make(theta):
        A = theta.reshape(2, 2)

        def f(t, y):
            return A @ y

        def vjp(t, y, a):
            return A.T @ a, np.outer(a, y).ravel()
        return f, vjp

    def loss(theta_, y0_, t_):
        f, _ = make(theta_)
        return float(np.sum(w * libnode.odeint(f, y0_, t_, rtol=1e-11, atol=1e-12)))
    return theta, t, y0, w, make, loss


def _fd(fun, x, h=1e-6):
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e.flat[i] = h
        g.flat[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return g


@pytest.mark.parametrize("which", ["adjoint", "backprop"])
def test_gradients_against_finite_differences(which):
    theta, t, y0, w, make, loss = _linear_problem()
    f, vjp = make(theta)
    grad = getattr(libnode, "odeint_" + which)
    g = grad(f, y0, t, w, vjp=vjp, params=theta, rtol=1e-11, atol=1e-12)
    assert g.y0.shape == (2,) and g.params.shape == (4,) and g.t.shape == (4,)
    assert np.allclose(g.y0, _fd(lambda y: loss(theta, y, t), y0), rtol=1e-5, atol=1e-7)
    assert np.allclose(g.params, _fd(lambda p: loss(p, y0, t), theta), rtol=1e-5, atol=1e-7)
    assert np.allclose(g.t, _fd(lambda s: loss(theta, y0, s), t), rtol=1e-5, atol=1e-6)
    # the same with ys given (no forward solve), and without params
    ys = libnode.odeint(f, y0, t, rtol=1e-11, atol=1e-12)
    g2 = grad(f, y0, t, w, vjp=vjp, ys=ys, rtol=1e-11, atol=1e-12)
    assert g2.params is None and np.allclose(g2.y0, g.y0, rtol=1e-8)


def test_mlp_ode_gradients_against_finite_differences():
    m = libnode.MLP([2, 8, 2], "tanh", time_input=True, seed=4)
    y0 = np.array([[0.5, -0.2], [1.0, 0.3], [-0.4, 0.8]])     # a batch of 3
    t = np.linspace(0.0, 1.0, 5)
    w = np.random.default_rng(1).normal(size=(5, 3, 2))

    def loss():
        return float(np.sum(w * libnode.odeint(m, y0, t, rtol=1e-11, atol=1e-12)))
    for which in ("adjoint", "backprop"):
        g = getattr(libnode, "odeint_" + which)(m, y0, t, w, rtol=1e-11, atol=1e-12)
        assert g.params.shape == (m.nparams,) and g.y0.shape == y0.shape
        theta0 = m.params.copy()
        fd = np.empty(m.nparams)
        for i in range(0, m.nparams, 7):    # every 7th parameter keeps it fast
            m.params[i] = theta0[i] + 1e-6
            lp = loss()
            m.params[i] = theta0[i] - 1e-6
            fd[i] = (lp - loss()) / 2e-6
            m.params[i] = theta0[i]
        idx = np.arange(0, m.nparams, 7)
        assert np.allclose(g.params[idx], fd[idx], rtol=1e-5, atol=1e-7), which


def test_seminorm_and_adjoint_tolerances_accepted():
    theta, t, y0, w, make, _ = _linear_problem()
    f, vjp = make(theta)
    g, st = libnode.odeint_adjoint(f, y0, t, w, vjp=vjp, params=theta,
                                   adjoint_options={"norm": "seminorm"}, adjoint_rtol=1e-9,
                                   adjoint_atol=1e-10, return_stats=True)
    assert st.nfe > 0 and np.all(np.isfinite(g.params))


def test_vjp_with_time_term():
    # y' = t·θ (θ scalar): y(t1) = y0 + θ t1²/2; dL/dt1 = θ t1, dL/dθ = t1²/2, L = y(t1)
    th = np.array([0.8])
    g = libnode.odeint_adjoint(lambda t, y: t * th, [0.0], [0.0, 2.0], [[0.0], [1.0]],
                               vjp=lambda t, y, a: (np.zeros(1), a * t, a[0] * th[0]),
                               params=th, rtol=1e-10, atol=1e-12)
    assert np.allclose(g.params, [2.0]) and np.allclose(g.t[1], 1.6) and np.allclose(g.y0, [1.0])


def test_checkpointed_backprop_equals_plain_backprop():
    # options['checkpoints'] = N keeps at most N states and recomputes segments: the
    # gradient is plain backprop's, bit for bit in the library (to round-off here)
    theta, t, y0, w, make, _ = _linear_problem()
    f, vjp = make(theta)
    g = libnode.odeint_backprop(f, y0, t, w, vjp=vjp, params=theta, rtol=1e-9, atol=1e-10)
    for n in (1, 3, 1000):
        gc = libnode.odeint_backprop(f, y0, t, w, vjp=vjp, params=theta, rtol=1e-9, atol=1e-10,
                                     options={"checkpoints": n})
        assert np.allclose(gc.params, g.params, rtol=1e-12, atol=0)
        assert np.allclose(gc.y0, g.y0, rtol=1e-12, atol=0)
    with pytest.raises(libnode.InvalidArgumentError, match="checkpoints"):
        libnode.odeint_backprop(f, y0, t, w, vjp=vjp, params=theta, options={"checkpoints": -1})
