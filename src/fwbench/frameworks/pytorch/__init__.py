"""The PyTorch arm (torch + torchvision)."""
