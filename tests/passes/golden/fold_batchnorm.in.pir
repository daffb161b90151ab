piqc 1
graph bn {
  symbols N
  opset "" 17
  input %x: f32[N, 1, 2, 2]
  const %w: f32[2, 1, 1, 1] = [2, -1]
  const %b: f32[2] = [0.5, 0]
  const %gamma: f32[2] = [1, 0.5]
  const %beta: f32[2] = [0, 1]
  const %mean: f32[2] = [0.25, -1]
  const %var: f32[2] = [4, 0.25]
  %c = Conv(%x, %w, %b) {kernel_shape = [1, 1]}  # conv
  %y = BatchNormalization(%c, %gamma, %beta, %mean, %var) {epsilon = 0.0}  # bn
  output %y
}
