# Trains a small CNN (conv-bn-relu x2, max-pool, flatten, linear) on scikit-learn's 8x8 digits
# and exports it to model.onnx (opset 13, BatchNormalization kept), plus .npy data and the
# PyTorch test accuracy that piqc's run of the same model is compared with. Run with /usr/bin/python3.
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

HERE = os.path.dirname(os.path.abspath(__file__))
OPSET = 13
SEED = 0


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1, bias=False),
            nn.BatchNorm2d(8),
            nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, bias=False),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16 x 4 x 4
        )
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.flatten(self.features(x)))


def main():
    torch.manual_seed(SEED)
    np.random.seed(SEED)
    torch.set_num_threads(1)

    digits = load_digits()
    x = (digits.images.astype(np.float32) / 16.0).reshape(-1, 1, 8, 8)
    y = digits.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        x, y, test_size=360, random_state=SEED, stratify=y)
    assert train_x.shape == (1437, 1, 8, 8) and test_x.shape == (360, 1, 8, 8)

    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss_fn = nn.CrossEntropyLoss()
    tx, ty = torch.from_numpy(train_x), torch.from_numpy(train_y)
    gen = torch.Generator().manual_seed(SEED)
    for epoch in range(30):
        model.train()
        perm = torch.randperm(len(tx), generator=gen)
        total = 0.0
        for i in range(0, len(tx), 64):
            idx = perm[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model(tx[idx]), ty[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        if epoch % 10 == 9:
            print(f"epoch {epoch + 1}: train loss {total / len(tx):.4f}")

    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(test_x))
    acc = float((logits.argmax(1).numpy() == test_y).mean())
    print(f"test accuracy {acc:.4f} ({int(round(acc * 360))}/360)")

    # TrainingMode.PRESERVE with the model in eval mode exports inference-mode BatchNormalization
    # without the eval peephole that would fold BN into the preceding Conv.
    path = os.path.join(HERE, "model.onnx")
    torch.onnx.export(
        model, torch.from_numpy(test_x[:1]), path,
        opset_version=OPSET, input_names=["input"], output_names=["logits"],
        dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
        training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)

    m = onnx.load(path)
    onnx.checker.check_model(m, full_check=True)
    ops = [n.op_type for n in m.graph.node]
    print("onnx ops:", " ".join(ops))
    n_bn = ops.count("BatchNormalization")
    if n_bn != 2:
        sys.exit(f"error: expected 2 BatchNormalization nodes in the export, found {n_bn}")
    print(f"BatchNormalization nodes kept: {n_bn}")

    np.save(os.path.join(HERE, "train_x.npy"), train_x)
    np.save(os.path.join(HERE, "train_y.npy"), train_y)
    np.save(os.path.join(HERE, "test_x.npy"), test_x)
    np.save(os.path.join(HERE, "labels.npy"), test_y)
    np.save(os.path.join(HERE, "test_logits.npy"), logits.numpy())  # PyTorch reference outputs
    with open(os.path.join(HERE, "pytorch_accuracy.json"), "w") as f:
        json.dump({"test_accuracy": acc, "n_test": int(len(test_y)),
                   "torch": torch.__version__, "opset": OPSET}, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
