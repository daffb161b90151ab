piqc 1
graph cse {
  opset "" 17
  input %x: f32[2]
  const %k1: f32[2] = [1, 2]
  const %k3: f32[2] = [1, 3]
  %a: f32[2] = Relu(%x)  # relu_a
  %ma: f32[2] = Mul(%a, %k1)  # mul_a
  %mc: f32[2] = Mul(%a, %k3)  # mul_c
  %s: f32[2] = Add(%ma, %ma)  # add_ab
  %y: f32[2] = Add(%s, %mc)  # add_c
  output %y
}
