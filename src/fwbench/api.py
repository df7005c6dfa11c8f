"""fwbench from Python (a notebook): the few calls a researcher needs, each a thin wrapper over
what the command line runs. Import nothing heavy until called::

    import fwbench
    runs, epochs = fwbench.load_results("study/", stages="stage1")   # pandas DataFrames
    analysis = fwbench.analyze(runs)                # per-cell summary and PyTorch - Keras tests
    analysis.comparison.query("metric == 'test_accuracy'")[["model", "verdict_text"]]
    fwbench.report("study/")                        # plots + report/report.md and report.html

``workspace`` is a project folder (default: ``$FWBENCH_WORKSPACE`` or the current directory);
``stages`` is one stage name or a list of them. Mistakes (a missing workspace, an unknown stage)
raise ``fwbench.core.errors.FwbenchError`` with a one-line message.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from fwbench.core.paths import Workspace

if TYPE_CHECKING:
    import pandas as pd

    from fwbench.analysis.stats import Analysis
    from fwbench.record.runs import RunSpec


def _stage_list(stages: str | list[str] | tuple[str, ...] | None) -> list[str] | None:
    """``"stage1"`` or ``["stage1", "stage2"]`` -> a list (None: all runs)."""
    if stages is None:
        return None
    return [stages] if isinstance(stages, str) else list(stages) or None


def _workspace(workspace: str | Path | None) -> Workspace:
    """The workspace, which must exist (a typo would otherwise read as "no runs")."""
    from fwbench.core.errors import FwbenchError

    ws = Workspace.from_env(workspace, create=True)  # a missing folder: the message below
    if not ws.root.is_dir():
        raise FwbenchError(
            "no such workspace", path=ws.root, fix="pass the project folder that holds runs/"
        )
    return ws


def load_results(
    workspace: str | Path | None = None,
    stages: str | list[str] | None = None,
    *,
    write: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(runs, epochs)`` read fresh from the run directories (as ``fwbench collect`` does).

    ``runs`` has one row per run (identity, swept settings, state, test metrics, timing);
    ``epochs`` one row per epoch of every run. With ``stages`` (a name or a list), exactly those
    stages' runs, missing ones ``pending``. ``write=True`` also writes ``results/`` as
    ``fwbench collect`` does. A workspace that does not exist is an error.
    """
    from fwbench.core.errors import FwbenchError
    from fwbench.study.collect import collect_runs, write_results

    ws = _workspace(workspace)
    names = _stage_list(stages)
    if names is None and not ws.runs_dir.is_dir():
        raise FwbenchError(
            "the workspace has no runs/ folder", path=ws.root, fix="pass the project folder"
        )
    runs, epochs = collect_runs(ws, names)
    if write:
        write_results(ws, runs, epochs)
    return runs, epochs


def _settings(ws: Workspace) -> Any:
    """The workspace's analysis settings (``configs/analysis.yaml`` over the defaults)."""
    from fwbench.config.analysis import ANALYSIS, load_analysis_config
    from fwbench.config.train import find_user_config

    return load_analysis_config(find_user_config(ws.configs_dir, ANALYSIS, None))


def analyze(
    runs: pd.DataFrame | str | Path | None = None,
    workspace: str | Path | None = None,
    stages: str | list[str] | None = None,
) -> Analysis:
    """The statistics of ``fwbench analyze`` for ``runs`` (default: the collected results), with
    the workspace's ``configs/analysis.yaml`` (margins, levels) if there is one.

    ``analyze("study/")`` (a workspace first, as ``load_results`` takes it) is read as
    ``analyze(workspace="study/")``. With ``stages`` (a name or a list), only the runs those
    stages expect count, as ``fwbench analyze --stage`` does; a selection with no finished run
    is an error. Returns an ``Analysis`` whose DataFrames include ``summary`` (per cell and arm)
    and ``comparison`` (per cell, arm pair and metric: paired difference, tests, verdict).
    """
    from fwbench.analysis.stats import analyze as run_analysis
    from fwbench.study.stage_scope import select_stages

    if isinstance(runs, str | Path):
        runs, workspace = None, runs
    ws = _workspace(workspace)
    if runs is None:
        from fwbench.study.collect import load_results as load_collected

        runs, _ = load_collected(ws)
    runs, _, _ = select_stages(ws, runs, None, _stage_list(stages))
    return run_analysis(runs, _settings(ws))


def report(
    workspace: str | Path | None = None, stages: str | list[str] | None = None
) -> dict[str, Any]:
    """Collect (all run directories, or ``stages``: a name or a list), then write plots and the
    Markdown and HTML report of those runs as ``fwbench collect [--stage S] && fwbench report
    [--stage S]`` do; returns the paths written and the ``scope`` (which runs it covers)."""
    from fwbench.analysis.report import write_report

    load_results(workspace, stages, write=True)
    ws = _workspace(workspace)
    return write_report(ws, _settings(ws), _stage_list(stages))


def expand(
    stage: str,
    workspace: str | Path | None = None,
    *,
    sets: list[str] | None = None,
    matrix: str | Path | None = None,
) -> list[RunSpec]:
    """Every ``RunSpec`` of ``stage`` (with the workspace's configs and ``sets`` like
    ``["lr.base_lr=0.05"]``), as ``fwbench run --dry-run`` lists them; ``spec.run_id`` names
    each run's directory under ``runs/``."""
    from fwbench.study.matrix import SmokeOptions, expand_stage, load_configs

    train, stages = load_configs(_workspace(workspace), None, matrix)
    return expand_stage(stage, stages.stage(stage), train, SmokeOptions(sets=tuple(sets or ())))
