piqc 1
graph bn_matmul {
  symbols N
  opset "" 17
  input %x: f32[N, 3]
  const %w_bn: f32[3, 2] = [2, 1, 6, 2, 1e+01, 3]
  const %matmul_bias_bn: f32[2] = [0.5, -1]
  %m: f32[N, 2] = MatMul(%x, %w_bn)  # matmul
  %y: f32[N, 2] = Add(%m, %matmul_bias_bn)  # y
  output %y
}
