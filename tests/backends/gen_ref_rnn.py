#!/usr/bin/python3
"""Generates the expected values of tests/backends/test_ref_rnn.c: a numpy implementation of the
ONNX LSTM/GRU/RNN equations, cross-checked against torch.nn.LSTM/GRU/RNN where torch has the same
semantics, printed as C literals. Run: /usr/bin/python3 tests/backends/gen_ref_rnn.py"""
import numpy as np
import torch

rng = np.random.default_rng(7)
sig = lambda x: 1 / (1 + np.exp(-x))
ACT = {"Sigmoid": lambda x, a, b: sig(x), "Tanh": lambda x, a, b: np.tanh(x),
       "Relu": lambda x, a, b: np.maximum(x, 0),
       "LeakyRelu": lambda x, a, b: np.where(x >= 0, x, a * x),
       "HardSigmoid": lambda x, a, b: np.clip(a * x + b, 0, 1),
       "ScaledTanh": lambda x, a, b: a * np.tanh(b * x)}


def onnx_rnn(kind, X, W, R, B=None, lens=None, h0=None, c0=None, P=None, direction="forward",
             layout=0, clip=0.0, acts=None, input_forget=0, lbr=0):
    if layout:
        X = X.transpose(1, 0, 2)
    S, N, _ = X.shape
    D, GH, _ = W.shape
    H = R.shape[2]
    nact = {"lstm": 3, "gru": 2, "rnn": 1}[kind]
    if acts is None:
        acts = [("Sigmoid", 0, 0), ("Tanh", 0, 0), ("Tanh", 0, 0)][:nact] if kind != "rnn" else [("Tanh", 0, 0)]
        acts = acts * D
    if lens is None:
        lens = np.full(N, S)
    if h0 is not None and layout:
        h0 = h0.transpose(1, 0, 2)
    if c0 is not None and layout:
        c0 = c0.transpose(1, 0, 2)
    Y = np.zeros((S, D, N, H), np.float64)
    Yh = np.zeros((D, N, H))
    Yc = np.zeros((D, N, H))
    cl = (lambda v: np.clip(v, -clip, clip)) if clip > 0 else (lambda v: v)
    for d in range(D):
        rev = direction == "reverse" or (direction == "bidirectional" and d == 1)
        f = lambda i, v: ACT[acts[d * nact + i][0]](v, acts[d * nact + i][1], acts[d * nact + i][2])
        Wd, Rd = W[d].astype(np.float64), R[d].astype(np.float64)
        Wb = B[d][:GH] if B is not None else np.zeros(GH)
        Rb = B[d][GH:] if B is not None else np.zeros(GH)
        for n in range(N):
            h = h0[d, n].astype(np.float64) if h0 is not None else np.zeros(H)
            c = c0[d, n].astype(np.float64) if c0 is not None else np.zeros(H)
            L = int(lens[n])
            for step in range(L):
                t = L - 1 - step if rev else step
                x = X[t, n].astype(np.float64)
                if kind == "lstm":
                    g = Wd @ x + Rd @ h + Wb + Rb
                    gi, go, gf, gc = g[:H], g[H:2 * H], g[2 * H:3 * H], g[3 * H:]
                    if P is not None:
                        pi, po, pf = P[d][:H], P[d][H:2 * H], P[d][2 * H:]
                        gi = gi + pi * c
                        gf = gf + pf * c
                    i = f(0, cl(gi))
                    fg = 1 - i if input_forget else f(0, cl(gf))
                    cc = f(1, cl(gc))
                    c = fg * c + i * cc
                    if P is not None:
                        go = go + po * c
                    o = f(0, cl(go))
                    h = o * f(2, c)
                elif kind == "gru":
                    Wz, Wr, Wh = Wd[:H], Wd[H:2 * H], Wd[2 * H:]
                    Rz, Rr, Rh = Rd[:H], Rd[H:2 * H], Rd[2 * H:]
                    z = f(0, cl(Wz @ x + Rz @ h + Wb[:H] + Rb[:H]))
                    r = f(0, cl(Wr @ x + Rr @ h + Wb[H:2 * H] + Rb[H:2 * H]))
                    if lbr:
                        hh = f(1, cl(Wh @ x + r * (Rh @ h + Rb[2 * H:]) + Wb[2 * H:]))
                    else:
                        hh = f(1, cl(Wh @ x + Rh @ (r * h) + Rb[2 * H:] + Wb[2 * H:]))
                    h = (1 - z) * hh + z * h
                else:
                    h = f(0, cl(Wd @ x + Rd @ h + Wb + Rb))
                Y[t, d, n] = h
            Yh[d, n] = h
            Yc[d, n] = c
    if layout:
        return Y.transpose(2, 0, 1, 3), Yh.transpose(1, 0, 2), Yc.transpose(1, 0, 2)
    return Y, Yh, Yc


def r(*shape):
    return rng.uniform(-1, 1, shape).astype(np.float32)


