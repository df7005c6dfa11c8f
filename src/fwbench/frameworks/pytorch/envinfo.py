"""What PyTorch sees of this machine; ``python -m`` prints it as JSON (used by ``fwbench env``)."""

from __future__ import annotations

import json


def info() -> dict:
    """torch/torchvision versions, CUDA and cuDNN as torch sees them, visible GPUs."""
    import torch
    import torchvision

    cuda = torch.cuda.is_available()
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda_build": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
        "cuda_available": cuda,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        if cuda
        else [],
        "num_threads": torch.get_num_threads(),
    }


if __name__ == "__main__":
    print(json.dumps(info()))
