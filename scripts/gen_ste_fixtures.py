#!/usr/bin/python3
"""Writes the fixtures of tests/backends/test_ste.c (FakeQuantGrad, SPEC 7) into tests/data/ste/.

Run with /usr/bin/python3 (it has torch and numpy): /usr/bin/python3 scripts/gen_ste_fixtures.py
The gradients come from PyTorch autograd: a torch.autograd.Function per SPEC 7 (forward
v = w / s, q = clamp(rne(v), -Qn, Qp), w_hat = q s; backward standard / clipped / lsq / ewgs) on the
FakeQuant weight view, with the step s = a * PI_OVER_K[k] (f32) built by autograd from the scale
word a so that dL/da = dL/ds * pi/k comes from the chain rule. LSQ is also checked here against
torch._fake_quantize_learnable_per_tensor_affine on per-tensor cases away from rounding ties and the
clip bands (it multiplies by 1/s), and those results are written too.

Per case NAME: NAME_w.npy (f32, the weight in its stored layout), NAME_scales.npy (f16 scale words
[B*R, ngroups], or f32 [B*R] for int8), NAME_g.npy (f32 dL/dw_hat, w's shape),
NAME_dw_<ste>.npy (f32) for every ste, NAME_da_lsq.npy (f32 dL/da, the scales' shape).
Builtin cross-check cases add NAME_dw_builtin.npy and NAME_da_builtin.npy.
The case table (name, format, qgroup, transposed, stored shape) is repeated in test_ste.c.
"""
import math
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "ste")
PQ_PI = math.pi
DELTA = 0.1
STES = ("standard", "clipped", "lsq", "ewgs")

# name, format, qgroup, transposed, stored shape
CASES = (
    ("piq3_g8", "piq3", 8, False, (5, 21)),  # partial last group of 5
    ("piq2_tr", "piq2", 8, True, (2, 20, 6)),  # batch 2 of [K=20, N=6], partial group of 4
    ("q3_g16", "q3", 16, False, (4, 3, 7)),  # conv-like [4, 3, 7]: cols 21
    ("q2_tr", "q2", 8, True, (13, 3)),  # MatMul B [K=13, N=3]
    ("int8", "int8", 0, False, (6, 33)),
    ("int8_tr", "int8", 0, True, (17, 5)),
)
# builtin cross-check (per tensor: one row, one group): name, format, cols
BUILTIN = (("bi_q3", "q3", 64), ("bi_piq3", "piq3", 64), ("bi_int8", "int8", 96))


def fmt_info(fmt):
    """(bits, lo = -Qn, hi = Qp, step multiplier as f32)."""
    if fmt == "int8":
        return 8, -127.0, 127.0, np.float32(1.0)
    bits = 3 if fmt.endswith("3") else 2
    k = {"piq3": 4, "piq2": 3}.get(fmt)
    mult = np.float32(PQ_PI / k) if k else np.float32(1.0)
    return bits, -float(1 << (bits - 1)), float((1 << (bits - 1)) - 1), mult


def view_dims(shape, tr):
    if tr:
        b = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        return b, shape[-1], shape[-2]
    return 1, shape[0], int(np.prod(shape[1:]))


def to_stored(m, shape, tr):
    """Matrix view [B*R, C] -> stored layout."""
    b, r, c = view_dims(shape, tr)
    if tr:
        return np.ascontiguousarray(m.reshape(b, r, c).swapaxes(-1, -2)).reshape(shape)
    return np.ascontiguousarray(m.reshape(shape))


