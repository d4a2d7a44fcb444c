"""Model files under one I/O contract, between the models layer and the run layer.

``contract`` (names, shapes, metadata, realistic check windows), ``session`` (every onnxruntime
session), ``check`` (the one check-then-write step, typed ShapeError/AtolError/AgreementError),
``keras_onnx``/``torch_onnx`` (ONNX), ``tflite``/``pte`` with ``app_meta`` (the phone app's files),
``litert`` (the LiteRT invoke loop), ``quantize`` (int8/fp16) and ``ensemble`` (the Harrell-Davis
graph). Framework modules are imported lazily by callers.
"""
