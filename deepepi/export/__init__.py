"""`deepepi export` and `deepepi ensemble`: write a run's model in a deployment format, checked first.

``formats`` is the one table (onnx, tflite, pte: exporter, quantised exporter, runtime); ``onnx_file``,
``onnx_quantized``, ``app_files`` (the phone app's .tflite/.pte with their sidecars), ``windows``
(calibration and check windows), ``ensemble_onnx`` and ``ensemble_tflite``. The checks and the writing
itself are ``converters.check``'s, shared by every format.
"""
