piqc 1
graph lq {
  symbols N
  opset "" 17
  input %x: f32[N, 8]
  const %w.packed: u8[10] = [24, 45, 63, 126, 244, 24, 45, 184, 241, 195]
  const %v.packed: u8[10] = [0, 52, 174, 94, 240, 0, 52, 56, 231, 138]
  const %bias.row: f32[2] = [0.5, -0.5]
  %h: f32[N, 2] = PackedMatMul(%x, %w.packed) {activation = "Relu", format = "piq3", qgroup = 8, rows = 2, cols = 8}  # matmul
  %y: f32[N, 2] = PackedMatMul(%x, %v.packed, %bias.row) {format = "q3", qgroup = 8, rows = 2, cols = 8}  # gemm
  %z: f32[N, 2] = Add(%h, %y)  # add
  output %z
}
