piqc 1
graph bn_matmul {
  symbols N
  opset "" 17
  input %x: f32[N, 3]
  const %w: f32[3, 2] = [1, 2, 3, 4, 5, 6]
  const %gamma: f32[2] = [2, 1]
  const %beta: f32[2] = [0.5, -0.5]
  const %mean: f32[2] = [0, 1]
  const %var: f32[2] = [1, 4]
  %m = MatMul(%x, %w)  # matmul
  %y = BatchNormalization(%m, %gamma, %beta, %mean, %var) {epsilon = 0.0}  # bn
  output %y
}
