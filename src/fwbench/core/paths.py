"""Where fwbench reads and writes: one workspace folder with a fixed layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Workspace:
    """The folders of one fwbench project (default: the current directory).

    Layout (the seed's, kept): ``data/`` raw files and prepared arrays, ``data/splits/`` split
    indices, ``configs/`` user configs and ``dataset_stats.yaml``, ``runs/`` run directories,
    ``results/`` tables, ``analysis/``, ``plots/``, ``report/``.
    """

    root: Path

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> Workspace:
        """The workspace at ``root``, else ``$FWBENCH_WORKSPACE``, else the current directory."""
        chosen = root or os.environ.get("FWBENCH_WORKSPACE") or Path.cwd()
        return cls(Path(chosen).resolve())

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def prepared_dir(self) -> Path:
        return self.data_dir / "prepared"

    @property
    def splits_dir(self) -> Path:
        return self.data_dir / "splits"

    @property
    def configs_dir(self) -> Path:
        return self.root / "configs"

    @property
    def stats_file(self) -> Path:
        return self.configs_dir / "dataset_stats.yaml"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def analysis_dir(self) -> Path:
        return self.root / "analysis"

    @property
    def plots_dir(self) -> Path:
        return self.root / "plots"

    @property
    def report_dir(self) -> Path:
        return self.root / "report"

    @property
    def logs_dir(self) -> Path:
        return self.root / "logs"
