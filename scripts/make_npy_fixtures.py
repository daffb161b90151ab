#!/usr/bin/python3
"""Writes the .npy fixtures of tests/frontends/test_npy.c into tests/data/npy/ with numpy.

Run with /usr/bin/python3 (it has numpy): /usr/bin/python3 scripts/make_npy_fixtures.py
Every array has a simple closed form the C test recomputes: value(i) for flat index i.
"""
import os
import struct

import numpy as np

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "npy")


def save(name, arr, version=None):
    path = os.path.join(OUT, name)
    with open(path, "wb") as f:
        np.lib.format.write_array(f, arr, version=version, allow_pickle=False)


def raw(name, header, data):
    """A version 1.0 file with a hand-written header dict (padded like numpy does)."""
    hl = len(header) + 1
    pad = (64 - (10 + hl) % 64) % 64
    h = header.encode("latin1") + b" " * pad + b"\n"
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h + data)


def main():
    os.makedirs(OUT, exist_ok=True)
    # value(i) = i - 3 for signed/float types, i for unsigned, i % 2 for bool; shape (2, 3)
    idx = np.arange(6)
    for code in ["f4", "f8", "f2", "i1", "i2", "i4", "i8"]:
        save("%s.npy" % code, (idx - 3).astype("<" + code).reshape(2, 3))
    for code in ["u1", "u2", "u4", "u8"]:
        save("%s.npy" % code, idx.astype("<" + code).reshape(2, 3))
    save("b1.npy", (idx % 2).astype(bool).reshape(2, 3))
    # versions 2.0 and 3.0 of a 3-d f32 array value(i) = i * 0.5
    a = (np.arange(24, dtype="<f4") * 0.5).reshape(2, 3, 4)
    save("v2.npy", a, version=(2, 0))
    save("v3.npy", a, version=(3, 0))
    save("scalar.npy", np.array(2.5, dtype="<f8"))
    save("empty.npy", np.zeros((0, 3), dtype="<i4"))
    save("vector.npy", np.arange(5, dtype="<i8"))
    # special float values
    save("special_f4.npy", np.array([np.inf, -np.inf, np.nan, -0.0, 1e-45, 3.4028235e38],
                                    dtype="<f4"))
    # unsupported: big-endian, fortran order, complex
    save("big_endian.npy", (idx - 3).astype(">i4").reshape(2, 3))
    save("fortran.npy", np.asfortranarray((idx - 3).astype("<f4").reshape(2, 3)))
    save("complex.npy", np.zeros(3, dtype="<c8"))
    # hand-written headers: other key order and spacing, double quotes, no trailing comma
    data = (idx - 3).astype("<f4").tobytes()
    raw("reordered.npy", "{ 'shape':(2,3) ,\"fortran_order\" :False,'descr':'<f4'}", data)
    # data shorter than the shape says (numpy itself refuses to load it)
    raw("short_data.npy", "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
        data[:20])


if __name__ == "__main__":
    main()
