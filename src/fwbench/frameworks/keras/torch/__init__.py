"""Keras on PyTorch: the torch autograd step (+torch.compile)."""
