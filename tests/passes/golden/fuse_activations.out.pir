piqc 1
graph fuse {
  symbols N
  opset "" 17
  input %x: f32[N, 2, 2, 2]
  input %v: f32[N, 4]
  const %w: f32[2, 2, 1, 1] = [1, 0, 0, 1]
  const %g: f32[4, 4] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
  const %m: f32[4, 4] = [0.5, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.5]
  %cr: f32[N, 2, 2, 2] = Conv(%x, %w) {kernel_shape = [1, 1], activation = "Relu"}  # conv
  %ge: f32[N, 4] = Gemm(%v, %g) {transB = 1, activation = "LeakyRelu", activation_alpha = 0.1}  # gemm
  %mm: f32[N, 4] = MatMul(%v, %m) {activation = "Swish"}  # matmul
  %y: f32[N, 4] = Add(%ge, %mm) {activation = "Clip", activation_alpha = 0.0, activation_beta = 6.0}  # add
  output %cr
  output %y
}