def torch_check():
    """Validates the numpy equations against torch (bidirectional LSTM, GRU = lbr 1, RNN relu)."""
    S, N, I, H = 3, 2, 2, 3
    X = r(S, N, I)
    for kind in ["lstm", "gru", "rnn"]:
        mod = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU,
               "rnn": lambda *a, **k: torch.nn.RNN(*a, nonlinearity="relu", **k)}[kind](I, H, bidirectional=True)
        with torch.no_grad():
            y, _ = mod(torch.from_numpy(X))
        Ws, Rs, Bs = [], [], []
        for sfx in ["", "_reverse"]:
            w = getattr(mod, "weight_ih_l0" + sfx).detach().numpy()
            rr = getattr(mod, "weight_hh_l0" + sfx).detach().numpy()
            bi = getattr(mod, "bias_ih_l0" + sfx).detach().numpy()
            bh = getattr(mod, "bias_hh_l0" + sfx).detach().numpy()
            if kind == "lstm":  # torch i f g o -> onnx i o f c
                perm = lambda m: np.concatenate([m[0:H], m[3 * H:], m[H:2 * H], m[2 * H:3 * H]])
            elif kind == "gru":  # torch r z n -> onnx z r h
                perm = lambda m: np.concatenate([m[H:2 * H], m[0:H], m[2 * H:]])
            else:
                perm = lambda m: m
            Ws.append(perm(w)); Rs.append(perm(rr)); Bs.append(np.concatenate([perm(bi), perm(bh)]))
        acts = [("Relu", 0, 0)] * 2 if kind == "rnn" else None
        Y, _, _ = onnx_rnn(kind, X, np.stack(Ws), np.stack(Rs), np.stack(Bs),
                           direction="bidirectional", lbr=1, acts=acts)
        got = Y.transpose(0, 2, 1, 3).reshape(S, N, 2 * H)
        assert np.allclose(got, y.numpy(), atol=1e-5), kind


def c_arr(name, a, ctype="float"):
    a = np.asarray(a).flatten()
    if ctype == "float":
        fmt = lambda v: ("%.8g" % v) if any(ch in "%.8g" % v for ch in ".en") else "%.8g.0" % v
        vals = ", ".join(fmt(v) + "f" for v in a)
    else:
        vals = ", ".join(str(int(v)) for v in a)
    return "static const %s %s[%d] = {%s};" % (ctype, name, len(a), vals)


def emit(name, kind, ins, **kw):
    Y, Yh, Yc = onnx_rnn(kind, *ins, **kw)
    names = ["X", "W", "R", "B", "lens", "h0", "c0", "P"]
    print("/* %s: %s %s */" % (name, kind, {k: v for k, v in kw.items() if k != 'acts'} | ({'acts': kw['acts']} if 'acts' in kw else {})))
    for nm, v in zip(names, ins):
        if v is not None:
            print(c_arr("%s_%s" % (name, nm), v, "int32_t" if nm == "lens" else "float"))
    print(c_arr("%s_Y" % name, Y))
    print(c_arr("%s_Yh" % name, Yh))
    if kind == "lstm":
        print(c_arr("%s_Yc" % name, Yc))


if __name__ == "__main__":
    torch_check()
    S, N, I, H = 3, 2, 2, 3
    # LSTM bidirectional with bias, peepholes, sequence_lens, initial states, clip
    emit("lstm_bi", "lstm", [r(S, N, I), r(2, 4 * H, I), r(2, 4 * H, H), r(2, 8 * H),
                              np.array([3, 2], np.int32), r(2, N, H), r(2, N, H), r(2, 3 * H)],
         direction="bidirectional", clip=0.9)
    # LSTM reverse, layout 1, input_forget, custom activations with alpha/beta
    emit("lstm_rev", "lstm", [r(N, S, I), r(1, 4 * H, I), r(1, 4 * H, H), None, None, r(N, 1, H), None, None],
         direction="reverse", layout=1, input_forget=1,
         acts=[("HardSigmoid", 0.3, 0.4), ("LeakyRelu", 0.05, 0), ("ScaledTanh", 1.5, 0.7)])
    # GRU forward, linear_before_reset 0 and 1, with bias and sequence_lens
    for lbr in (0, 1):
        emit("gru_lbr%d" % lbr, "gru", [r(S, N, I), r(1, 3 * H, I), r(1, 3 * H, H), r(1, 6 * H),
                                         np.array([2, 3], np.int32), r(1, N, H)], lbr=lbr)
    # GRU bidirectional, layout 1
    emit("gru_bi", "gru", [r(N, S, I), r(2, 3 * H, I), r(2, 3 * H, H), r(2, 6 * H)],
         direction="bidirectional", layout=1)
    # RNN bidirectional relu/tanh with bias and initial h
    emit("rnn_bi", "rnn", [r(S, N, I), r(2, H, I), r(2, H, H), r(2, 2 * H), None, r(2, N, H)],
         direction="bidirectional", acts=[("Relu", 0, 0), ("Tanh", 0, 0)])
