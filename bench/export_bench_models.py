# Exports the larger models the latency benchmarks use (random weights; latency only) into a
# directory given on the command line: a transformer encoder, a wide MLP and torchvision CNNs
# (mobilenet_v3_small/large, resnet18, efficientnet_b0; python3-torchvision) and a segmentation
# network with bilinear upsampling (lraspp_mobilenet_v3_large, 320x320). Run with /usr/bin/python3.
# Usage: export_bench_models.py OUT_DIR [NAME ...]   (default: encoder_d256 mlp_2048)
# Writes <name>/model.onnx, <name>/input_<in>.npy (batch 1) and, for the CNNs, input_<in>_b8.npy,
# plus PyTorch's outputs on them (torch_<out>.npy, torch_<out>_b8.npy) for checking piqc.
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
    with torch.no_grad():
        np.save(os.path.join(d, "torch_y.npy"), model(*inputs).numpy())
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {d}")


CNNS = ("mobilenet_v3_small", "mobilenet_v3_large", "resnet18", "efficientnet_b0")


def export_cnn(out_dir, name, size=224):
    """A torchvision architecture with its own random init (weights=None), eval mode, opset 13
    (HardSwish / SiLU come out decomposed: HardSigmoid + Mul, Sigmoid + Mul), dynamic batch."""
    try:
        import torchvision
    except ImportError:
        sys.exit("export_bench_models: %s needs python3-torchvision (apt-get install python3-torchvision)"
                 % name)
    model = getattr(torchvision.models, name)(weights=None).eval()
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    x1 = torch.randn(1, 3, size, size)
    x8 = torch.randn(8, 3, size, size)
    torch.onnx.export(model, x1, os.path.join(d, "model.onnx"), opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    with torch.no_grad():
        for x, sfx in ((x1, ""), (x8, "_b8")):
            np.save(os.path.join(d, f"input_input{sfx}.npy"), x.numpy())
            np.save(os.path.join(d, f"torch_logits{sfx}.npy"), model(x).numpy())
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {d}")


SEGS = ("lraspp_mobilenet_v3_large",)


class SegOut(nn.Module):
    """torchvision's segmentation models return a dict: keep its "out" tensor."""

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)["out"]


def export_seg(out_dir, name, size=320):
    """A torchvision segmentation architecture (random init, weights_backbone=None), eval mode,
    opset 17 (bilinear F.interpolate -> Resize linear), dynamic batch; output [N, 21, size, size]."""
    try:
        import torchvision
    except ImportError:
        sys.exit("export_bench_models: %s needs python3-torchvision" % name)
    net = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None)
    model = SegOut(net).eval()
    d = os.path.join(out_dir, name)
    os.makedirs(d, exist_ok=True)
    x1 = torch.randn(1, 3, size, size)
    x8 = torch.randn(8, 3, size, size)
    torch.onnx.export(model, x1, os.path.join(d, "model.onnx"), opset_version=17,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
    with torch.no_grad():
        for x, sfx in ((x1, ""), (x8, "_b8")):
            np.save(os.path.join(d, f"input_input{sfx}.npy"), x.numpy())
            np.save(os.path.join(d, f"torch_logits{sfx}.npy"), model(x).numpy())
    print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters -> {d}")


def main():
    if len(sys.argv) < 2:
        sys.exit("usage: export_bench_models.py OUT_DIR [NAME ...]  (names: encoder_d256 mlp_2048 "
                 + " ".join(CNNS + SEGS) + ")")
    out = sys.argv[1]
    names = sys.argv[2:] or ["encoder_d256", "mlp_2048"]
    for name in names:
        torch.manual_seed(0)  # each model the same whatever else is exported with it
        if name == "encoder_d256":
            export(out, name, Encoder(), [torch.randint(0, 1000, (1, 128))], ["tokens"])
        elif name == "mlp_2048":
            export(out, name, WideMLP(), [torch.randn(1, 1024)], ["x"])
        elif name in CNNS:
            export_cnn(out, name)
        elif name in SEGS:
            export_seg(out, name)
        else:
            sys.exit(f"export_bench_models: unknown model '{name}'")


if __name__ == "__main__":
    main()
