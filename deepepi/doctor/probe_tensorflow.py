"""What TensorFlow sees: its build (CUDA), the GPUs it can use. Run by `deepepi doctor` in a child.

A child process, because importing TensorFlow with a broken CUDA install can abort the interpreter,
and because its C++ start-up lines (which the CLI hides) are what doctor reports. Prints one JSON
object on stdout.
"""

from __future__ import annotations

import json
from typing import Any


def probe() -> dict[str, Any]:
    import tensorflow as tf

    build = dict(tf.sysconfig.get_build_info())
    gpus = []
    for i, device in enumerate(tf.config.list_physical_devices("GPU")):
        details = tf.config.experimental.get_device_details(device)
        capability = details.get("compute_capability")
        gpus.append({"index": i, "name": details.get("device_name", device.name),
                     "capability": ".".join(map(str, capability)) if capability else None})
    return {
        "version": tf.__version__,
        "cuda_build": build.get("cuda_version") if build.get("is_cuda_build") else None,
        "cudnn_build": build.get("cudnn_version") if build.get("is_cuda_build") else None,
        "rocm_build": bool(build.get("is_rocm_build")),
        "gpus": gpus,
    }


if __name__ == "__main__":
    print(json.dumps(probe()))