class FakeQuantSTE(torch.autograd.Function):
    """w_hat = clamp(rne(w / s), lo, hi) * s on the view matrix; s is [B*R, ngroups] (f32),
    gcol[c] the group of column c, count[g] the weights in group g of a row."""

    @staticmethod
    def forward(ctx, w, s, gcol, count, lo, hi, ste, delta):
        se = s[:, gcol]
        v = w / se  # f32 IEEE division, as the kernels
        r = torch.round(v)  # half to even
        ctx.save_for_backward(v, r, gcol, count)
        ctx.lo, ctx.hi, ctx.ste, ctx.delta, ctx.ng = lo, hi, ste, delta, s.shape[1]
        return torch.clamp(r, lo, hi) * se

    @staticmethod
    def backward(ctx, g):
        v, r, gcol, count = ctx.saved_tensors
        lo, hi, ste = ctx.lo, ctx.hi, ctx.ste
        inside = ((r >= lo) & (r <= hi)).to(torch.float32)
        ds = None
        if ste == "standard":
            dw = g.clone()
        elif ste in ("clipped", "lsq"):
            dw = g * inside
        else:  # ewgs, in double, rounded once
            gd = g.double()
            dw = (gd * (1.0 + ctx.delta * torch.sign(gd) * (v.double() - r.double()))
                  * inside.double()).float()
        if ste == "lsq":
            c = torch.where(inside > 0, r.double() - v.double(),
                            torch.where(r < lo, torch.full_like(v, lo, dtype=torch.float64),
                                        torch.full_like(v, hi, dtype=torch.float64)))
            gc = g.double() * c
            acc = torch.zeros(g.shape[0], ctx.ng, dtype=torch.float64)
            acc.index_add_(1, gcol, gc)
            ds = acc / torch.sqrt(count.double() * hi)
        return dw, ds, None, None, None, None, None, None


