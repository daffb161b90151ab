piqc 1
graph had {
  symbols N
  opset "" 17
  input %x: f32[N, 8]
  const %w: f32[8, 2] = [0, 0.70710677, 0, -0.70710677, -1.4142135, 0.70710677, -1.4142135, -0.70710677, 0, -0.70710677, 0, 0.70710677, 0, 0.70710677, 0, -0.70710677]
  %x.rot: f32[N, 8] = Hadamard(%x) {axis = -1, seed = 42, inverse = 0}  # x.rot
  %y: f32[N, 2] = MatMul(%x.rot, %w)  # matmul
  output %y
}
