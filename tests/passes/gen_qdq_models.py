#!/usr/bin/env python3
# QDQ models shaped like onnxruntime's static quantizer writes them (Debian's libonnx-testdata has
# none), for the fold-qdq tests: QuantizeLinear/DequantizeLinear around every Conv/MatMul,
# per-channel s8 weights (axis 0 for Conv, axis 1 for MatMul), i32 bias with scale s_x*s_w, a Relu
# before the QuantizeLinear, and one Conv with a plain f32 bias and a per-tensor weight.
# Usage: gen_qdq_models.py OUT_DIR  -> qdq_conv.onnx, qdq_matmul.onnx, input_conv.npy,
#        input_matmul.npy (deterministic; the output DequantizeLinear scale is named y_scale)
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def wq(w, axis):
    if axis is None:
        s = np.float32(np.abs(w).max() / 127.0)
        return np.clip(np.rint(w / s), -127, 127).astype(np.int8), np.asarray(s, np.float32)
    red = tuple(i for i in range(w.ndim) if i != axis)
    s = (np.abs(w).max(axis=red) / 127.0).astype(np.float32)
    shape = [1] * w.ndim
    shape[axis] = -1
    return np.clip(np.rint(w / s.reshape(shape)), -127, 127).astype(np.int8), s


def save(out, name, nodes, inits, inp, outp):
    g = helper.make_graph(nodes, name, [inp], [outp],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], producer_name="onnx.quantization-like")
    m.ir_version = 7
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, name + ".onnx"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)
    # --- Conv: Q -> DQ -> Conv(DQ w per-channel, DQ bias i32) -> Relu -> Q(zp 0) -> DQ -> Conv(DQ w
    # per-tensor, f32 bias) -> Q -> DQ -> y
    w1 = rng.normal(0, 0.3, (6, 3, 3, 3)).astype(np.float32)
    w2 = rng.normal(0, 0.2, (4, 6, 1, 1)).astype(np.float32)
    b1 = rng.normal(0, 0.1, 6).astype(np.float32)
    b2 = rng.normal(0, 0.1, 4).astype(np.float32)
    q1, s1 = wq(w1, 0)
    q2, s2 = wq(w2, None)
    sx, zx = np.float32(2.0 / 255), np.uint8(128)
    sa, sy, zy = np.float32(0.02), np.float32(0.03), np.uint8(120)
    inits = {"x_scale": sx, "x_zp": zx, "w1_q": q1, "w1_scale": s1, "w1_zp": np.zeros(6, np.int8),
             "b1_q": np.rint(b1 / (sx * s1)).astype(np.int32), "b1_scale": (sx * s1).astype(np.float32),
             "a_scale": sa, "a_zp": np.uint8(0), "w2_q": q2, "w2_scale": s2, "w2_zp": np.int8(0),
             "b2": b2, "y_scale": sy, "y_zp": zy}
    conv = dict(kernel_shape=[3, 3], pads=[1, 1, 1, 1])
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"]),
        helper.make_node("DequantizeLinear", ["w1_q", "w1_scale", "w1_zp"], ["w1_dq"], axis=0),
        helper.make_node("DequantizeLinear", ["b1_q", "b1_scale"], ["b1_dq"], axis=0),
        helper.make_node("Conv", ["x_dq", "w1_dq", "b1_dq"], ["c1"], name="conv1", **conv),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("QuantizeLinear", ["r1", "a_scale", "a_zp"], ["a_q"]),
        helper.make_node("DequantizeLinear", ["a_q", "a_scale", "a_zp"], ["a_dq"]),
        helper.make_node("DequantizeLinear", ["w2_q", "w2_scale", "w2_zp"], ["w2_dq"]),
        helper.make_node("Conv", ["a_dq", "w2_dq", "b2"], ["c2"], name="conv2", kernel_shape=[1, 1]),
        helper.make_node("QuantizeLinear", ["c2", "y_scale", "y_zp"], ["y_q"]),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["y"]),
    ]
    save(out, "qdq_conv", nodes, inits,
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8, 8]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4, 8, 8]))
    np.save(os.path.join(out, "input_conv.npy"), rng.uniform(-1, 1, (2, 3, 8, 8)).astype(np.float32))
    # --- MatMul: Q -> DQ -> MatMul(DQ w [16, 8] per-column axis 1) -> Q(i8) -> DQ -> y
    w = rng.normal(0, 0.3, (16, 8)).astype(np.float32)
    q, s = wq(w, 1)
    inits = {"x_scale": np.float32(0.05), "x_zp": np.uint8(100), "w_q": q, "w_scale": s,
             "w_zp": np.zeros(8, np.int8), "y_scale": np.float32(0.04), "y_zp": np.int8(-3)}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"]),
        helper.make_node("DequantizeLinear", ["x_q", "x_scale", "x_zp"], ["x_dq"]),
        helper.make_node("DequantizeLinear", ["w_q", "w_scale", "w_zp"], ["w_dq"], axis=1),
        helper.make_node("MatMul", ["x_dq", "w_dq"], ["m"], name="fc"),
        helper.make_node("QuantizeLinear", ["m", "y_scale", "y_zp"], ["y_q"]),
        helper.make_node("DequantizeLinear", ["y_q", "y_scale", "y_zp"], ["y"]),
    ]
    save(out, "qdq_matmul", nodes, inits,
         helper.make_tensor_value_info("x", TensorProto.FLOAT, [5, 16]),
         helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 8]))
    np.save(os.path.join(out, "input_matmul.npy"), rng.uniform(-4, 4, (5, 16)).astype(np.float32))
    qoperator_contrib(out, rng)


