#!/usr/bin/python3
# PyTorch baseline for `piqc train`'s step time (issue 7, "Speed"): the same model, batch, STE,
# loss, optimizer and thread count as the qat-piq3 preset, timed step by step. Used by bench/bench_qat.sh.
#
# Usage: /usr/bin/python3 bench/qat_torch.py --model digits|charlm --onnx MODEL.onnx --data DIR
#            [--batch 16] [--threads 1] [--steps 100] [--warmup 10] [--group 256] [--format piq3]
#            [--min-elements 1024] [--fq native|function] [--seed 1]
# What one step is (as piqc train's, docs/training.md):
#   - the frozen FP32 teacher (the ONNX model as stored: BatchNorm not folded) forward under no_grad;
#   - the student: BatchNorm folded into the convolutions (fold-batchnorm), every Conv/Linear weight
#     with >= --min-elements values read through a fake quantizer with LSQ (per group of --group
#     weights along the input dimension, one group per output row when the row is shorter;
#     symmetric codes [-4, 3] for piq3, [-2, 1] for piq2; step = a * pi / k with a trainable a);
#   - KD loss at T = 1: KL(softmax(teacher) || softmax(student)) summed over the classes, mean over
#     every other position; backward;
#   - AdamW (lr 1e-3, betas 0.9/0.999, eps 1e-8, weight decay 0) with the preset's cosine schedule
#     and 20 warm-up steps.
# Trainable as in piqc's full QAT: weights, biases, LayerNorm scale/bias, the embedding table and the
# scale words; not the position table, the mask or the BatchNorm statistics.
# Batches are gathered before the timer starts (piqc excludes data gathering too). Prints
# `torch step time median N.NNN ms (forward + backward + update, T threads)` and the BLAS in use.
import argparse
import importlib.util
import json
import math
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args():
    ap = argparse.ArgumentParser(description="PyTorch QAT step time beside piqc train")
    ap.add_argument("--model", choices=("digits", "charlm"), required=True)
    ap.add_argument("--onnx", required=True, help="the ONNX model piqc trains")
    ap.add_argument("--data", required=True, help="data folder (<input>.npy)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=100, help="timed steps (>= 50 for the bench)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed steps first")
    ap.add_argument("--group", type=int, default=256)
    ap.add_argument("--format", choices=("piq3", "piq2"), default="piq3")
    ap.add_argument("--min-elements", type=int, default=1024,
                    help="fake-quantize weights with at least this many values (fake-quant's default)")
    ap.add_argument("--fq", choices=("native", "function"), default="native",
                    help="native: torch._fake_quantize_learnable_per_channel_affine over the groups "
                    "(one fused kernel, LSQ gradients); function: an autograd.Function of the same "
                    "formulas in tensor ops")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="also print one JSON line")
    ap.add_argument("--check", action="store_true",
                    help="first compare the teacher with the ONNX model (numpy interpreter of "
                    "scripts/train_charlm.py, or the digits' stored PyTorch logits) and the folded "
                    "student before fake quantization with the teacher")
    a = ap.parse_args()
    if a.batch < 1 or a.threads < 1 or a.steps < 1 or a.warmup < 0 or a.group < 1:
        ap.error("--batch, --threads, --steps, --group must be positive, --warmup >= 0")
    return a


ARGS = parse_args()
# Before torch loads: OpenBLAS's own pool follows OPENBLAS_NUM_THREADS (torch.set_num_threads does
# not reach it). The caller may have chosen OMP_WAIT_POLICY; it is left as it is.
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(ARGS.threads))
os.environ.setdefault("OMP_NUM_THREADS", str(ARGS.threads))
OMP_WAIT = os.environ.get("OMP_WAIT_POLICY", "unset")  # scripts/train_charlm.py sets a default on import

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402


def die(msg):
    print("qat_torch: " + msg, file=sys.stderr)
    sys.exit(2)


# ---------------------------------------------------------------- fake quantization (LSQ)

QBOUNDS = {"piq3": (4, 3, 4.0), "piq2": (2, 1, 3.0)}  # Qn, Qp, k: step = a * pi / k


