"""MLP (params view, forward, vjp against finite differences, save/load), losses,
optimizers (closed forms), schedules."""
import os

import numpy as np
import pytest

import libnode


def test_params_view_and_forward_closed_form():
    m = libnode.MLP([3, 2], ["identity"], seed=None)
    assert m.nparams == 8 and np.all(m.params == 0)
    W = np.arange(6.0).reshape(2, 3)
    b = np.array([0.5, -1.0])
    m.params[:6] = W.ravel()     # writes reach the C model
    m.params[6:] = b
    x = np.array([[1.0, 2.0, -1.0], [0.0, 0.5, 2.0]])
    assert np.allclose(m.forward(x), x @ W.T + b)
    m2 = libnode.MLP([3, 4, 2], "tanh", time_input=True, seed=7)
    assert m2.activations == ("tanh", "identity") and m2.time_input
    assert m2.nparams == 4 * 4 + 4 + 2 * 4 + 2
    assert libnode.MLP([3, 4, 2], "tanh", time_input=True, seed=7).params.tolist() == m2.params.tolist()
    out = np.empty((2, 2))
    assert m2.forward(x, 0.3, out=out) is out


def test_vjp_against_finite_differences():
    m = libnode.MLP([3, 5, 2], ["softplus", "tanh"], time_input=True, seed=2)
    rng = np.random.default_rng(0)
    x, a, t = rng.normal(size=(4, 3)), rng.normal(size=(4, 2)), 0.7
    y, gx, gp, gt = m.vjp(x, a, t)
    assert np.allclose(y, m.forward(x, t))
    L = lambda: float(np.sum(a * m.forward(x, t)))     # noqa: E731
    h = 1e-6
    for i in range(x.size):
        x.flat[i] += h; lp = L(); x.flat[i] -= 2 * h; lm = L(); x.flat[i] += h   # noqa: E702
        assert abs(gx.flat[i] - (lp - lm) / (2 * h)) < 1e-7
    for i in range(m.nparams):
        m.params[i] += h; lp = L(); m.params[i] -= 2 * h; lm = L(); m.params[i] += h  # noqa: E702
        assert abs(gp[i] - (lp - lm) / (2 * h)) < 1e-7
    fd_t = (np.sum(a * m.forward(x, t + h)) - np.sum(a * m.forward(x, t - h))) / (2 * h)
    assert abs(gt - fd_t) < 1e-7


def test_save_load_round_trip_and_bad_files(tmp_path):
    m = libnode.MLP([2, 6, 2], ["relu", "identity"], seed=3)
    p = tmp_path / "m.model"
    m.save(p)
    m2 = libnode.MLP.load(str(p))
    assert m2.sizes == (2, 6, 2) and m2.activations == ("relu", "identity")
    assert np.array_equal(m2.params, m.params)
    x = np.random.default_rng(0).normal(size=(5, 2))
    assert np.array_equal(m2.forward(x), m.forward(x))
    data = bytearray(p.read_bytes())
    data[-1] ^= 0xFF
    bad = tmp_path / "bad.model"
    bad.write_bytes(bytes(data))
    with pytest.raises(libnode.FormatError, match="checksum"):
        libnode.MLP.load(bad)
    with pytest.raises(libnode.FileIOError, match="No such file"):
        libnode.MLP.load(tmp_path / "missing.model")
    with pytest.raises(libnode.FileIOError):
        m.save(tmp_path / "no" / "such" / "dir" / "m.model")


def test_mlp_argument_errors():
    with pytest.raises(libnode.InvalidArgumentError, match="unknown activation 'tan'"):
        libnode.MLP([2, 2], ["tan"])
    with pytest.raises(libnode.InvalidArgumentError, match="2 activations for 1 layers"):
        libnode.MLP([2, 2], ["tanh", "tanh"])
    m = libnode.MLP([2, 3])
    with pytest.raises(libnode.InvalidArgumentError, match=r"x has shape \(4,\)"):
        m.forward(np.zeros(4))
    with pytest.raises(libnode.InvalidArgumentError, match="as many outputs as inputs"):
        libnode.odeint(m, [1.0, 2.0], [0.0, 1.0])


def test_losses_closed_form():
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    q = np.array([[0.0, 2.0], [5.0, 3.0]])
    loss, g = libnode.mse_loss(p, q)
    assert np.isclose(loss, (1 + 0 + 4 + 1) / 4) and np.allclose(g, 2 * (p - q) / 4)
    loss, g = libnode.mae_loss(p, q, mask=[[1, 0], [1, 1]])
    assert np.isclose(loss, (1 + 2 + 1) / 3) and np.allclose(g, [[1 / 3, 0], [-1 / 3, 1 / 3]])
    q2 = q.copy()
    q2[0, 0] = np.nan
    loss, _ = libnode.mse_loss(p, q2, nan_missing=True)
    assert np.isclose(loss, (0 + 4 + 1) / 3)
    with pytest.raises(libnode.InvalidArgumentError, match=r"target\[0\] = nan"):
        libnode.mse_loss(p, q2)
    with pytest.raises(libnode.InvalidArgumentError, match="shape"):
        libnode.mse_loss(p, q[0])


def test_optimizers_closed_form():
    # SGD: θ ← θ - lr g
    th = np.array([1.0, -2.0])
    o = libnode.SGD(th, lr=0.1)
    o.step([1.0, 1.0])
    assert np.allclose(th, [0.9, -2.1]) and o.steps == 1
    # Adam's first step moves every entry by lr (m̂ = g, v̂ = g²): θ - lr·sign(g)
    th = np.array([1.0, -2.0, 0.5])
    o = libnode.Adam(th, lr=0.01, betas=(0.9, 0.999), eps=0.0)
    o.step(np.array([3.0, -0.5, 1e-3]))
    assert np.allclose(th, [0.99, -1.99, 0.49])
    o.lr = 0.5
    assert o.lr == 0.5
    with pytest.raises(libnode.NonFiniteError):
        o.step([np.nan, 0, 0])
    assert np.allclose(th, [0.99, -1.99, 0.49]) and o.steps == 1   # nothing changed
    with pytest.raises(libnode.InvalidArgumentError, match="beta1"):
        libnode.Adam(np.zeros(2), betas=(1.0, 0.9))
    with pytest.raises(libnode.InvalidArgumentError, match="no hyper-parameter 'momentum'"):
        libnode.Adam(np.zeros(2), momentum=0.9)
    with pytest.raises(libnode.InvalidArgumentError, match="writable C-contiguous float64"):
        libnode.Adam([1.0, 2.0])
    g = np.array([3.0, 4.0])
    assert libnode.clip_grad_norm(g, 1.0) == 5.0 and np.allclose(g, [0.6, 0.8], rtol=1e-5)


def test_schedules():
    s = libnode.Schedule("step", 1.0, step_size=10, gamma=0.5)
    assert s.lr(0) == 1.0 and s.lr(25) == 0.25
    c = libnode.Schedule("cosine", 1.0, T=10, lr_min=0.0)
    assert np.isclose(c.lr(5), 0.5) and np.isclose(c.lr(10), 0.0)
    o = libnode.RMSprop(np.zeros(3))
    o.schedule(s, 10)
    assert o.lr == 0.5
    with pytest.raises(libnode.InvalidArgumentError):
        libnode.Schedule("step", 1.0, step_size=0)
