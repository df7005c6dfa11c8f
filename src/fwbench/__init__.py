"""fwbench: compare training an image classifier in PyTorch and in Keras, with evidence."""

__version__ = "0.1.0"
