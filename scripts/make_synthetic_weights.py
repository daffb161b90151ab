#!/usr/bin/python3
# Writes small ONNX models whose only weight is a synthetic matrix (Gaussian or Laplace, fixed
# seed), so `piqc quantize` can report quality on textbook distributions beside real weights.
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def write(path, w):
    k, n = w.shape
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", k])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", n])
    node = helper.make_node("MatMul", ["x", "w"], ["y"], name="matmul")
    graph = helper.make_graph([node], "synthetic", [x], [y], [numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 7
    onnx.checker.check_model(model)
    onnx.save(model, path)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "."
    size = int(sys.argv[2]) if len(sys.argv) > 2 else 1024
    rng = np.random.default_rng(0)
    write(f"{out}/gaussian.onnx", rng.standard_normal((size, size)).astype(np.float32) * 0.02)
    write(f"{out}/laplace.onnx", rng.laplace(0.0, 0.02 / np.sqrt(2), (size, size)).astype(np.float32))


if __name__ == "__main__":
    main()
