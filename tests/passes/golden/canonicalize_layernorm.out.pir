piqc 1
graph layernorm {
  symbols N
  opset "" 13
  input %x: f32[N, 4]
  const %n_scale_1: f32[4] = [1, 2, 3, 4]
  const %n_bias_1: f32[4] = [0.5, 0, -0.5, 1]
  %y: f32[N, 4] = LayerNormalization(%x, %n_scale_1, %n_bias_1) {axis = 1, epsilon = 1e-05}  # n
  output %y
}
