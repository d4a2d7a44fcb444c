"""Framework-free verification of two DeepEpi ONNX graphs through onnxruntime (`deepepi verify`)."""
