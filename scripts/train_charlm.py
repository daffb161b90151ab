#!/usr/bin/python3
# Trains examples/charlm: a small decoder-only character-level transformer on the King James Bible
# (Debian's bible-kjv-text), exports it to ONNX opset 17 and writes the train/val data folders.
#
# Run with Debian's /usr/bin/python3 (python3-torch, python3-onnx, python3-numpy, bible-kjv):
#   /usr/bin/python3 scripts/train_charlm.py            # writes examples/charlm/
# Deterministic for a given seed, step count, thread count (2 threads are forced) and BLAS. Debian's
# torch uses the system libblas.so.3: with the netlib reference BLAS training is ~10x slower than
# with OpenBLAS (libopenblas0-pthread; or LD_LIBRARY_PATH=.../openblas-pthread). The committed
# model took 726 s of training on 2 busy cores with OpenBLAS (examples/charlm/README.md).
import argparse
import collections
import json
import math
import os
import re
import subprocess
import sys
import time

# Before torch starts its OpenMP pool: spinning worker threads slow training down badly on a busy
# 2-core machine, and OpenBLAS threads on top of torch's would oversubscribe the cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import onnx
from onnx import numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F

T = 64  # context length: fixed, the ONNX input is [N, 64]

# Held-out books (validation): two OT narratives, an OT prophet, two NT epistles. Names as the
# `bible` program abbreviates them in its verse references.
VAL_BOOKS = ("Ruth", "Jonah", "Joel", "Phi", "Jude")
VAL_BOOK_NAMES = ("Ruth", "Jonah", "Joel", "Philippians", "Jude")
UNK = "#"  # every character outside printable ASCII (none in the KJV text) maps to this one
ALLOWED_OPS = {"Gather", "Add", "Sub", "Mul", "Div", "MatMul", "Gemm", "Reshape", "Transpose",
               "Softmax", "LayerNormalization", "Relu", "Constant"}


def die(msg):
    print("train_charlm: " + msg, file=sys.stderr)
    sys.exit(1)


