piqc 1
graph fq_int8 {
  symbols N
  opset "" 17
  input %x: f32[N, 2, 3, 3]
  const %w: f32[2, 2, 2, 2] = [0.5, -1, 0.25, 0.75, -0.5, 0.125, 1, -0.25, 0.3, 0.6, -0.9, 0.2, 0.05, -0.4, 0.8, 0.1]
  const %w.scales: f32[2] = [0.007874016, 0.007086614]
  %w.fq: f32[2, 2, 2, 2] = FakeQuant(%w, %w.scales) {format = "int8", transposed = 0, ste = "lsq"}  # w.fq
  %y: f32[N, 2, 2, 2] = Conv(%x, %w.fq) {kernel_shape = [2, 2]}  # conv
  output %y
}
