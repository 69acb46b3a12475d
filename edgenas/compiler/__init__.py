"""Building a network for a target: PyTorch -> ONNX and .tflite (`export`), ONNX -> a TVM library (`compile`, with
`fusion`'s prologue pass), and tuning its kernels (`tune`) into per-target databases (`tuning_db`)."""
