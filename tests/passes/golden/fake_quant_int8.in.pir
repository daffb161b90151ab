piqc 1
graph fq_int8 {
  symbols N
  opset "" 17
  input %x: f32[N, 2, 3, 3]
  const %w: f32[2, 2, 2, 2] = [0.5, -1, 0.25, 0.75, -0.5, 0.125, 1, -0.25, 0.3, 0.6, -0.9, 0.2, 0.05, -0.4, 0.8, 0.1]
  %y = Conv(%x, %w) {kernel_shape = [2, 2]}  # conv
  output %y
}