def qoperator_contrib(out, rng):
    """QOperator model with onnxruntime's com.microsoft ops, as its static quantizer writes them:
    QuantizeLinear -> QLinearConv -> QLinearGlobalAveragePool -> QLinearMul (squeeze-excite) ->
    QLinearAdd (residual), u8 outputs y and g."""
    w = rng.normal(0, 0.2, (16, 8, 3, 3)).astype(np.float32)
    q, s = wq(w, 0)
    sx, zx = np.float32(0.02), np.uint8(110)
    sa, za = np.float32(0.05), np.uint8(90)
    b = rng.normal(0, 0.2, 16).astype(np.float32)
    inits = {"x_scale": sx, "x_zp": zx, "w_q": q, "w_scale": s, "w_zp": np.zeros(16, np.int8),
             "a_scale": sa, "a_zp": za, "b_q": np.rint(b / (sx * s)).astype(np.int32),
             "g_scale": np.float32(0.011), "g_zp": np.uint8(70),
             "m_scale": np.float32(0.006), "m_zp": np.uint8(128),
             "y_scale": np.float32(0.07), "y_zp": np.uint8(100)}
    ms = "com.microsoft"
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "x_scale", "x_zp"], ["x_q"]),
        helper.make_node("QLinearConv", ["x_q", "x_scale", "x_zp", "w_q", "w_scale", "w_zp",
                                         "a_scale", "a_zp", "b_q"], ["a"], name="conv",
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("QLinearGlobalAveragePool", ["a", "a_scale", "a_zp", "g_scale", "g_zp"],
                         ["g"], name="gap", domain=ms, channels_last=0),
        helper.make_node("QLinearMul", ["a", "a_scale", "a_zp", "g", "g_scale", "g_zp", "m_scale",
                                        "m_zp"], ["m"], name="se", domain=ms),
        helper.make_node("QLinearAdd", ["m", "m_scale", "m_zp", "a", "a_scale", "a_zp", "y_scale",
                                        "y_zp"], ["y"], name="residual", domain=ms),
    ]
    g = helper.make_graph(nodes, "qop_contrib",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 8, 10, 10])],
                          [helper.make_tensor_value_info("y", TensorProto.UINT8, [2, 16, 10, 10]),
                           helper.make_tensor_value_info("g", TensorProto.UINT8, [2, 16, 1, 1])],
                          [numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13), helper.make_opsetid(ms, 1)],
                          producer_name="onnx.quantization-like")
    m.ir_version = 7
    onnx.save(m, os.path.join(out, "qop_contrib.onnx"))
    np.save(os.path.join(out, "input_contrib.npy"), rng.uniform(-2, 2.5, (2, 8, 10, 10)).astype(np.float32))


if __name__ == "__main__":
    main()
