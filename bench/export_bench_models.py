# Exports the larger models the latency benchmarks use (random weights; latency only) into a
# directory given on the command line: a transformer encoder and a wide MLP. Run with /usr/bin/python3.
# Usage: export_bench_models.py OUT_DIR      (writes <name>/model.onnx and <name>/input_<in>.npy)
import os
import sys

import numpy as np
import torch
import torch.nn as nn


class Encoder(nn.Module):
    """4-layer transformer encoder, d 256, 4 heads, feed-forward 1024 (MatMul-heavy)."""

    def __init__(self, vocab=1000, d=256, heads=4, ff=1024, layers=4, max_len=128, n_out=256):
        super().__init__()
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Parameter(0.02 * torch.randn(1, max_len, d))
        layer = nn.TransformerEncoderLayer(d, heads, dim_feedforward=ff, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)
        self.head = nn.Linear(d, n_out)

    def forward(self, tokens):
        h = self.embed(tokens) + self.pos[:, : tokens.shape[1]]
        return self.head(self.encoder(h))


class WideMLP(nn.Module):
    """3 linear layers of width 2048 at batch 1: every layer is a matrix-vector product."""

    def __init__(self, d_in=1024, width=2048, n_out=1000):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, width), nn.ReLU(), nn.Linear(width, width),
                                  nn.ReLU(), nn.Linear(width, n_out))

    def forward(self, x):
        return self.body(x)


def export(out_dir, name, model, inputs, in_names):
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    model.eval()
    with torch.no_grad():  # nn.TransformerEncoder deep-copies one layer: make every layer distinct
        for prm in model.parameters():
            prm.add_(0.02 * torch.randn(prm.shape))
    torch.onnx.export(model, tuple(inputs), os.path.join(d, "model.onnx"), opset_version=17,
                      input_names=in_names, output_names=["y"])
    for n, t in zip(in_names, inputs):
        np.save(os.path.join(d, f"input_{n}.npy"), t.numpy())
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {d}")


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: export_bench_models.py OUT_DIR")
    torch.manual_seed(0)
    out = sys.argv[1]
    export(out, "encoder_d256", Encoder(), [torch.randint(0, 1000, (1, 128))], ["tokens"])
    export(out, "mlp_2048", WideMLP(), [torch.randn(1, 1024)], ["x"])


if __name__ == "__main__":
    main()
