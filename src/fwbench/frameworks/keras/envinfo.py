"""What TensorFlow/Keras see of this machine; ``python -m`` prints it as JSON."""

from __future__ import annotations

import json


def info() -> dict:
    """tensorflow/keras versions, the CUDA/cuDNN TF was built with, visible GPUs."""
    import keras
    import tensorflow as tf

    build = dict(tf.sysconfig.get_build_info())
    return {
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "cuda_build": build.get("cuda_version"),
        "cudnn_build": build.get("cudnn_version"),
        "is_cuda_build": bool(build.get("is_cuda_build")),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


if __name__ == "__main__":
    print(json.dumps(info()))
