piqc 1
graph dce {
  opset "" 17
  input %x: f32[4]
  const %unused: f32[2] = [7, 8]
  const %k: f32[4] = [1, 2, 3, 4]
  %y = Relu(%x)  # live_relu
  %dead1 = Neg(%x)  # dead_neg
  %dead2 = Mul(%dead1, %k)  # dead_mul
  output %y
}
