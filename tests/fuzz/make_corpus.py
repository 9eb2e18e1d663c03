#!/usr/bin/env python3
"""make_corpus.py — write the seed corpus of MLP model files (tests/fuzz/corpus/).

An independent implementation of the format described at the top of src/nn/io.c,
so the corpus also cross-checks the C writer and reader: files named valid_* must
load, files named invalid_* must be rejected with NODE_EFORMAT (tests/test_mlp_io.c).
Run from anywhere: python3 tests/fuzz/make_corpus.py
"""
import os
import struct
import zlib

MAGIC = b"LIBNODE\x1a"
ACTS = ["identity", "tanh", "relu", "softplus", "sigmoid", "elu", "silu"]   # codes 0..6
NOT_AN_ACTIVATION = 0xBAD0   # far from any code an activation will ever get


def model(sizes, acts, time_input, params=None, version=1, flags=None, crc_ok=True):
    L = len(acts)
    n = 0
    for k in range(L):
        n += (sizes[k] + (time_input if k == 0 else 0) + 1) * sizes[k + 1]
    if params is None:
        params = [((i * 7919) % 201 - 100) / 128.0 for i in range(n)]
    f = flags if flags is not None else (1 if time_input else 0)
    b = MAGIC + struct.pack("<III", version, f, L)
    b += b"".join(struct.pack("<Q", s) for s in sizes)
    b += b"".join(struct.pack("<I", a) for a in acts)
    b += b"".join(p if isinstance(p, bytes) else struct.pack("<d", p) for p in params)
    crc = zlib.crc32(b) & 0xFFFFFFFF
    return b + struct.pack("<I", crc if crc_ok else crc ^ 1)


def with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body) & 0xFFFFFFFF)


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
    os.makedirs(out, exist_ok=True)
    files = {}
    files["valid_spiral_2-50-2_tanh.mlp"] = model([2, 50, 2], [1, 0], 0)
    special = [struct.pack("<Q", 0x7FF8DEADBEEF0001), struct.pack("<d", -0.0),
               struct.pack("<d", float("inf")), struct.pack("<Q", 1)]   # NaN payload, -0, inf, subnormal
    p = special + [0.25] * ((3 + 1 + 1) * 4 + (4 + 1) * 3 + (3 + 1) * 3 - 4)
    files["valid_time_3layers_special_values.mlp"] = model([3, 4, 3, 3], [2, 6, 0], 1, p)
    files["valid_1layer_identity.mlp"] = model([1, 1], [0], 0, [2.0, -1.0])
    files["valid_every_activation.mlp"] = model([2, 2, 2, 2, 2, 2, 2, 2], list(range(7)), 1)
    # deeper than the parser's pieces (32 sizes, 64 activations at a time) and its
    # stack arrays (8 layers)
    files["valid_deep_70_layers.mlp"] = model([2] * 71, [k % 7 for k in range(70)], 1)

    good = model([2, 3, 2], [1, 0], 0)
    files["invalid_empty.mlp"] = b""
    files["invalid_magic.mlp"] = b"LIBNODF\x1a" + good[8:]
    files["invalid_version_2.mlp"] = model([2, 3, 2], [1, 0], 0, version=2)
    files["invalid_flags.mlp"] = model([2, 3, 2], [1, 0], 0, flags=2)
    files["invalid_activation_0xbad0.mlp"] = model([2, 3, 2], [1, NOT_AN_ACTIVATION], 0)
    files["invalid_checksum.mlp"] = model([2, 3, 2], [1, 0], 0, crc_ok=False)
    files["invalid_truncated.mlp"] = good[:len(good) // 2]
    files["invalid_trailing_byte.mlp"] = with_crc(good[:-4] + b"\0")
    files["invalid_zero_layers.mlp"] = with_crc(MAGIC + struct.pack("<III", 1, 0, 0) + b"\0" * 16)
    # sizes that would need 2^61 parameters, with a correct checksum
    huge = MAGIC + struct.pack("<III", 1, 0, 1) + struct.pack("<QQ", 1 << 30, 1 << 31)
    files["invalid_absurd_sizes.mlp"] = with_crc(huge + struct.pack("<I", 1) + b"\0" * 64)
    files["invalid_zero_size.mlp"] = model([2, 0, 2], [1, 0], 0)
    files["invalid_activation_in_layer_66.mlp"] = model([2] * 71, [k % 7 if k != 66 else NOT_AN_ACTIVATION for k in range(70)], 1)
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