class LsqFakeQuant(torch.autograd.Function):
    """w [R, G] per-row step s [R]: w_hat = clamp(rne(w / s), -Qn, Qp) s; dw = g inside, 0 outside;
    ds = sum_row(g c) / sqrt(G Qp), c = r - v inside, -Qn / Qp outside (SPEC 7, docs/training.md)."""

    @staticmethod
    def forward(ctx, w, s, qn, qp):
        v = w / s[:, None]
        r = torch.round(v)
        q = torch.clamp(r, -qn, qp)
        ctx.save_for_backward(v, r, s)
        ctx.qn, ctx.qp = qn, qp
        return q * s[:, None]

    @staticmethod
    def backward(ctx, g):
        v, r, s = ctx.saved_tensors
        qn, qp = ctx.qn, ctx.qp
        below, above = r < -qn, r > qp
        inside = ~(below | above)
        c = torch.where(inside, r - v, torch.where(below, torch.full_like(v, -qn),
                                                   torch.full_like(v, qp)))
        ds = (g * c).sum(dim=1) / math.sqrt(v.shape[1] * qp)
        return g * inside, ds, None, None


class FQWeight(nn.Module):
    """Reads a Conv/Linear weight [out, in...] through the fake quantizer, in groups of `group`
    along the flattened input dimension (rows shorter than a group are one group)."""

    def __init__(self, weight, group, fmt, mode):
        super().__init__()
        out = weight.shape[0]
        n_in = weight[0].numel()
        self.shape, self.n_in = weight.shape, n_in
        self.g = n_in if n_in <= group else group
        self.pad = (-n_in) % self.g
        self.rows = out * ((n_in + self.pad) // self.g)
        self.qn, self.qp, k = QBOUNDS[fmt]
        self.pik = math.pi / k
        self.mode = mode
        self.grad_factor = 1.0 / math.sqrt(self.g * self.qp)
        # a from absmax (the starting grid does not matter for timing): |w| max maps to code Qp
        w2 = self._rows(weight.detach())
        amax = w2.abs().amax(dim=1).clamp_min(1e-8)
        self.a = nn.Parameter((amax / self.qp / self.pik).float())
        self.register_buffer("zp", torch.zeros(self.rows))

    def _rows(self, w):
        w = w.reshape(self.shape[0], -1)
        if self.pad:
            w = F.pad(w, (0, self.pad))
        return w.reshape(self.rows, self.g)

    def forward(self, w):
        w2 = self._rows(w)
        s = self.a * self.pik
        if self.mode == "native":
            y = torch._fake_quantize_learnable_per_channel_affine(
                w2, s, self.zp, 0, -self.qn, self.qp, self.grad_factor)
        else:
            y = LsqFakeQuant.apply(w2, s, self.qn, self.qp)
        if self.pad:
            y = y.reshape(self.shape[0], -1)[:, :self.n_in]
        return y.reshape(self.shape)


class QLinear(nn.Module):
    def __init__(self, lin, fq):
        super().__init__()
        self.weight, self.bias, self.fq = lin.weight, lin.bias, fq

    def forward(self, x):
        return F.linear(x, self.fq(self.weight), self.bias)


class QConv2d(nn.Module):
    def __init__(self, conv, fq):
        super().__init__()
        self.conv, self.fq = conv, fq

    def forward(self, x):
        c = self.conv
        return F.conv2d(x, self.fq(c.weight), c.bias, c.stride, c.padding, c.dilation, c.groups)


def fake_quantize_modules(model, args):
    """Replaces every Linear/Conv2d whose weight has >= min-elements values; returns the count."""
    n = 0
    for name, mod in list(model.named_modules()):
        for cname, child in list(mod.named_children()):
            if isinstance(child, (nn.Linear, nn.Conv2d)) and child.weight.numel() >= args.min_elements:
                fq = FQWeight(child.weight, args.group, args.format, args.fq)
                setattr(mod, cname, QLinear(child, fq) if isinstance(child, nn.Linear)
                        else QConv2d(child, fq))
                n += 1
    return n


# ---------------------------------------------------------------- models

def onnx_initializers(path):
    m = onnx.load(path)
    return m, {t.name: torch.from_numpy(numpy_helper.to_array(t).copy()) for t in m.graph.initializer}


class DigitsCNN(nn.Module):
    """examples/digits/train_digits.py's architecture (conv-bn-relu x2, max-pool, flatten, linear)."""

    def __init__(self, bn=True):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=not bn),
            nn.BatchNorm2d(8) if bn else nn.Identity(),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, bias=not bn),
            nn.BatchNorm2d(16) if bn else nn.Identity(),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.features(x)))


