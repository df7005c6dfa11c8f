"""Keras on JAX: the jax.jit step over stateless_call."""
