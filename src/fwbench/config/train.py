"""Validated configuration: pydantic models for every YAML file fwbench reads.

Package defaults live in ``fwbench/config/defaults/``; a user's file is merged over them key by key.
Any typo, unknown key, wrong type or unknown name is one line naming the file and the key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.core.strict_yaml import parse_yaml
from fwbench.registry.datasets import DATASETS

# Every number has a range: a huge value is refused here, not deep in the numerics later.
BIG = 10**9  # above any count fwbench handles (images, batches, steps)
PositiveInt = Annotated[int, Field(gt=0, le=BIG)]
NonNegFloat = Annotated[float, Field(ge=0, le=1e6)]
Epochs = Annotated[int, Field(gt=0, le=100_000)]
Pixels = Annotated[int, Field(gt=0, le=8192)]
Workers = Annotated[int, Field(ge=0, le=4096)]


SEED_MAX = 2**32 - 1  # the largest seed every framework's generator accepts


class Strict(BaseModel):
    """A config section: unknown keys are errors, and so is a value of another type.

    Strict: ``true`` is not a number, ``"8"`` is not an int. (YAML files are read with the YAML
    1.2 number rules, so ``5e-4`` is a float, not the string PyYAML would make of it.)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


def check_seed(seed: int) -> int:
    """``seed`` if it is in 0..2**32-1 (the range both frameworks accept), else a ValueError."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= SEED_MAX:
        raise ValueError(f"seed {seed!r} is outside the allowed range 0..{SEED_MAX} (2**32-1)")
    return seed


def _known_datasets(mapping: dict[str, Any]) -> dict[str, Any]:
    unknown = [k for k in mapping if k not in DATASETS]
    if unknown:
        raise ValueError(f"unknown dataset '{unknown[0]}'; known: {', '.join(DATASETS)}")
    return mapping


class OptimizerConfig(Strict):
    """SGD with Nesterov momentum; weight decay is L2 coupled into the gradient in both arms."""

    name: Literal["sgd"] = "sgd"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = True
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 5e-4


class LRConfig(Strict):
    """Linear warmup then cosine decay, evaluated at every optimizer step.

    ``base_lr`` belongs to ``reference_batch`` images per optimizer step. A run whose effective
    batch (batch_size x gradient_accumulation_steps) differs gets its peak LR by ``scaling``:
    ``linear`` (Goyal et al. 2017), ``sqrt`` (Krizhevsky 2014; Hoffer et al. 2017) or ``none``.
    """

    # finite; a huge LR is allowed (the run diverges, recorded as such: the tests force it)
    base_lr: Annotated[float, Field(gt=0, le=1e30)] = 0.1
    reference_batch: PositiveInt = 256
    scaling: Literal["linear", "sqrt", "none"] = "linear"
    warmup_epochs: Annotated[float, Field(ge=0, le=100_000)] = 5.0
    min_lr: Annotated[float, Field(ge=0, le=100)] = 0.0
    schedule: Literal["cosine"] = "cosine"

    def peak_lr(self, effective_batch: int) -> float:
        """The peak (post-warmup) LR for ``effective_batch`` images per optimizer step."""
        ratio = effective_batch / self.reference_batch
        factor = {"linear": ratio, "sqrt": ratio**0.5, "none": 1.0}[self.scaling]
        return self.base_lr * factor

    def describe(self, effective_batch: int) -> str:
        """One line saying which LR a batch gets and why (printed by train, kept in env.json)."""
        peak = self.peak_lr(effective_batch)
        if self.scaling == "none" or effective_batch == self.reference_batch:
            return f"peak LR {peak:.4g} at batch {effective_batch} (lr.scaling: {self.scaling})"
        return (
            f"peak LR {peak:.4g} = base_lr {self.base_lr:g} at reference batch "
            f"{self.reference_batch}, {self.scaling}-scaled to batch {effective_batch}"
        )


class DivergenceConfig(Strict):
    """When a run is ``diverged`` (it then stops; ``recipe.divergence`` applies the rules).

    Each limit is a multiple of the chance loss ln(C) of a C-class problem (2.30 for 10
    classes): a model that has learnt nothing scores about ln(C); one far above it is broken.
    A non-finite loss always counts at once; a finite one only when sustained (train_config.yaml
    says why these defaults).
    """

    # the mean step loss over the last ``window_steps`` optimizer steps above k * ln(C)
    step_loss_multiple: Annotated[float, Field(gt=1, le=1e300)] = 10.0
    window_steps: Annotated[int, Field(gt=0, le=10**6)] = 50
    # ``patience_epochs`` consecutive epochs after warmup whose mean training loss is above
    # k * ln(C), or whose validation loss is above k' * ln(C)
    train_loss_multiple: Annotated[float, Field(gt=1, le=1e300)] = 1.5
    val_loss_multiple: Annotated[float, Field(gt=1, le=1e300)] = 10.0
    patience_epochs: Annotated[int, Field(gt=0, le=100_000)] = 2


class TrainingConfig(Strict):
    """Batching, accumulation and input-pipeline settings shared by both arms."""

    batch_size: PositiveInt = 256
    eval_batch_size: PositiveInt = 512
    gradient_accumulation_steps: Annotated[int, Field(gt=0, le=65536)] = 1
    label_smoothing: Annotated[float, Field(ge=0, lt=1)] = 0.0
    num_workers: Workers = 8
    pin_memory: bool = True
    persistent_workers: bool = True
    prefetch_factor: Annotated[int, Field(gt=0, le=1024)] = 2
    deterministic: bool = True
    stop_on_divergence: bool = True
    divergence: DivergenceConfig = DivergenceConfig()
    # "fp32" means full FP32 in both arms: TF32 matmuls/convolutions off (TensorFlow turns them
    # on by default on Ampere+ GPUs, PyTorch only for convolutions). No effect on CPUs.
    tf32: bool = False
    # What ``precision: amp`` computes in (``recipe.precision``): auto = float16 with loss
    # scaling on a GPU, bfloat16 on a CPU. In the settings hash: it changes the numbers.
    amp_dtype: Literal["auto", "float16", "bfloat16"] = "auto"
    # PyTorch arm only: NHWC memory format, Keras' native layout. For speed; it also changes the
    # rounding (other kernels and summation orders), see train_config.yaml.
    channels_last: bool = True
    # Intra-op threads (None: the usable CPUs). Changes the numbers, so it is in the config hash.
    threads: Annotated[int, Field(gt=0, le=4096)] | None = None
    # Execution mode: each arm's default ("eager") or its compiler ("compiled": torch.compile,
    # XLA jit_compile, jax.jit); fwbench.registry.arms says which mechanism each arm uses.
    compile: Literal["eager", "compiled"] = "eager"


class AugmentationConfig(Strict):
    """Train-time augmentation; evaluation never augments."""

    random_crop_padding: Annotated[int, Field(ge=0, le=1024)] = 4
    horizontal_flip: bool = True


class TrainConfig(Strict):
    """``train_config.yaml``: the recipe both arms follow."""

    optimizer: OptimizerConfig = OptimizerConfig()
    lr: LRConfig = LRConfig()
    training: TrainingConfig = TrainingConfig()
    epochs: dict[str, Epochs]
    augmentation: dict[str, AugmentationConfig]
    input_size: dict[str, Pixels]
    # Where metrics go besides the run directory and its TensorBoard files
    # (fwbench.training.tracking):
    # "mlflow" logs to ``tracking_uri`` (default: a local SQLite store in <workspace>/mlruns).
    # Neither changes a run's numbers, so neither is part of its settings hash.
    tracking: Literal["none", "mlflow"] = "none"
    tracking_uri: str | None = None

    _check_epochs = field_validator("epochs", "augmentation", "input_size")(_known_datasets)

    def for_dataset(self, dataset: str) -> tuple[int, AugmentationConfig, int]:
        """Epochs, augmentation and input size for ``dataset``."""
        missing = [
            s
            for s, m in (("epochs", self.epochs), ("augmentation", self.augmentation))
            if dataset not in m
        ] + ([] if dataset in self.input_size else ["input_size"])
        if missing:
            raise FwbenchError(
                f"train config has no {'/'.join(missing)} entry for dataset '{dataset}'",
                fix=f"add '{dataset}:' under {', '.join(missing)} in your train_config.yaml",
            )
        return self.epochs[dataset], self.augmentation[dataset], self.input_size[dataset]

    def merged(self, partial: dict[str, Any], source: str) -> TrainConfig:
        """This config with ``partial`` merged over it, validated as if read from ``source``."""
        if not partial:
            return self
        return _validate(TrainConfig, deep_merge(self.model_dump(), partial), source)


# --- loading ---------------------------------------------------------------------------------

TRAIN_CONFIG = "train_config.yaml"


def default_config_text(name: str) -> str:
    """Text of a shipped default config file."""
    return resources.files("fwbench.config.defaults").joinpath(name).read_text(encoding="utf-8")


def read_yaml(path: Path) -> dict[str, Any]:
    """Parse a YAML mapping; missing files, non-UTF-8 text and syntax errors are user errors."""
    if path.is_dir():
        raise FwbenchError(
            "config path is a folder, not a YAML file", path=path, fix="name the file itself"
        )
    if not path.is_file():
        raise FwbenchError("config file not found", path=path, fix="check the path")
    try:
        data = parse_yaml(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FwbenchError(
            f"config file is not UTF-8 text (byte {e.start})",
            path=path,
            fix="save it as UTF-8",
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise FwbenchError(
            f"invalid YAML{where}: {getattr(e, 'problem', e)}", path=path, fix="correct the syntax"
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise FwbenchError("config must be a YAML mapping", path=path, fix="use 'key: value' lines")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` merged into ``base`` recursively (mappings merge, everything else replaces)."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _validate(model: type[Strict], data: dict[str, Any], source: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"].endswith("_type") or err["type"].endswith("_parsing"):
            msg += f", got {err['input']!r}"
        extra = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        raise FwbenchError(
            f"invalid config key '{key}': {msg}{extra}",
            path=source,
            fix="see the defaults with `fwbench config show`",
        ) from None


def _load(
    name: str,
    model: type[Strict],
    path: Path | None,
    merge: Callable[[dict, dict, Path], dict] | None,
) -> Any:
    """The package default ``name`` with the user's ``path`` merged over it, validated.

    ``merge(base, user, path)`` merges the two mappings; None: ``deep_merge``, key by key.
    """
    base = parse_yaml(default_config_text(name))
    if path is None:
        return _validate(model, base, f"<package default {name}>")
    user = read_yaml(Path(path))
    merged = deep_merge(base, user) if merge is None else merge(base, user, path)
    return _validate(model, merged, str(path))


def load_train_config(path: str | Path | None = None) -> TrainConfig:
    """The train config: package defaults, with ``path`` merged over them if given."""
    return _load(TRAIN_CONFIG, TrainConfig, None if path is None else Path(path), None)


def workspace_train_config(ws: Workspace, explicit: str | Path | None = None) -> TrainConfig:
    """The train config a workspace runs with: ``explicit``, else its ``configs/train_config.yaml``,
    merged over the package defaults."""
    return load_train_config(find_user_config(ws.configs_dir, TRAIN_CONFIG, explicit))


def find_user_config(
    workspace_configs: Path, name: str, explicit: str | Path | None
) -> Path | None:
    """The user's config: ``explicit``, else ``configs/<name>`` in the workspace, else None."""
    if explicit is not None:
        return Path(explicit)
    candidate = workspace_configs / name
    return candidate if candidate.is_file() else None


def config_hash(*objs: BaseModel | dict) -> str:
    """Short SHA-256 of the canonical JSON of resolved configs (recorded in every run)."""
    h = hashlib.sha256()
    for obj in objs:
        data = obj.model_dump(mode="json") if isinstance(obj, BaseModel) else obj
        h.update(json.dumps(data, sort_keys=True).encode())
    return h.hexdigest()[:16]
