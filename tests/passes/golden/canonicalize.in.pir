piqc 1
graph canon {
  opset "" 17
  input %x: f32[2, 4]
  const %s8: i64[1] = [8]
  const %s42: i64[2] = [4, 2]
  const %three: f32[] = [3]
  const %zero: f32[] = [0]
  const %six: f32[] = [6]
  %i = Identity(%x)  # identity
  %t1 = Transpose(%i) {perm = [1, 0]}  # transpose_a
  %t2 = Transpose(%t1) {perm = [1, 0]}  # transpose_b
  %c = Cast(%t2) {to = "f32"}  # cast_f32
  %d, _ = Dropout(%c)  # dropout
  %r1 = Reshape(%d, %s8)  # reshape_flat
  %r2 = Reshape(%r1, %s42)  # reshape_4x2
  %a3 = Add(%r2, %three)  # hs_add
  %cl = Clip(%a3, %zero, %six)  # hs_clip
  %m = Mul(%r2, %cl)  # hs_mul
  %h = Div(%m, %six)  # hs_div
  output %h
}
