"""Keras on TensorFlow: the GradientTape step (+XLA) and the tf.data pipeline."""
