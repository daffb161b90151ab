#!/usr/bin/env python3
# Builds a hand-made INT8 (ONNX QOperator) version of the digits CNN for piqc's export tests, the
# shape piqc's quantize-int8 pass produces: QuantizeLinear -> QLinearConv x2 (relu folded into
# zp 0) -> MaxPool (u8) -> Flatten -> QLinearMatMul -> DequantizeLinear -> Add(bias) -> logits.
# Weights per output channel symmetric s8 (SPEC 3: s = max|w|/127, q in [-127, 127]); activations
# per-tensor asymmetric u8 from the min/max over the first 300 training images; bias i32.
# Usage: gen_int8_digits.py OUT_DIR   (writes OUT_DIR/digits_int8.onnx and input_x.npy: 32 images)
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
DIGITS = os.path.join(ROOT, "examples", "digits")


def act_qparams(lo, hi):
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi == lo:
        return np.float32(1.0), np.uint8(0)
    s = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.rint(-lo / s), 0, 255))
    return s, np.uint8(zp)


def weight_q(w, axis):
    red = tuple(i for i in range(w.ndim) if i != axis)
    s = (np.abs(w).max(axis=red) / 127.0).astype(np.float32)
    s[s == 0] = 1.0
    shape = [1] * w.ndim
    shape[axis] = -1
    q = np.clip(np.rint(w / s.reshape(shape)), -127, 127).astype(np.int8)
    return q, s


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    m = onnx.load(os.path.join(DIGITS, "model.onnx"))
    W = {t.name: numpy_helper.to_array(t).astype(np.float32) for t in m.graph.initializer}

    def fold(conv, bn):
        g, b, mu, var = (W[f"{bn}.{k}"] for k in ("weight", "bias", "running_mean", "running_var"))
        s = g / np.sqrt(var + 1e-5)
        return (W[f"{conv}.weight"] * s[:, None, None, None]).astype(np.float32), ((0 - mu) * s + b).astype(np.float32)

    w1, b1 = fold("features.0", "features.1")
    w2, b2 = fold("features.3", "features.4")
    wf, bf = W["fc.weight"], W["fc.bias"]

    x = torch.from_numpy(np.load(os.path.join(DIGITS, "train_x.npy"))[:300])
    with torch.no_grad():
        a1 = F.relu(F.conv2d(x, torch.from_numpy(w1), torch.from_numpy(b1), padding=1))
        a2 = F.relu(F.conv2d(a1, torch.from_numpy(w2), torch.from_numpy(b2), padding=1))
        p = F.max_pool2d(a2, 2).flatten(1)
        mm = p @ torch.from_numpy(wf).T
    sx, zx = act_qparams(x.min(), x.max())
    s1, z1 = act_qparams(0, a1.max())
    s2, z2 = act_qparams(0, a2.max())
    sm, zm = act_qparams(mm.min(), mm.max())
    q1, sw1 = weight_q(w1, 0)
    q2, sw2 = weight_q(w2, 0)
    qf, swf = weight_q(np.ascontiguousarray(wf.T), 1)  # [256, 10], per column
    bq1 = np.rint(b1 / (sx * sw1)).astype(np.int32)
    bq2 = np.rint(b2 / (s1 * sw2)).astype(np.int32)

    inits = {
        "x_scale": np.float32(sx), "x_zp": zx, "a1_scale": np.float32(s1), "a1_zp": z1,
        "a2_scale": np.float32(s2), "a2_zp": z2, "mm_scale": np.float32(sm), "mm_zp": zm,
        "w1_q": q1, "w1_scale": sw1, "w1_zp": np.zeros(8, np.int8), "b1_q": bq1,
        "w2_q": q2, "w2_scale": sw2, "w2_zp": np.zeros(16, np.int8), "b2_q": bq2,
        "fc_q": qf, "fc_scale": swf, "fc_zp": np.zeros(10, np.int8), "fc_bias": bf,
    }
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1])
    nodes = [
        helper.make_node("QuantizeLinear", ["input", "x_scale", "x_zp"], ["x_q"], name="quant_in"),
        helper.make_node("QLinearConv", ["x_q", "x_scale", "x_zp", "w1_q", "w1_scale", "w1_zp",
                                         "a1_scale", "a1_zp", "b1_q"], ["a1_q"], name="conv1", **conv),
        helper.make_node("QLinearConv", ["a1_q", "a1_scale", "a1_zp", "w2_q", "w2_scale", "w2_zp",
                                         "a2_scale", "a2_zp", "b2_q"], ["a2_q"], name="conv2", **conv),
        helper.make_node("MaxPool", ["a2_q"], ["p_q"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p_q"], ["f_q"], name="flatten", axis=1),
        helper.make_node("QLinearMatMul", ["f_q", "a2_scale", "a2_zp", "fc_q", "fc_scale", "fc_zp",
                                           "mm_scale", "mm_zp"], ["mm_q"], name="fc"),
        helper.make_node("DequantizeLinear", ["mm_q", "mm_scale", "mm_zp"], ["mm"], name="dequant_out"),
        helper.make_node("Add", ["mm", "fc_bias"], ["logits"], name="fc_bias_add"),
    ]
    graph = helper.make_graph(
        nodes, "digits_int8",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("mm_q", TensorProto.UINT8, ["N", 10]),
         helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)],
                              producer_name="piqc-tests")
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(out, "digits_int8.onnx"))
    np.save(os.path.join(out, "input_x.npy"), np.load(os.path.join(DIGITS, "test_x.npy"))[:32])


if __name__ == "__main__":
    main()
