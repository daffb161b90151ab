piqc 1
graph lora {
  symbols N
  opset "" 17
  input %x: f32[N, 4]
  const %w: f32[4, 4] = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]
  const %w.lora_A: f32[4, 2] = [-0.07679087, 0.2954477, 0.009407401, 0.00051122904, 0.14835936, 0.05393535, -0.11713666, -0.43458074]
  const %w.lora_B: f32[2, 4] = [0, 0, 0, 0, 0, 0, 0, 0]
  const %w.lora_scale: f32[] = [2]
  %y_1: f32[N, 4] = MatMul(%x, %w)  # matmul
  %matmul.lora_down: f32[N, 2] = MatMul(%x, %w.lora_A)  # matmul.lora_down
  %matmul.lora_up: f32[N, 4] = MatMul(%matmul.lora_down, %w.lora_B)  # matmul.lora_up
  %matmul.lora_scaled: f32[N, 4] = Mul(%matmul.lora_up, %w.lora_scale)  # matmul.lora_scaled
  %y: f32[N, 4] = Add(%y_1, %matmul.lora_scaled) {activation = "Relu"}  # matmul.lora_add
  output %y
}
