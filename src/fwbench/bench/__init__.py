"""Throughput, timed one way everywhere (``fwbench bench`` and the epoch logs).

- ``timing``: the clock, data-wait and images/s definitions the epoch logs and the bench share;
- ``measure``: jobs, speed settings, timed windows in turns, summary rows (framework-free; each
  arm's ``frameworks/<package>/bench.py`` hands in its callables);
- ``run``: plan jobs, one framework process per (arm, execution mode, ...), ``bench.csv``.
"""
