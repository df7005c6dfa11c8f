"""The Keras arms: Keras 3 on TensorFlow (``keras``), JAX (``keras-jax``), torch (``keras-torch``).

Which backend a process uses is set before Keras is first imported, per process, by
``fwbench.frameworks.arms.activate`` (``KERAS_BACKEND``); nothing here pins it. Imported
without it, Keras falls back to its own default (TensorFlow).
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # quiet TensorFlow's C++ logging if loaded
