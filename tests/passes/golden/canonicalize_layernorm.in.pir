piqc 1
graph layernorm {
  symbols N
  opset "" 13
  input %x: f32[N, 4]
  const %axes: i64[1] = [-1]
  const %two: f32[] = [2]
  const %eps: f32[] = [1e-05]
  const %gamma: f32[4] = [1, 2, 3, 4]
  const %beta: f32[4] = [0.5, 0, -0.5, 1]
  %mean = ReduceMean(%x, %axes) {keepdims = 1}  # ln_mean
  %d = Sub(%x, %mean)  # ln_sub
  %p = Pow(%d, %two)  # ln_pow
  %var = ReduceMean(%p, %axes) {keepdims = 1}  # ln_var
  %ve = Add(%var, %eps)  # ln_add_eps
  %sd = Sqrt(%ve)  # ln_sqrt
  %n = Div(%d, %sd)  # ln_div
  %sc = Mul(%n, %gamma)  # ln_scale
  %y = Add(%sc, %beta)  # ln_bias
  output %y
}