def build_digits(args):
    _, init = onnx_initializers(args.onnx)
    teacher = DigitsCNN(bn=True)
    sd = {k: v for k, v in init.items()}
    for bn in ("features.1", "features.4"):
        sd[bn + ".num_batches_tracked"] = torch.tensor(0)
    missing = set(teacher.state_dict()) - set(sd)
    if missing:
        die("%s lacks the digits CNN's initializers %s" % (args.onnx, sorted(missing)))
    teacher.load_state_dict({k: sd[k] for k in teacher.state_dict()})
    eps = 1e-5
    student = DigitsCNN(bn=False)
    with torch.no_grad():
        for conv, bn in (("features.0", "features.1"), ("features.3", "features.4")):
            g = init[bn + ".weight"] / torch.sqrt(init[bn + ".running_var"] + eps)
            getattr(student.features, conv.split(".")[1]).weight.copy_(
                init[conv + ".weight"] * g[:, None, None, None])
            getattr(student.features, conv.split(".")[1]).bias.copy_(
                init[bn + ".bias"] - init[bn + ".running_mean"] * g)
        student.fc.weight.copy_(init["fc.weight"])
        student.fc.bias.copy_(init["fc.bias"])
    x = np.load(os.path.join(args.data, "input.npy")).astype(np.float32)
    return teacher, student, torch.from_numpy(x)


def load_charlm_class():
    path = os.path.join(ROOT, "scripts", "train_charlm.py")
    spec = importlib.util.spec_from_file_location("train_charlm", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)  # defines classes only; main() is not run
    return mod


def build_charlm(args):
    tc = load_charlm_class()
    m, init = onnx_initializers(args.onnx)
    meta_path = os.path.join(os.path.dirname(os.path.abspath(args.onnx)), "pytorch_metrics.json")
    vocab, d = init["tok.weight"].shape
    layers = sum(1 for k in init if k.endswith(".ln1.weight"))
    heads = None
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            heads = json.load(f).get("config", {}).get("heads")
    if heads is None:  # from the first attention Reshape's constant shape [-1, T, H, hd]
        for n in m.graph.node:
            if n.op_type == "Constant":
                v = numpy_helper.to_array(n.attribute[0].t)
                if v.ndim == 1 and v.size == 4 and v[1] == tc.T and v[2] * v[3] == d:
                    heads = int(v[2])
                    break
    if heads is None:
        die("cannot tell the number of heads of %s" % args.onnx)
    # MatMul weights were exported transposed under generated names: map them by node name
    # (/blocks.0/q/MatMul -> blocks.0.q.weight = W^T).
    sd = {k: v for k, v in init.items() if not k.startswith("onnx::")}
    for n in m.graph.node:
        if n.op_type == "MatMul" and len(n.input) == 2 and n.input[1] in init:
            mod = n.name.strip("/").rsplit("/", 1)[0].replace("/", ".")
            sd[mod + ".weight"] = init[n.input[1]].t().contiguous()
    teacher = tc.CharLM(vocab, d, heads, layers)
    missing = set(teacher.state_dict()) - set(sd)
    if missing:
        die("%s: cannot map the CharLM parameters %s" % (args.onnx, sorted(missing)[:6]))
    teacher.load_state_dict({k: sd[k] for k in teacher.state_dict()})
    student = tc.CharLM(vocab, d, heads, layers)
    student.load_state_dict(teacher.state_dict())
    student.pos.requires_grad_(False)  # a 2-D constant added: piqc does not train it
    toks = np.load(os.path.join(args.data, "tokens.npy")).astype(np.int64)
    return teacher, student, torch.from_numpy(toks)


# ---------------------------------------------------------------- the loop

def blas_in_use():
    torch.ones(64, 64) @ torch.ones(64, 64)
    try:
        with open("/proc/self/maps") as f:
            libs = sorted({ln.split()[-1] for ln in f if "blas" in ln.split()[-1]})
    except OSError:
        return "unknown"
    names = [os.path.basename(os.path.dirname(p)) + "/" + os.path.basename(p) for p in libs]
    kind = ("OpenBLAS" if any("openblas" in p for p in libs) else
            "MKL" if any("mkl" in p for p in libs) else "reference BLAS (slow)" if libs else "none")
    return "%s (%s)" % (kind, ", ".join(names) or "-")


