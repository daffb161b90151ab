piqc 1
graph dce {
  opset "" 17
  input %x: f32[4]
  %y: f32[4] = Relu(%x)  # live_relu
  output %y
}
