"""The Keras arm (Keras 3 on the TensorFlow backend).

Importing any module of this package first pins the Keras backend and quiets TensorFlow's C++
logging, once, before keras or tensorflow can be imported by that module.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
