# Exports the small ONNX models used by piqc's model tests, each into tests/models/<name>/ with
# model.onnx, input_<name>.npy / output_<name>.npy (PyTorch reference, eval mode) and meta.json.
# Deterministic (fixed seeds). Run with /usr/bin/python3 (python3-torch, python3-onnx). Usage: export_models.py [name...]
import collections
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn

HERE = os.path.dirname(os.path.abspath(__file__))


def perturb_norms(model, gen):
    """Gives BatchNorm/LayerNorm non-trivial affine parameters and running statistics."""
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm2d, nn.LayerNorm)):
            with torch.no_grad():
                m.weight.copy_(1.0 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.copy_(0.2 * torch.randn(m.running_mean.shape, generator=gen))
                    m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=gen))


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(20, 32)
        self.fc2 = nn.Linear(32, 5)

    def forward(self, x):
        return self.fc2(torch.relu(self.fc1(x)))


class CNNBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.MaxPool2d(2),                                    # 8 x 6 x 6
            nn.Conv2d(8, 16, 3, stride=1, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.AvgPool2d(2),                                    # 16 x 3 x 3
            nn.Conv2d(16, 16, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),                            # GlobalAveragePool
            nn.Flatten(),
            nn.Linear(16, 10))

    def forward(self, x):
        return self.body(x)


class TinyTransformer(nn.Module):
    def __init__(self, vocab=50, d_model=32, nhead=4, ff=64, layers=2, max_len=64, n_out=7):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.pos = nn.Parameter(0.1 * torch.randn(1, max_len, d_model))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=ff, dropout=0.0,
                                           batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, n_out)

    def forward(self, tokens):
        h = self.embed(tokens) + self.pos[:, :tokens.shape[1]]
        return self.head(self.encoder(h))


class RNNHead(nn.Module):
    def __init__(self, kind, input_size=16, hidden=32, layers=2, bidirectional=False, n_out=6):
        super().__init__()
        cls = {"lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = cls(input_size, hidden, num_layers=layers, bidirectional=bidirectional)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), n_out)

    def forward(self, x):  # x: [seq, batch, input]
        y, _ = self.rnn(x)
        return self.fc(y)


def spec_mlp(gen):
    return dict(model=MLP(), opset=13, inputs={"x": torch.randn(4, 20, generator=gen)},
                outputs=["y"], dynamic={"x": {0: "N"}, "y": {0: "N"}}, rtol=1e-4, atol=1e-5)


def spec_cnn_bn(gen):
    return dict(model=CNNBN(), opset=13, inputs={"x": torch.randn(2, 3, 12, 12, generator=gen)},
                outputs=["logits"], dynamic={"x": {0: "N"}, "logits": {0: "N"}},
                rtol=1e-4, atol=1e-5, keep_bn=True)


def spec_transformer(opset):
    def spec(gen):
        tokens = torch.randint(0, 50, (2, 8), generator=gen, dtype=torch.int64)
        return dict(model=TinyTransformer(), opset=opset, inputs={"tokens": tokens},
                    outputs=["logits"],
                    dynamic={"tokens": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}},
                    rtol=1e-4, atol=1e-4)
    return spec


def spec_lstm(gen):
    return dict(model=RNNHead("lstm", 16, 32, layers=2), opset=13,
                inputs={"x": torch.randn(10, 3, 16, generator=gen)}, outputs=["y"],
                dynamic={"x": {0: "seq", 1: "batch"}, "y": {0: "seq", 1: "batch"}},
                rtol=1e-4, atol=1e-4)


def spec_bilstm(gen):
    return dict(model=RNNHead("lstm", 16, 32, layers=1, bidirectional=True), opset=13,
                inputs={"x": torch.randn(10, 3, 16, generator=gen)}, outputs=["y"],
                dynamic={"x": {0: "seq", 1: "batch"}, "y": {0: "seq", 1: "batch"}},
                rtol=1e-4, atol=1e-4)


def spec_gru(gen):
    return dict(model=RNNHead("gru", 16, 24, layers=1), opset=13,
                inputs={"x": torch.randn(10, 3, 16, generator=gen)}, outputs=["y"],
                dynamic={"x": {0: "seq", 1: "batch"}, "y": {0: "seq", 1: "batch"}},
                rtol=1e-4, atol=1e-4)


SPECS = collections.OrderedDict([
    ("mlp", spec_mlp),
    ("cnn_bn", spec_cnn_bn),
    ("transformer17", spec_transformer(17)),
    ("transformer13", spec_transformer(13)),
    ("lstm", spec_lstm),
    ("bilstm", spec_bilstm),
    ("gru", spec_gru),
])


def export(name, make):
    torch.manual_seed(0)  # same weights for both transformer opsets
    gen = torch.Generator().manual_seed(1)
    s = make(gen)
    model = s["model"]
    perturb_norms(model, gen)
    model.eval()
    out_dir = os.path.join(HERE, name)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model.onnx")
    in_names = list(s["inputs"])
    args = tuple(s["inputs"][k] for k in in_names)
    # PRESERVE + eval mode skips the eval peephole that folds BatchNorm into Conv.
    training = torch.onnx.TrainingMode.PRESERVE if s.get("keep_bn") else torch.onnx.TrainingMode.EVAL
    torch.onnx.export(model, args, path, opset_version=s["opset"], input_names=in_names,
                      output_names=s["outputs"], dynamic_axes=s["dynamic"], training=training,
                      do_constant_folding=not s.get("keep_bn", False))
    with torch.no_grad():
        outs = model(*args)
    if isinstance(outs, torch.Tensor):
        outs = (outs,)

    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    hist = collections.Counter(n.op_type for n in m.graph.node)
    if s.get("keep_bn") and hist["BatchNormalization"] == 0:
        sys.exit(f"{name}: BatchNormalization was folded away")
    if name == "transformer17" and hist["LayerNormalization"] == 0:
        print(f"{name}: NOTE: opset 17 export did not produce LayerNormalization")

    for k in in_names:
        np.save(os.path.join(out_dir, f"input_{k}.npy"), s["inputs"][k].numpy())
    for k, t in zip(s["outputs"], outs):
        np.save(os.path.join(out_dir, f"output_{k}.npy"), t.numpy())
    meta = {
        "inputs": in_names,
        "outputs": s["outputs"],
        "input_shapes": [list(s["inputs"][k].shape) for k in in_names],
        "input_dtypes": [str(s["inputs"][k].numpy().dtype) for k in in_names],
        "output_shapes": [list(t.shape) for t in outs],
        "rtol": s["rtol"],
        "atol": s["atol"],
        "opset": s["opset"],
        "ops": sorted(hist),
        "op_counts": dict(sorted(hist.items())),
        "torch": torch.__version__,
    }
    with open(os.path.join(out_dir, "meta.json"), "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    size = sum(os.path.getsize(os.path.join(out_dir, f)) for f in os.listdir(out_dir))
    print(f"{name}: opset {s['opset']}, {len(m.graph.node)} nodes, {size} bytes")
    print("  " + ", ".join(f"{op} {n}" for op, n in sorted(hist.items())))


def main():
    torch.set_num_threads(1)
    names = sys.argv[1:] or list(SPECS)
    for n in names:
        if n not in SPECS:
            sys.exit(f"unknown model '{n}'; known: {' '.join(SPECS)}")
        export(n, SPECS[n])


if __name__ == "__main__":
    main()
