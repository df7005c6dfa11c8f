"""How many compute threads and loader workers a run uses on this machine."""

from __future__ import annotations

import os


def thread_count() -> int:
    """Compute threads: ``$FWBENCH_THREADS``, else ``$OMP_NUM_THREADS``, else the usable CPUs.

    Executors running several runs side by side set one of these (or the affinity mask) so
    the runs do not oversubscribe the cores.
    """
    env = os.environ.get("FWBENCH_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if env:
        return max(1, int(env))
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_workers(cpus: int, config_workers: int) -> int:
    """Loader workers for this machine: 0 on <= 4 CPUs, else half the CPUs, capped by config.

    Small machines load in the main process: a worker would take a core from the step.
    """
    return 0 if cpus <= 4 else min(config_workers, cpus // 2)
