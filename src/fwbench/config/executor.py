"""``executor.yaml``: how the local and Slurm executors launch runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field

from fwbench.config.train import PositiveInt, Strict, _load

EXECUTOR = "executor.yaml"


class LocalExecutorConfig(Strict):
    """The local executor: how many runs at once (each with its own GPU when there are GPUs)."""

    parallel: PositiveInt = 1


class SlurmExecutorConfig(Strict):
    """Resources of each Slurm array task (one training run) and how the array is throttled."""

    partition: str | None = None
    account: str | None = None
    time_min: PositiveInt = 720
    mem_gb: PositiveInt = 32
    cpus: PositiveInt = 8
    gpus: Annotated[int, Field(ge=0)] = 1
    array_parallelism: PositiveInt = 16
    poll_seconds: Annotated[float, Field(gt=0)] = 15.0
    # Any other sbatch option, e.g. {constraint: a100, qos: high, exclusive: true}.
    sbatch: dict[str, str | int | bool] = {}
    # A task that reaches its time limit or is preempted is requeued and resumes from its last
    # checkpoint, at most this many times for time limits (preemptions do not count). Slurm warns
    # the task this many seconds before the limit (it may be up to a minute early).
    max_requeues: Annotated[int, Field(ge=0)] = 3
    signal_seconds: Annotated[int, Field(ge=1)] = 120


class ExecutorConfig(Strict):
    """``executor.yaml``: settings of ``fwbench run --executor local|slurm``."""

    local: LocalExecutorConfig = LocalExecutorConfig()
    slurm: SlurmExecutorConfig = SlurmExecutorConfig()


def load_executor_config(path: str | Path | None = None) -> ExecutorConfig:
    """The executor config: package defaults, with ``path`` merged over them if given."""
    return _load(EXECUTOR, ExecutorConfig, None if path is None else Path(path), None)


# --- analysis (``analysis.yaml``) -------------------------------------------------------------