def check(args, teacher, student, data):
    x = data[:8]
    with torch.no_grad():
        zt, zs = teacher(x), student(x)
    if args.model == "digits":
        ref_path = os.path.join(os.path.dirname(os.path.abspath(args.onnx)), "test_logits.npy")
        tx = os.path.join(os.path.dirname(os.path.abspath(args.onnx)), "test_x.npy")
        with torch.no_grad():
            ref = torch.from_numpy(np.load(ref_path))[:8]
            got = teacher(torch.from_numpy(np.load(tx)[:8]))
    else:
        m = onnx.load(args.onnx)
        ref = torch.from_numpy(load_charlm_class().run_onnx_numpy(m, {"tokens": x.numpy()})[0])
        got = zt
    d_ref = float((got - ref).abs().max())
    d_fold = float((zs - zt).abs().max())
    print("check: teacher vs ONNX max |diff| %.3g, folded student vs teacher %.3g" % (d_ref, d_fold))
    if not (d_ref < 1e-3 and d_fold < 1e-3):
        die("the torch models do not reproduce %s" % args.onnx)


def main():
    args = ARGS
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    teacher, student, data = (build_digits if args.model == "digits" else build_charlm)(args)
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    if args.check:
        check(args, teacher, student, data)
    n_fq = fake_quantize_modules(student, args)
    student.train()
    params = [p for p in student.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    warm_sched, total = 20, args.warmup + args.steps

    def lr_at(k):  # piqc's schedule: linear warm-up, then cosine to 0 at the last step
        if k < warm_sched:
            return 1e-3 * (k + 1) / warm_sched
        prog = min(1.0, max(0.0, (k - warm_sched) / max(1, total - warm_sched)))
        return 1e-3 * 0.5 * (1 + math.cos(math.pi * prog))

    n = data.shape[0]
    if n < args.batch:
        die("%s has %d samples, fewer than the batch %d" % (args.data, n, args.batch))
    g = torch.Generator().manual_seed(args.seed)
    batches, perm, pos = [], torch.randperm(n, generator=g), 0
    for _ in range(total):
        if pos + args.batch > n:
            perm, pos = torch.randperm(n, generator=g), 0
        batches.append(data[perm[pos:pos + args.batch]].contiguous())
        pos += args.batch

    times, losses = [], []
    for k, x in enumerate(batches):
        t0 = time.perf_counter()
        with torch.no_grad():
            zt = teacher(x)
        zs = student(x)
        c = zs.shape[-1]
        loss = F.kl_div(F.log_softmax(zs.reshape(-1, c), dim=-1),
                        F.log_softmax(zt.reshape(-1, c), dim=-1),
                        reduction="batchmean", log_target=True)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        for grp in opt.param_groups:
            grp["lr"] = lr_at(k)
        opt.step()
        t1 = time.perf_counter()
        if k >= args.warmup:
            times.append((t1 - t0) * 1e3)
        losses.append(float(loss))  # after the timer: .item() is a sync point only in name on CPU
    med = statistics.median(times)
    n_par = sum(p.numel() for p in params)
    print("torch %s: %d trainable tensors (%d values), %d fake-quantized weights (%s G=%d, lsq %s), "
          "batch %d, %d+%d steps, loss %.5f -> %.5f" % (
              args.model, len(params), n_par, n_fq, args.format, args.group, args.fq, args.batch,
              args.warmup, args.steps, losses[0], losses[-1]))
    print("torch %s, %d threads, BLAS: %s, OMP_WAIT_POLICY=%s" % (
        torch.__version__, torch.get_num_threads(), blas_in_use(), OMP_WAIT))
    print("torch step time median %.3f ms (forward + backward + update, %d threads)"
          % (med, args.threads))
    if args.json:
        print(json.dumps({"model": args.model, "threads": args.threads, "batch": args.batch,
                          "median_ms": round(med, 4), "steps": args.steps,
                          "p10_ms": round(float(np.percentile(times, 10)), 4),
                          "p90_ms": round(float(np.percentile(times, 90)), 4)}))


if __name__ == "__main__":
    main()
