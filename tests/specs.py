"""The run spec tests share: the smallest real run (digits, mobilenetv2, fp32, seed 1)."""

from __future__ import annotations

from typing import Any

from fwbench.config.train import load_train_config
from fwbench.record.runs import RunSpec, make_spec

DIGITS_RUN = {"dataset": "digits", "model": "mobilenetv2", "precision": "fp32", "seed": 1}


def digits_spec(framework: str = "pytorch", **settings: Any) -> RunSpec:
    """The spec ``fwbench train`` makes for that run with the default train config;
    ``settings`` (``epochs_override``, ``seed`` ...) as ``make_spec`` takes them."""
    return make_spec(load_train_config(), **(DIGITS_RUN | {"framework": framework} | settings))