def dump_corpus():
    """Returns [(book, text)] in canonical order; text = the book's verses, one per line."""
    try:
        out = subprocess.run(["bible", "-f", "Gen1:1-Rev22:21"], check=True, capture_output=True,
                             text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        die("cannot run `bible` (apt-get install bible-kjv bible-kjv-text): %s" % e)
    ref = re.compile(r"^(\d?[A-Za-z]+)(\d+):(\d+) (.*)$")
    books = collections.OrderedDict()
    for n, line in enumerate(out.splitlines(), 1):
        if not line.strip():
            continue
        m = ref.match(line)
        if not m:
            die("unexpected line %d of the bible dump: %r" % (n, line[:80]))
        books.setdefault(m.group(1), []).append(normalise(m.group(4)))
    if len(books) != 66:
        die("expected 66 books in the bible dump, got %d" % len(books))
    for b in VAL_BOOKS:
        if b not in books:
            die("held-out book %r not in the dump (books: %s)" % (b, " ".join(books)))
    return [(b, "".join(v + "\n" for v in verses)) for b, verses in books.items()]


def normalise(s):
    s = " ".join(s.split())  # collapse whitespace; verses become single lines
    return "".join(c if " " <= c <= "~" else UNK for c in s)


class Block(nn.Module):
    """Pre-LayerNorm block: x + Attn(LN(x)), then x + MLP(LN(x)); attention written out by hand."""

    def __init__(self, d, heads):
        super().__init__()
        self.h, self.hd = heads, d // heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.q, self.k, self.v, self.proj = (nn.Linear(d, d) for _ in range(4))
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.scale = 1.0 / math.sqrt(self.hd)

    def forward(self, x, mask):
        d = self.h * self.hd
        a = self.ln1(x)
        # constant shapes only (-1 for the batch): the export has no Shape/Gather/Concat chain
        q = self.q(a).reshape(-1, T, self.h, self.hd).transpose(1, 2)  # [N,H,T,hd]
        k = self.k(a).reshape(-1, T, self.h, self.hd).permute(0, 2, 3, 1)  # [N,H,hd,T]
        v = self.v(a).reshape(-1, T, self.h, self.hd).transpose(1, 2)  # [N,H,T,hd]
        s = torch.matmul(q, k) * self.scale + mask  # mask [T,T]: 0 on/below the diagonal
        y = torch.matmul(torch.softmax(s, dim=-1), v)  # [N,H,T,hd]
        x = x + self.proj(y.transpose(1, 2).reshape(-1, T, d))
        return x + self.fc2(torch.relu(self.fc1(self.ln2(x))))


class CharLM(nn.Module):
    def __init__(self, vocab, d, heads, layers):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(torch.zeros(T, d))
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)
        # -1e4 (not -inf): exp underflows to exactly 0 in f32 and the value fits f16
        self.register_buffer("mask", torch.triu(torch.full((T, T), -1e4), diagonal=1))
        for name, p in self.named_parameters():
            if p.dim() >= 2 or name == "pos":
                nn.init.normal_(p, std=0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        for b in self.blocks:  # GPT-2 style: residual projections scaled by depth
            nn.init.normal_(b.proj.weight, std=0.02 / math.sqrt(2 * layers))
            nn.init.normal_(b.fc2.weight, std=0.02 / math.sqrt(2 * layers))

    def forward(self, tokens):  # tokens [N,T] int64 -> logits [N,T,V]
        x = self.tok(tokens) + self.pos
        for b in self.blocks:
            x = b(x, self.mask)
        return self.head(self.ln_f(x))


def run_onnx_numpy(m, feeds):
    """A plain numpy interpreter for the few ops the export may contain (Debian's onnx 1.12 has no
    onnx.reference.ReferenceEvaluator); independent of torch, used to check the exported file."""
    env = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    env.update(feeds)
    for n in m.graph.node:
        a = {at.name: onnx.helper.get_attribute_value(at) for at in n.attribute}
        x = [env[i] if i else None for i in n.input]
        op = n.op_type
        if op == "Constant":
            r = numpy_helper.to_array(a["value"])
        elif op == "Gather":
            r = np.take(x[0], x[1], axis=a.get("axis", 0))
        elif op in ("Add", "Sub", "Mul", "Div"):
            r = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply,
                 "Div": np.divide}[op](x[0], x[1])
        elif op == "MatMul":
            r = np.matmul(x[0], x[1])
        elif op == "Gemm":
            A = x[0].T if a.get("transA", 0) else x[0]
            B = x[1].T if a.get("transB", 0) else x[1]
            r = a.get("alpha", 1.0) * (A @ B)
            if len(x) > 2 and x[2] is not None:
                r = r + a.get("beta", 1.0) * x[2]
        elif op == "Reshape":
            shape = [x[0].shape[i] if d == 0 and not a.get("allowzero", 0) else d
                     for i, d in enumerate(x[1].tolist())]
            r = x[0].reshape(shape)
        elif op == "Transpose":
            r = np.transpose(x[0], a.get("perm"))
        elif op == "Softmax":
            ax = a.get("axis", -1)
            e = np.exp(x[0] - x[0].max(axis=ax, keepdims=True))
            r = e / e.sum(axis=ax, keepdims=True)
        elif op == "LayerNormalization":
            ax = a.get("axis", -1)
            axes = tuple(range(ax % x[0].ndim, x[0].ndim))
            mu = x[0].mean(axis=axes, keepdims=True)
            var = ((x[0] - mu) ** 2).mean(axis=axes, keepdims=True)
            r = (x[0] - mu) / np.sqrt(var + a.get("epsilon", 1e-5)) * x[1]
            if len(x) > 2 and x[2] is not None:
                r = r + x[2]
        elif op == "Relu":
            r = np.maximum(x[0], 0)
        else:
            die("numpy check: op %s not supported by the checker" % op)
        env[n.output[0]] = np.asarray(r)
    return [env[o.name] for o in m.graph.output]


def warn_if_reference_blas():
    """Debian's torch calls the system libblas.so.3; the netlib reference BLAS is ~10x slower than
    OpenBLAS on these GEMMs. Looks at the mapped library after one matmul."""
    torch.ones(8, 8) @ torch.ones(8, 8)
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "libblas.so" in line or "openblas" in line}
    except OSError:
        return
    if libs and not any("openblas" in lib or "mkl" in lib for lib in libs):
        print("train_charlm: warning: torch uses the reference BLAS (%s); training will be ~10x "
              "slower (install libopenblas0-pthread, or point LD_LIBRARY_PATH at its "
              "openblas-pthread directory)" % ", ".join(sorted(libs)), file=sys.stderr)


