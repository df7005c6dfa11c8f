"""Executors: start one ``fwbench train --run-dir DIR`` process per run, locally or on Slurm."""

from fwbench.study.executors.interface import Executor, Outcome, train_command

__all__ = ["Executor", "Outcome", "train_command"]
