"""The Keras arm (Keras 3 on the TensorFlow backend)."""
