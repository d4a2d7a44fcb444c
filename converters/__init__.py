"""ONNX exporters for the Keras and PyTorch DeepEpi models, sharing one I/O contract (``contract``).

``contract`` is framework-free; ``keras_onnx`` and ``torch_onnx`` import their framework and are
only imported lazily by callers.
"""
