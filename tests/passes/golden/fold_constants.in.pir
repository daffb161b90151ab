piqc 1
graph fold {
  symbols N
  opset "" 17
  input %x: f32[N, 3]
  const %a: f32[3] = [1, 2, 3]
  const %b: f32[3] = [0.5, 0.5, 0.5]
  const %one: i64[] = [1]
  const %zero1: i64[1] = [0]
  const %minus1: i64[1] = [-1]
  %ab = Add(%a, %b)  # add_consts
  %sq = Mul(%ab, %ab)  # square
  %y = Add(%x, %sq)  # add_x
  %s = Shape(%x)  # shape_x
  %d1 = Gather(%s, %one) {axis = 0}  # gather_dim1
  %d1u = Unsqueeze(%d1, %zero1)  # unsqueeze_dim1
  %shape = Concat(%minus1, %d1u) {axis = 0}  # concat_shape
  %r = Reshape(%y, %shape)  # reshape
  output %r
}
