"""deepepi: train the DeepEpi seizure-detection CNN in Keras and PyTorch, export to ONNX, verify equivalence.

Importing this package pulls in neither TensorFlow nor PyTorch; framework code is imported lazily
inside the modules named after each framework.
"""

__version__ = "0.1.0"
