"""What Keras and its backend see of this machine; ``python -m`` prints it as JSON.

Imports only this process's Keras backend (a keras-jax or keras-torch run loads no TensorFlow).
"""

from __future__ import annotations

import json


def _tensorflow() -> dict:
    import tensorflow as tf

    build = dict(tf.sysconfig.get_build_info())
    return {
        "tensorflow": tf.__version__,
        "cuda_build": build.get("cuda_version"),
        "cudnn_build": build.get("cudnn_version"),
        "is_cuda_build": bool(build.get("is_cuda_build")),
        "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
    }


def _jax() -> dict:
    import jax
    import jaxlib

    gpus = [str(d) for d in jax.devices() if d.platform == "gpu"]
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "gpus": gpus}


def _torch() -> dict:
    import torch

    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return {"torch": torch.__version__, "cuda_build": torch.version.cuda, "gpus": gpus}


def info() -> dict:
    """Keras version and backend, the backend library's versions and build, visible GPUs."""
    import keras

    backend = keras.backend.backend()
    probe = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}[backend]
    return {"keras": keras.__version__, "keras_backend": backend} | probe()


if __name__ == "__main__":
    print(json.dumps(info()))