def run_ste(m, words, fmt, qgroup, g, ste):
    """(dw, da) of the view matrix m with scale words (f16 or f32 for int8) and gradient g."""
    bits, lo, hi, mult = fmt_info(fmt)
    cols = m.shape[1]
    if fmt == "int8":
        qgroup = cols
    gcol = torch.tensor([c // qgroup for c in range(cols)], dtype=torch.long)
    ng = (cols + qgroup - 1) // qgroup
    count = torch.tensor([min(qgroup, cols - i * qgroup) for i in range(ng)], dtype=torch.long)
    w = torch.tensor(m, requires_grad=True)
    if fmt == "int8":
        a = torch.tensor(words.reshape(-1, 1).astype(np.float32), requires_grad=True)
        s = a
    else:
        # a in double so the chain rule multiplies dL/ds (f32) by pi/k in double; the f32 step
        # f32(a * mult) equals pq_qstep (the exact product of two f32 rounded once)
        a = torch.tensor(words.astype(np.float32).astype(np.float64), requires_grad=True)
        s = (a * float(mult)).float()
    y = FakeQuantSTE.apply(w, s, gcol, count, lo, hi, ste, DELTA)
    y.backward(torch.tensor(g))
    dw = w.grad.numpy().astype(np.float32)
    da = a.grad.numpy().astype(np.float32).reshape(words.shape) if a.grad is not None else None
    if ste != "lsq":
        da = None
    return dw, da, y.detach().numpy()


def special_values(rng, m, steps, qgroup, lo, hi):
    """Overwrites weights of m (view [B*R, C]) with exact ties v = k + 0.5 (inside and on the clip
    bands: lo - 0.5 and hi + 0.5), values exactly at lo and hi, and values far outside."""
    rows, cols = m.shape
    wanted = [lo, hi, lo - 0.5, hi + 0.5, lo + 0.5, hi - 0.5, 0.5, -0.5, 1.5, -1.5,
              lo - 3.0, hi + 3.0]
    n_tie = n_band = 0
    for r in range(rows):
        for j, target in enumerate(rng.permutation(wanted)[:6]):
            c = int(rng.integers(0, cols))
            st = np.float32(steps[r, c // qgroup])
            w = np.float32(np.float32(target) * st)
            # nudge by ulps until the f32 division gives the target exactly
            for _ in range(8):
                v = np.float32(w / st)
                if v == target:
                    break
                w = np.nextafter(w, np.float32(np.inf) if (v < target) == (st > 0) else
                                 np.float32(-np.inf), dtype=np.float32)
            if np.float32(w / st) != target:
                continue
            m[r, c] = w
            n_tie += target != math.floor(target)
            n_band += target in (lo, hi, lo - 0.5, hi + 0.5)
    return n_tie, n_band


def make_case(rng, name, fmt, qgroup, tr, shape):
    bits, lo, hi, mult = fmt_info(fmt)
    b, rows, cols = view_dims(shape, tr)
    br = b * rows
    if fmt == "int8":
        words = rng.uniform(0.01, 0.03, br).astype(np.float32)  # s_w > 0 (SPEC 3)
        steps = words.reshape(-1, 1)
        gq = cols
    else:
        ng = (cols + qgroup - 1) // qgroup
        alpha = rng.uniform(0.05, 0.3, (br, ng))
        alpha[0, 0] = 0.25  # a power of two: exact ties for q3/q2
        sign = rng.choice([1.0, -1.0], (br, ng))
        sign[0, 0] = 1.0
        sign[-1, -1] = -1.0  # at least one negative scale word
        words = (alpha * sign).astype(np.float16)
        steps = words.astype(np.float32) * mult  # f32 product, as pq_qstep
        gq = qgroup
    scale = float(np.abs(steps).max()) * (abs(lo) + 1.5)
    m = rng.uniform(-scale, scale, (br, cols)).astype(np.float32)
    n_tie, n_band = special_values(rng, m, np.asarray(steps, dtype=np.float32), gq, lo, hi)
    assert n_tie > 0 and n_band > 0, name
    g = rng.normal(0.0, 1.0, (br, cols)).astype(np.float32)
    g[0, 0] = 0.0  # sign(0) for ewgs
    save(name + "_w", to_stored(m, shape, tr))
    save(name + "_scales", words)
    save(name + "_g", to_stored(g, shape, tr))
    for ste in STES:
        dw, da, _ = run_ste(m, words, fmt, qgroup, g, ste)
        save(name + "_dw_" + ste, to_stored(dw, shape, tr))
        if da is not None:
            save(name + "_da_lsq", da)
    print(f"{name}: {fmt} {shape} tr={int(tr)} ties={n_tie} band={n_band}")


def make_builtin(rng, name, fmt, cols):
    """Per-tensor LSQ vs torch._fake_quantize_learnable_per_tensor_affine (one row, one group),
    every |v - (k + 0.5)| > 1e-2 and no v within 1e-2 of the clip bands lo - 0.5, hi + 0.5."""
    bits, lo, hi, mult = fmt_info(fmt)
    if fmt == "int8":
        words = np.array([0.02], dtype=np.float32)
        step = words[0]
    else:
        words = np.array([[0.2]], dtype=np.float16)
        step = np.float32(words.astype(np.float32)[0, 0] * mult)
    m = rng.uniform((lo - 2.0) * abs(step), (hi + 2.0) * abs(step), (1, cols)).astype(np.float32)
    for i in range(cols):
        while abs(np.float32(m[0, i] / step) % 1.0 - 0.5) < 1e-2:
            m[0, i] = np.float32(rng.uniform((lo - 2.0) * abs(step), (hi + 2.0) * abs(step)))
    g = rng.normal(0.0, 1.0, (1, cols)).astype(np.float32)
    dw, da, _ = run_ste(m, words, fmt, cols, g, "lsq")
    x = torch.tensor(m.reshape(-1), requires_grad=True)
    s = torch.tensor([float(step)], dtype=torch.float32, requires_grad=True)
    y = torch._fake_quantize_learnable_per_tensor_affine(
        x, s, torch.tensor([0.0]), int(lo), int(hi), 1.0 / math.sqrt(cols * hi))
    y.backward(torch.tensor(g.reshape(-1)))
    dw_b = x.grad.numpy().reshape(1, cols).astype(np.float32)
    da_b = np.float32(float(s.grad[0]) * float(mult)).reshape(words.shape)
    assert np.array_equal(dw, dw_b), name
    assert abs(float(da.reshape(-1)[0]) - float(da_b.reshape(-1)[0])) <= 1e-5 * (
        abs(float(da_b.reshape(-1)[0])) + 1.0), (name, da, da_b)
    save(name + "_w", m)
    save(name + "_scales", words)
    save(name + "_g", g)
    save(name + "_dw_lsq", dw)
    save(name + "_da_lsq", da)
    save(name + "_dw_builtin", dw_b)
    save(name + "_da_builtin", da_b)
    print(f"{name}: lsq {float(da.reshape(-1)[0]):.9g} builtin {float(da_b.reshape(-1)[0]):.9g}")


def save(name, arr):
    np.save(os.path.join(OUT, name + ".npy"), arr, allow_pickle=False)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(20240707)
    for case in CASES:
        make_case(rng, *case)
    for case in BUILTIN:
        make_builtin(rng, *case)


if __name__ == "__main__":
    main()
