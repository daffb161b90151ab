piqc 1
graph fq {
  symbols N
  opset "" 17
  input %x: f32[N, 8]
  const %w: f32[8, 2] = [0.5, -1, 0.25, 0.75, -0.5, 0.125, 1, -0.25, 0.3, 0.6, -0.9, 0.2, 0.05, -0.4, 0.8, 0.1]
  %y = MatMul(%x, %w)  # matmul
  output %y
}