def mean_ce(model, x, y, batch=128):
    model.eval()
    tot, n = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            lg = model(x[i:i + batch])
            tot += F.cross_entropy(lg.reshape(-1, lg.shape[-1]), y[i:i + batch].reshape(-1),
                                   reduction="sum").item()
            n += y[i:i + batch].numel()
    model.train()
    return tot / n


def windows(ids, starts):
    x = np.stack([ids[s:s + T] for s in starts]).astype(np.int64)
    y = np.stack([ids[s + 1:s + T + 1] for s in starts]).astype(np.int64)
    return x, y


def save_npy(path, a):
    tmp = path + ".tmp.npy"
    np.save(tmp, a)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "examples",
                                                  "charlm"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--d-model", type=int, default=128)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--steps", type=int, default=3600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--train-windows", type=int, default=3072)
    ap.add_argument("--val-windows", type=int, default=512)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--save-val-logits", metavar="PATH",
                    help="also write PyTorch's logits on val/tokens.npy (f32 [Nval,64,V]) here")
    args = ap.parse_args()
    if args.d_model % args.heads:
        die("--d-model must be a multiple of --heads")

    torch.set_num_threads(2)
    warn_if_reference_blas()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    out = os.path.abspath(args.out)
    for sub in ("", "train", "val"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)

    # --- corpus, vocabulary, split by books ---
    books = dump_corpus()
    vocab = sorted(set("".join(t for _, t in books)))
    stoi = {c: i for i, c in enumerate(vocab)}
    train_text = "".join(t for b, t in books if b not in VAL_BOOKS)
    val_text = "".join(t for b, t in books if b in VAL_BOOKS)
    train_ids = np.array([stoi[c] for c in train_text], dtype=np.int64)
    val_ids = np.array([stoi[c] for c in val_text], dtype=np.int64)
    print("corpus: %d books, %d train chars, %d val chars (%s), vocab %d"
          % (len(books), len(train_ids), len(val_ids), ", ".join(VAL_BOOK_NAMES), len(vocab)))

    # val: non-overlapping windows spread evenly over the held-out books
    stride = (len(val_ids) - 1) // args.val_windows
    if stride < T:
        die("held-out text too short for %d non-overlapping windows" % args.val_windows)
    val_x, val_y = windows(val_ids, [i * stride for i in range(args.val_windows)])
    # train folder: a seeded random subset of training windows (for fine-tuning, not pre-training)
    starts = np.sort(rng.choice(len(train_ids) - T - 1, size=args.train_windows, replace=False))
    tr_x, tr_y = windows(train_ids, starts)

    # --- model and training ---
    model = CharLM(len(vocab), args.d_model, args.heads, args.layers)
    n_params = sum(p.numel() for p in model.parameters())
    print("model: %d layers, d_model %d, %d heads, T %d, %d parameters"
          % (args.layers, args.d_model, args.heads, T, n_params))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and n != "pos"]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and n != "pos")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.99))

    def lr_at(step):  # linear warm-up, cosine decay to 10%
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        f = (step - args.warmup) / max(1, args.steps - args.warmup)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * f)))

    tv_x, tv_y = torch.from_numpy(val_x), torch.from_numpy(val_y)
    train_t = torch.from_numpy(train_ids)
    gen = torch.Generator().manual_seed(args.seed)
    offs = torch.arange(T + 1)
    t0 = time.time()
    ema = None
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        s = torch.randint(0, len(train_ids) - T - 1, (args.batch,), generator=gen)
        chunk = train_t[s[:, None] + offs]
        logits = model(chunk[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        ema = loss.item() if ema is None else 0.98 * ema + 0.02 * loss.item()
        if (step + 1) % args.eval_every == 0 or step + 1 == args.steps:
            ce = mean_ce(model, tv_x, tv_y)
            print("step %5d  train loss %.4f  val ce %.4f  val ppl %.3f  %.0fs"
                  % (step + 1, ema, ce, math.exp(ce), time.time() - t0), flush=True)
    train_time = time.time() - t0
    model.eval()

    val_ce = mean_ce(model, tv_x, tv_y)
    train_ce = mean_ce(model, torch.from_numpy(tr_x), torch.from_numpy(tr_y))
    print("trained %d steps in %.1f s; val ppl %.4f (ce %.4f nats), train-folder ppl %.4f"
          % (args.steps, train_time, math.exp(val_ce), val_ce, math.exp(train_ce)))

    # --- ONNX export and checks ---
    onnx_path = os.path.join(out, "model.onnx")
    tmp_path = onnx_path + ".tmp"
    with torch.no_grad():
        torch.onnx.export(model, (tv_x[:2],), tmp_path, opset_version=17,
                          input_names=["tokens"], output_names=["logits"],
                          dynamic_axes={"tokens": {0: "N"}, "logits": {0: "N"}},
                          do_constant_folding=True)
    m = onnx.load(tmp_path)
    onnx.checker.check_model(m, full_check=True)
    hist = dict(sorted(collections.Counter(n.op_type for n in m.graph.node).items()))
    print("ONNX op histogram:", hist)
    extra = set(hist) - ALLOWED_OPS
    if extra:
        print("train_charlm: warning: ops outside the intended set: %s" % sorted(extra),
              file=sys.stderr)
    with torch.no_grad():
        torch_logits = torch.cat([model(tv_x[i:i + 128]) for i in range(0, len(tv_x), 128)]).numpy()
    onnx_logits = np.concatenate([run_onnx_numpy(m, {"tokens": val_x[i:i + 128]})[0]
                                  for i in range(0, len(val_x), 128)])
    onnx_diff = float(np.abs(onnx_logits - torch_logits).max())
    print("ONNX (numpy interpreter) vs torch on val: max abs diff %.3g" % onnx_diff)
    if not onnx_diff < 1e-3:
        die("ONNX export does not match torch (max abs diff %g)" % onnx_diff)
    os.replace(tmp_path, onnx_path)
    if args.save_val_logits:
        save_npy(args.save_val_logits, torch_logits.astype(np.float32))

    # --- data folders and metadata ---
    save_npy(os.path.join(out, "train", "tokens.npy"), tr_x)
    save_npy(os.path.join(out, "train", "labels.npy"), tr_y)
    save_npy(os.path.join(out, "val", "tokens.npy"), val_x)
    save_npy(os.path.join(out, "val", "labels.npy"), val_y)
    with open(os.path.join(out, "vocab.json"), "w") as f:
        json.dump({str(i): c for i, c in enumerate(vocab)}, f, indent=0, ensure_ascii=True)
        f.write("\n")
    metrics = {
        "val_perplexity_per_char": round(math.exp(val_ce), 4),
        "val_mean_ce_nats": round(val_ce, 5),
        "val_bits_per_char": round(val_ce / math.log(2), 4),
        "val_windows": int(len(val_x)),
        "train_folder_perplexity_per_char": round(math.exp(train_ce), 4),
        "train_windows": int(len(tr_x)),
        "val_books": list(VAL_BOOK_NAMES),
        "train_chars": int(len(train_ids)),
        "val_chars": int(len(val_ids)),
        "vocab_size": len(vocab),
        "parameters": n_params,
        "config": {"layers": args.layers, "d_model": args.d_model, "heads": args.heads,
                   "context": T, "mlp": 4 * args.d_model, "steps": args.steps,
                   "batch": args.batch, "lr": args.lr, "warmup": args.warmup,
                   "weight_decay": 0.1, "optimizer": "AdamW(0.9, 0.99), cosine to 10%"},
        "train_time_s": round(train_time, 1),
        "threads": torch.get_num_threads(),
        "onnx_opset": 17,
        "onnx_op_histogram": hist,
        "onnx_numpy_vs_torch_max_abs_diff": onnx_diff,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "seed": args.seed,
    }
    with open(os.path.join(out, "pytorch_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
        f.write("\n")
    print("wrote", out)


if __name__ == "__main__":
    main()
