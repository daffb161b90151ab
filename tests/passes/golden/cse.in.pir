piqc 1
graph cse {
  opset "" 17
  input %x: f32[2]
  const %k1: f32[2] = [1, 2]
  const %k2: f32[2] = [1, 2]
  const %k3: f32[2] = [1, 3]
  %a = Relu(%x)  # relu_a
  %b = Relu(%x)  # relu_b
  %ma = Mul(%a, %k1)  # mul_a
  %mb = Mul(%b, %k2)  # mul_b
  %mc = Mul(%b, %k3)  # mul_c
  %s = Add(%ma, %mb)  # add_ab
  %y = Add(%s, %mc)  # add_c
  output %y
}
