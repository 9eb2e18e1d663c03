#!/usr/bin/env python3
"""make_net_corpus.py — write the seed corpus of network files (tests/fuzz/corpus/net_*).

An independent implementation of the format described at the top of src/net/io.c
(shapes and parameter counts computed here from the layer definitions of net.h), so
the corpus also cross-checks the C writer and reader: files named net_valid_* must
load and save back to the same bytes, files named net_invalid_* must be rejected
with NODE_EFORMAT (tests/test_net_files.c).
Run from anywhere: python3 tests/fuzz/make_net_corpus.py
"""
import os
import struct
import zlib

MAGIC = b"NODENET\x1a"
DENSE, CONV, GN, ACT, POOL, FLAT, RES = range(1, 8)
IDENTITY, TANH, RELU, SOFTPLUS, SIGMOID, ELU, SILU = range(7)


def plan(shape, layer):
    """(output shape, parameters) of one layer on a c x h x w sample."""
    c, h, w = shape
    kind, bias, time, v = layer
    if kind == DENSE:
        return (v[0], 1, 1), (c * h * w + time + bias) * v[0]
    if kind == CONV:
        oc, kh, kw, s, p = v
        return (oc, (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1), ((c + time) * kh * kw + bias) * oc
    if kind == GN:
        return shape, 2 * c
    if kind == RES:
        return shape, 18 * c * c + 4 * c
    if kind == POOL:
        return (c, 1, 1), 0
    if kind == FLAT:
        return (c * h * w, 1, 1), 0
    return shape, 0


def net(shape, layers, params=None, nparams=None):
    b = struct.pack("<QQQQ", *shape, len(layers))
    s, n = shape, 0
    for kind, bias, time, v in layers:
        v = list(v) + [0] * (5 - len(v))
        b += struct.pack("<II5Q", kind, bias | (time << 1), *v)
        s, np_ = plan(s, (kind, bias, time, v))
        n += np_
    if params is None:
        params = [((i * 7919) % 201 - 100) / 128.0 for i in range(n)]
    b += struct.pack("<Q", n if nparams is None else nparams)
    b += b"".join(p if isinstance(p, bytes) else struct.pack("<d", p) for p in params)
    return b


def file(nets, version=1, flags=0, k=None, crc_ok=True):
    b = MAGIC + struct.pack("<IIQ", version, flags, len(nets) if k is None else k) + b"".join(nets)
    crc = zlib.crc32(b) & 0xFFFFFFFF
    return b + struct.pack("<I", crc if crc_ok else crc ^ 1)


def with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    # the ODE-Net's three networks in small: downsampling, the ODE block, the head
    down = net((1, 8, 8), [(CONV, 1, 0, [4, 3, 3, 1, 0]), (GN, 0, 0, [2]), (ACT, 0, 0, [RELU]),
                           (CONV, 1, 0, [4, 4, 4, 2, 1])])
    ode = net((4, 3, 3), [(GN, 0, 0, [2]), (ACT, 0, 0, [RELU]), (CONV, 0, 1, [4, 3, 3, 1, 1]),
                          (GN, 0, 0, [2]), (ACT, 0, 0, [RELU]), (CONV, 0, 1, [4, 3, 3, 1, 1]),
                          (GN, 0, 0, [2])])
    head = net((4, 3, 3), [(GN, 0, 0, [2]), (ACT, 0, 0, [RELU]), (POOL, 0, 0, []), (FLAT, 0, 0, []),
                           (DENSE, 1, 0, [10])])
    files = {}
    files["net_valid_odenet_3_networks.net"] = file([down, ode, head])
    files["net_valid_resblocks.net"] = file([net((4, 5, 3), [(RES, 0, 0, [2]), (RES, 0, 0, [4]),
                                                            (CONV, 1, 1, [2, 4, 4, 2, 1])])])
    files["net_valid_every_activation.net"] = file([net((2, 3, 1), [(DENSE, 1, 1, [3])] +
                                                       [(ACT, 0, 0, [a]) for a in range(7)] +
                                                       [(DENSE, 0, 0, [2]), (DENSE, 1, 0, [2])])])
    special = [struct.pack("<Q", 0x7FF8DEADBEEF0001), struct.pack("<d", -0.0),
               struct.pack("<d", float("inf")), struct.pack("<Q", 1)]   # NaN payload, -0, inf, subnormal
    files["net_valid_special_values.net"] = file([net((1, 1, 1), [(DENSE, 1, 0, [2])], special[:3] + [0.5]),
                                                  net((1, 1, 1), [(DENSE, 0, 1, [2])], [special[3], 1.0, 2.0, 3.0])])
    files["net_valid_no_layers.net"] = file([net((3, 2, 2), [])])

    good = [net((2, 4, 4), [(CONV, 1, 1, [3, 3, 3, 1, 1]), (ACT, 0, 0, [TANH])])]
    g = file(good)
    files["net_invalid_empty.net"] = b""
    files["net_invalid_magic.net"] = b"NODENEU\x1a" + g[8:]
    files["net_invalid_version_2.net"] = file(good, version=2)
    files["net_invalid_flags.net"] = file(good, flags=1)
    files["net_invalid_zero_networks.net"] = file([], k=0)
    files["net_invalid_too_many_networks.net"] = file(good * 3, k=1000)
    files["net_invalid_checksum.net"] = file(good, crc_ok=False)
    files["net_invalid_truncated.net"] = g[:len(g) // 2]
    files["net_invalid_trailing_byte.net"] = with_crc(g[:-4] + b"\0")
    files["net_invalid_zero_channels.net"] = file([net((0, 4, 4), [])])
    files["net_invalid_unknown_kind.net"] = file([net((2, 4, 4), [(9, 0, 0, [1])])])
    files["net_invalid_groupnorm_with_bias_flag.net"] = file([net((2, 4, 4), [(GN, 1, 0, [2])])])
    files["net_invalid_unused_field.net"] = file([net((2, 4, 4), [(GN, 0, 0, [2, 1])])])
    files["net_invalid_kernel_too_large.net"] = file([net((2, 4, 4), [(CONV, 1, 0, [3, 7, 3, 1, 1])], params=[])])
    files["net_invalid_groups.net"] = file([net((6, 2, 2), [(GN, 0, 0, [4])], params=[])])
    files["net_invalid_activation.net"] = file([net((2, 1, 1), [(ACT, 0, 0, [0xBAD0])])])
    files["net_invalid_param_count.net"] = file([net((2, 1, 1), [(DENSE, 1, 0, [2])], nparams=5)])
    files["net_invalid_absurd_layers.net"] = with_crc(MAGIC + struct.pack("<IIQ", 1, 0, 1) +
                                                      struct.pack("<QQQQ", 1, 1, 1, 1 << 60))
    files["net_invalid_absurd_dense.net"] = file([net((1 << 20, 1, 1), [(DENSE, 1, 0, [1 << 24])], params=[])])
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
