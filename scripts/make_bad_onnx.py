#!/usr/bin/python3
# Writes the corpus of malformed / unsupported ONNX files in tests/data/bad_onnx/ and its
# expected.txt ("<file> <exit code> <message substring>"), checked by tests/frontends/test_onnx_bad.c.
# Run with Debian's /usr/bin/python3 (needs python3-onnx): /usr/bin/python3 scripts/make_bad_onnx.py
import os
import sys

import onnx
from onnx import TensorProto, helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "bad_onnx")
expected = []


def model(nodes, inputs, outputs, inits=(), opset=13, ir=8, value_info=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits),
                          value_info=list(value_info))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def f32(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def relu_model(**kw):
    return model([helper.make_node("Relu", ["x"], ["y"], name="r")], [f32("x", [2])],
                 [f32("y", [2])], **kw)


def write(name, data, code, substring):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.SerializeToString())
    expected.append("%s %d %s" % (name, code, substring))


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, payload):  # length-delimited field
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def main():
    os.makedirs(OUT, exist_ok=True)
    good = relu_model().SerializeToString()

    # framing problems
    write("empty.onnx", b"", 2, "file is empty")
    write("garbage.onnx", b"this is not a protobuf file at all\n", 2, "not a valid protobuf message")
    write("truncated.onnx", good[: len(good) * 2 // 3], 2, "not a valid protobuf message")
    write("bad_varint.onnx", b"\x08" + b"\xff" * 11, 2, "bad varint")
    # ModelProto.graph(7) -> GraphProto.input(11) -> ValueInfo.type(2) -> TypeProto.sequence_type(4)
    # -> Sequence.elem_type(1) -> TypeProto ... nested 400 deep (stack-exhaustion attempt)
    t = b""
    for _ in range(400):
        t = field(4, field(1, t))
    deep = varint(1 << 3) + varint(8) + field(7, field(11, field(1, b"x") + field(2, t)))
    write("deep_messages.onnx", deep, 2, "nested too deeply")

    # model-level
    write("opset5.onnx", relu_model(opset=5), 3, "opset 5 is not supported")
    write("opset19.onnx", relu_model(opset=19), 3, "opset 19 is not supported")
    write("ir_version11.onnx", relu_model(ir=11), 3, "IR version 11 is not supported")
    m = relu_model()
    m.ClearField("graph")
    write("no_graph.onnx", m, 2, "model has no graph")

    # graph structure
    write("cycle.onnx", model([helper.make_node("Relu", ["b"], ["a"], name="n1"),
                               helper.make_node("Relu", ["a"], ["b"], name="n2")],
                              [f32("x", [2])], [f32("b", [2])]), 2, "cycle")
    write("dangling_input.onnx",
          model([helper.make_node("Add", ["x", "nothere"], ["y"], name="add1")],
                [f32("x", [2])], [f32("y", [2])]),
          2, "node 'add1' (Add): input 'nothere' is not defined")
    write("duplicate_value.onnx",
          model([helper.make_node("Relu", ["x"], ["y"], name="r1"),
                 helper.make_node("Abs", ["x"], ["y"], name="r2")],
                [f32("x", [2])], [f32("y", [2])]),
          2, "value 'y' is defined twice")
    write("undefined_output.onnx", model([], [f32("x", [2])], [f32("nope", [2])]), 2,
          "output 'nope' is not defined")
    write("wrong_attr_type.onnx",
          model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv_3", strides=2.0)],
                [f32("x", [1, 1, 4, 4]), f32("w", [1, 1, 3, 3])], [f32("y", None)]),
          2, "node 'conv_3' (Conv): attribute 'strides' has type FLOAT, expected INTS")
    write("wrong_arity.onnx",
          model([helper.make_node("Relu", ["x", "x"], ["y"], name="r")], [f32("x", [2])],
                [f32("y", [2])]),
          2, "node 'r' (Relu): has 2 inputs, expected 1")
    write("unknown_op.onnx",
          model([helper.make_node("FooBar", ["x"], ["y"], name="foo")], [f32("x", [2])],
                [f32("y", [2])]),
          3, "node 'foo' (FooBar, domain '', opset 13): unsupported operator; supported: Abs, ")
    m = model([helper.make_node("Relu", ["x"], ["y"], name="r", domain="com.example")],
              [f32("x", [2])], [f32("y", [2])])
    m.opset_import.append(helper.make_opsetid("com.example", 1))
    write("unknown_domain.onnx", m, 3, "(Relu, domain 'com.example', opset 1): unsupported operator")
    many = helper.make_node("Relu", ["x"], ["y"], name="r")
    many.attribute.extend([helper.make_attribute("a%d" % i, i) for i in range(100)])
    write("too_many_attributes.onnx", model([many], [f32("x", [2])], [f32("y", [2])]), 2,
          "node 'r' (Relu): 100 attributes (at most 64 accepted)")
    write("negative_input_dim.onnx",
          model([helper.make_node("Relu", ["x"], ["y"], name="r")], [f32("x", [-3])],
                [f32("y", None)]),
          2, "input 'x': dimension 0 is negative (-3)")
    # a subgraph nested 40 levels deep (If inside If ...)
    inner = helper.make_graph([helper.make_node("Identity", ["x"], ["o0"])], "b0", [],
                              [f32("o0", [2])])
    for i in range(1, 41):
        leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["e%d" % i])], "e%d" % i, [],
                                 [f32("e%d" % i, [2])])
        node = helper.make_node("If", ["c"], ["o%d" % i], then_branch=inner, else_branch=leaf)
        inner = helper.make_graph([node], "b%d" % i, [], [f32("o%d" % i, [2])])
    m = model(list(inner.node), [f32("x", [2]), helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
              [f32("o40", [2])])
    write("deep_subgraphs.onnx", m, 3, "subgraphs nested deeper than 32 levels")

    # tensors
    def init_model(t):
        return model([helper.make_node("Identity", [t.name], ["y"], name="i")], [], [f32("y", None)],
                     inits=[t])

    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1 << 40, 1 << 40])
    write("huge_dims.onnx", init_model(t), 2, "has more than 2^40 elements")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[-3, 2])
    write("negative_dims.onnx", init_model(t), 2, "dimension 0 is negative (-3)")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], raw_data=b"\x00" * 7)
    write("data_length_mismatch.onnx", init_model(t), 2,
          "tensor 'w' has 7 bytes of raw_data, expected 8")
    t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2], float_data=[1, 2, 3])
    write("value_count_mismatch.onnx", init_model(t), 2, "tensor 'w' has 3 values, expected 2")
    t = TensorProto(name="w", data_type=TensorProto.STRING, dims=[1], string_data=[b"hi"])
    write("string_tensor.onnx", init_model(t), 3, "tensor 'w' has element type STRING")
    t = TensorProto(name="w", data_type=17, dims=[2], raw_data=b"\x00\x00")
    write("float8_tensor.onnx", init_model(t), 3, "tensor 'w' has element type FLOAT8E4M3FN")
    t = TensorProto(name="w", data_type=99, dims=[2], raw_data=b"\x00\x00")
    write("unknown_dtype.onnx", init_model(t), 3, "tensor 'w' has element type type 99")
    t = TensorProto(name="", data_type=TensorProto.FLOAT, dims=[1], float_data=[1])
    m = model([], [], [f32("y", None)], inits=[t])
    write("unnamed_initializer.onnx", m, 2, "initializer #0 has no name")

    # external data (small.bin holds 8 bytes next to the models)
    with open(os.path.join(OUT, "small.bin"), "wb") as f:
        f.write(b"\x00\x00\x80\x3f\x00\x00\x00\x40")

    def ext(name, entries):
        t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[2])
        t.data_location = TensorProto.EXTERNAL
        for k, v in entries:
            e = t.external_data.add()
            e.key, e.value = k, v
        write(name, init_model(t), 2, "")
        return name

    ext("ext_dotdot.onnx", [("location", "../bad_onnx/small.bin")])
    expected[-1] += "external data location '../bad_onnx/small.bin' must be a relative path"
    ext("ext_absolute.onnx", [("location", "/etc/passwd")])
    expected[-1] += "external data location '/etc/passwd' must be a relative path"
    ext("ext_past_end.onnx", [("location", "small.bin"), ("offset", "4"), ("length", "8")])
    expected[-1] += "external data range [4, 12) lies outside file 'small.bin' of 8 bytes"
    ext("ext_bad_length.onnx", [("location", "small.bin"), ("length", "4")])
    expected[-1] += "external data length 4, expected 8 bytes"
    ext("ext_missing_file.onnx", [("location", "nothere.bin")])
    expected[-1] = expected[-1].replace(" 2 ", " 5 ") + "cannot open"
    ext("ext_bad_offset.onnx", [("location", "small.bin"), ("offset", "-1")])
    expected[-1] += "external data offset '-1' is not a number"

    with open(os.path.join(OUT, "expected.txt"), "w") as f:
        f.write("# <file> <exit code> <substring of the message>; written by scripts/make_bad_onnx.py\n")
        for line in expected:
            f.write(line + "\n")
    print("wrote %d files to %s" % (len(expected), os.path.normpath(OUT)))


if __name__ == "__main__":
    sys.exit(main())
