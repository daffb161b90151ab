piqc 1
graph had_fold {
  symbols N
  opset "" 17
  input %x: f32[N, 2]
  const %w1: f32[2, 8] = [1, 2, 3, 4, 5, 6, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1]
  const %w2: f32[8, 2] = [1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1]
  %h = MatMul(%x, %w1)  # up
  %y = MatMul(%h, %w2)  # down
  output %y
}
