#!/usr/bin/python3
"""Writes tests/data/train/*.npy: reference values for runtime/loss.c and runtime/optim.c from
PyTorch (losses and their autograd gradients in float64 from f32 inputs; optimizer trajectories
with torch.optim in float32). Run: /usr/bin/python3 scripts/gen_train_fixtures.py"""
import math
import os

import numpy as np
import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "train")
rng = np.random.default_rng(20240607)


def save(name, a):
    np.save(os.path.join(OUT, name + ".npy"), np.array(a, order="C"))  # keeps rank 0


def f32(shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def leaf(a):
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


# ---- losses: inputs f32, reference in float64, loss as f64 scalar, gradient as f64 ----

def gen_ce(name, logits, labels):
    x = leaf(logits)
    c = logits.shape[-1]
    loss = F.cross_entropy(x.reshape(-1, c), torch.tensor(labels.reshape(-1)), reduction="mean")
    loss.backward()
    save(name + "_logits", logits)
    save(name + "_labels", labels.astype(np.int64))
    save(name + "_loss", np.array(loss.item()))
    save(name + "_grad", x.grad.numpy())


def gen_mse(name, pred, target):
    p = leaf(pred)
    loss = F.mse_loss(p, torch.tensor(target, dtype=torch.float64), reduction="mean")
    loss.backward()
    save(name + "_pred", pred)
    save(name + "_target", target)
    save(name + "_loss", np.array(loss.item()))
    save(name + "_grad", p.grad.numpy())


def kd_torch(zt, zs, T, reverse):
    """T^2 * KL(p_t || p_s) (forward) averaged over positions, via kl_div with log_target."""
    c = zs.shape[-1]
    lt = F.log_softmax(zt.reshape(-1, c) / T, dim=-1)
    ls = F.log_softmax(zs.reshape(-1, c) / T, dim=-1)
    # kl_div(input, target) = sum target * (log target - input): KL(target || input).
    kl = F.kl_div(lt, ls, reduction="batchmean", log_target=True) if reverse else \
        F.kl_div(ls, lt, reduction="batchmean", log_target=True)
    return T * T * kl


def gen_kd(name, teacher, student, T, reverse):
    s = leaf(student)
    loss = kd_torch(torch.tensor(teacher, dtype=torch.float64), s, T, reverse)
    loss.backward()
    save(name + "_teacher", teacher)
    save(name + "_student", student)
    save(name + "_cfg", np.array([T, 1.0 if reverse else 0.0]))
    save(name + "_loss", np.array(loss.item()))
    save(name + "_grad", s.grad.numpy())


def cos_loss(t, s):
    return (1.0 - F.cosine_similarity(t, s, dim=-1, eps=1e-8)).mean()


def gen_feature(name, pairs):
    """Mean over pairs of mean over positions of 1 - cos."""
    leaves, terms = [], []
    for i, (t, s) in enumerate(pairs):
        sl = leaf(s)
        leaves.append(sl)
        terms.append(cos_loss(torch.tensor(t, dtype=torch.float64), sl))
        save(f"{name}_t{i}", t)
        save(f"{name}_s{i}", s)
    loss = sum(terms) / len(terms)
    loss.backward()
    save(name + "_loss", np.array(loss.item()))
    for i, sl in enumerate(leaves):
        save(f"{name}_g{i}", sl.grad.numpy())


def gen_total():
    """Defaults: CE + 0.5 KD (T = 1, forward) + 0.2 feature over two pairs."""
    logits, teacher = f32((3, 4, 7), 2.0), f32((3, 4, 7), 2.0)
    labels = rng.integers(0, 7, (3, 4)).astype(np.int64)
    ft = [f32((3, 4, 8)), f32((6, 5))]
    fs = [(f + 0.7 * f32(f.shape)).astype(np.float32) for f in ft]
    z = leaf(logits)
    sl = [leaf(s) for s in fs]
    task = F.cross_entropy(z.reshape(-1, 7), torch.tensor(labels.reshape(-1)))
    kd = kd_torch(torch.tensor(teacher, dtype=torch.float64), z, 1.0, False)
    feat = sum(cos_loss(torch.tensor(t, dtype=torch.float64), s) for t, s in zip(ft, sl)) / 2
    total = 1.0 * task + 0.5 * kd + 0.2 * feat
    total.backward()
    save("total_logits", logits)
    save("total_teacher", teacher)
    save("total_labels", labels)
    for i in range(2):
        save(f"total_t{i}", ft[i])
        save(f"total_s{i}", fs[i])
        save(f"total_g{i}", sl[i].grad.numpy())
    save("total_values", np.array([task.item(), kd.item(), feat.item(), total.item()]))
    save("total_grad", z.grad.numpy())


# ---- optimizers: params p0 [3,4] and p1 [5] as one flat row of 17, 5 steps of fixed grads ----

SHAPES = [(3, 4), (5,)]
NSTEP = 5
# cfg row: kind(0 sgd, 1 adamw), lr, weight_decay, momentum, dampening, nesterov, beta1, beta2,
#          eps, max_grad_norm, schedule(0 constant, 1 cosine), warmup_steps, total_steps
CASES = {
    "sgd_plain": [0, 0.1, 0.0, 0.0, 0.0, 0, 0, 0, 0, 0.0, 0, 0, 0],
    "sgd_momentum": [0, 0.1, 0.01, 0.9, 0.0, 0, 0, 0, 0, 0.0, 0, 0, 0],
    "sgd_nesterov": [0, 0.05, 0.02, 0.9, 0.0, 1, 0, 0, 0, 0.0, 0, 0, 0],
    "sgd_dampening": [0, 0.1, 0.0, 0.8, 0.3, 0, 0, 0, 0, 0.0, 0, 0, 0],
    "sgd_clip_cosine": [0, 0.2, 0.01, 0.9, 0.0, 0, 0, 0, 0, 1.5, 1, 0, 5],
    "adamw": [1, 0.01, 0.01, 0, 0, 0, 0.9, 0.999, 1e-8, 0.0, 0, 0, 0],
    "adamw_wd": [1, 0.05, 0.1, 0, 0, 0, 0.8, 0.99, 1e-6, 0.0, 0, 0, 0],
    "adamw_clip_warmup_cosine": [1, 0.02, 0.01, 0, 0, 0, 0.9, 0.999, 1e-8, 1.0, 1, 2, 6],
    "adamw_warmup_constant": [1, 0.02, 0.0, 0, 0, 0, 0.9, 0.999, 1e-8, 0.0, 0, 3, 0],
}


def lr_lambda(cfg):
    warm, sched, total = int(cfg[11]), int(cfg[10]), int(cfg[12])

    def f(k):
        if k < warm:
            return (k + 1) / warm
        if sched == 0:
            return 1.0
        prog = min(1.0, (k - warm) / (total - warm))
        return 0.5 * (1.0 + math.cos(math.pi * prog))
    return f


def gen_optim():
    p0 = f32(17)
    grads = np.stack([f32(17, 0.8 + 0.3 * k) for k in range(NSTEP)])
    save("optim_params0", p0)
    save("optim_grads", grads)
    names = []
    for name, cfg in CASES.items():
        names.append(name)
        ps, off = [], 0
        for sh in SHAPES:
            n = int(np.prod(sh))
            ps.append(torch.tensor(p0[off:off + n].reshape(sh), requires_grad=True))
            off += n
        if cfg[0] == 0:
            opt = torch.optim.SGD(ps, lr=cfg[1], weight_decay=cfg[2], momentum=cfg[3],
                                  dampening=cfg[4], nesterov=bool(cfg[5]))
        else:
            opt = torch.optim.AdamW(ps, lr=cfg[1], weight_decay=cfg[2], betas=(cfg[6], cfg[7]),
                                    eps=cfg[8])
        if cfg[10] == 1 and cfg[11] == 0:  # plain cosine: torch's own scheduler
            sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(cfg[12]), eta_min=0)
        else:
            sch = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))
        traj, norms, lrs = [p0.copy()], [], []
        for k in range(NSTEP):
            off = 0
            for p, sh in zip(ps, SHAPES):
                n = int(np.prod(sh))
                p.grad = torch.tensor(grads[k, off:off + n].reshape(sh))
                off += n
            if cfg[9] > 0:
                norms.append(float(torch.nn.utils.clip_grad_norm_(ps, cfg[9])))
            else:
                norms.append(float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in ps))))
            lrs.append(opt.param_groups[0]["lr"])
            opt.step()
            sch.step()
            traj.append(np.concatenate([p.detach().numpy().reshape(-1) for p in ps]))
        save(f"optim_{name}_cfg", np.array(cfg, dtype=np.float64))
        save(f"optim_{name}_traj", np.stack(traj).astype(np.float32))
        save(f"optim_{name}_norms", np.array(norms))
        save(f"optim_{name}_lrs", np.array(lrs))

    # clip_grad_norm_ alone: two tensors, max_norm 0.75.
    g = [f32((4, 3), 2.0), f32((7,), 2.0)]
    ts = [torch.zeros(x.shape, requires_grad=True) for x in g]
    for t, x in zip(ts, g):
        t.grad = torch.tensor(x)
    total = float(torch.nn.utils.clip_grad_norm_(ts, 0.75))
    save("clip_g0", g[0])
    save("clip_g1", g[1])
    save("clip_norm", np.array(total))
    save("clip_out0", ts[0].grad.numpy())
    save("clip_out1", ts[1].grad.numpy())


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    gen_ce("ce", f32((4, 3, 5), 2.0), rng.integers(0, 5, (4, 3)))
    gen_ce("ce_vec", f32((6,)), np.array(4))
    big = f32((5, 9), 1.0)
    big[:, 0] += 1000.0
    big[1, 3] = -1000.0
    gen_ce("ce_big", big, np.array([0, 3, 8, 0, 2]))
    gen_mse("mse", f32((3, 7)), f32((3, 7)))
    t, s = f32((2, 3, 6), 2.0), f32((2, 3, 6), 2.0)
    gen_kd("kd_fwd_t1", t, s, 1.0, False)
    gen_kd("kd_fwd_t2", t, s, 2.5, False)
    gen_kd("kd_rev_t1", t, s, 1.0, True)
    gen_kd("kd_rev_t3", t, s, 3.0, True)
    ft = [f32((2, 4, 8)), f32((5, 16))]
    gen_feature("feat", [(ft[0], (ft[0] + 0.5 * f32((2, 4, 8))).astype(np.float32)),
                         (ft[1], f32((5, 16)))])
    gen_total()
    gen_optim()


if __name__ == "__main__":
    main()
