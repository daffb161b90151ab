piqc 1
graph fuse {
  symbols N
  opset "" 17
  input %x: f32[N, 2, 2, 2]
  input %v: f32[N, 4]
  const %w: f32[2, 2, 1, 1] = [1, 0, 0, 1]
  const %g: f32[4, 4] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
  const %m: f32[4, 4] = [0.5, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.5, 0, 0, 0, 0, 0.5]
  const %lo: f32[] = [0]
  const %hi: f32[] = [6]
  %c = Conv(%x, %w) {kernel_shape = [1, 1]}  # conv
  %cr = Relu(%c)  # relu
  %ge = Gemm(%v, %g) {transB = 1}  # gemm
  %gl = LeakyRelu(%ge) {alpha = 0.1}  # leaky
  %mm = MatMul(%v, %m)  # matmul
  %sg = Sigmoid(%mm)  # swish_sigmoid
  %sw = Mul(%mm, %sg)  # swish_mul
  %ad = Add(%gl, %sw)  # add
  %y = Clip(%ad, %lo, %hi)  # relu6
  output %cr
  output %y
}
