piqc 1
graph lq {
  symbols N
  opset "" 17
  input %x: f32[N, 8]
  const %w: f32[8, 2] = [0.5, -1, 0.25, 0.75, -0.5, 0.125, 1, -0.25, 0.3, 0.6, -0.9, 0.2, 0.05, -0.4, 0.8, 0.1]
  const %w.scales: f16[2, 1] = [0.0795898438, 0.0795898438]
  const %v: f32[2, 8] = [0.5, 0.25, -0.5, 1, 0.3, -0.9, 0.05, 0.8, -1, 0.75, 0.125, -0.25, 0.6, 0.2, -0.4, 0.1]
  const %v.scales: f16[2, 1] = [0.25, 0.25]
  const %bias: f32[1, 2] = [0.5, -0.5]
  %wq = FakeQuant(%w, %w.scales) {format = "piq3", qgroup = 8, transposed = 1, ste = "standard"}  # w.fq
  %vq = FakeQuant(%v, %v.scales) {format = "q3", qgroup = 8, transposed = 0, ste = "standard"}  # v.fq
  %h = MatMul(%x, %wq) {activation = "Relu"}  # matmul
  %y = Gemm(%x, %vq, %bias) {transB = 1}  # gemm
  %z = Add(%h, %y)  # add
  output %z
}
