"""Where fwbench reads and writes: one workspace folder with a fixed layout."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# The workspace's own folders (each one a folder inside the workspace, never a link out of it).
LAYOUT = ("data", "configs", "runs", "results", "analysis", "plots", "report", "logs")


@dataclass(frozen=True)
class Workspace:
    """The folders of one fwbench project (default: the current directory).

    Layout (the seed's, kept): ``data/`` raw files and prepared arrays, ``data/splits/`` split
    indices, ``configs/`` user configs and ``dataset_stats.yaml``, ``runs/`` run directories,
    ``results/`` tables, ``analysis/``, ``plots/``, ``report/``.
    """

    root: Path

    @classmethod
    def from_env(cls, root: str | Path | None = None, *, create: bool = False) -> Workspace:
        """The workspace at ``root``, else ``$FWBENCH_WORKSPACE``, else the current directory.

        It must be a folder (``create``: or not exist yet, for commands that start a project),
        and every folder of its layout that exists must be a folder inside it: a symlink that
        leads outside the workspace, or nowhere, is refused before anything is read or written.
        """
        chosen = root or os.environ.get("FWBENCH_WORKSPACE") or Path.cwd()
        ws = cls(Path(chosen).resolve())
        ws.check(create)
        return ws

    def check(self, create: bool = False) -> None:
        """Raise the user error for a workspace that is not a usable folder (see ``from_env``)."""
        from fwbench.core.errors import FwbenchError

        fix = "pass --workspace (or set $FWBENCH_WORKSPACE) to your project folder"
        if self.root.exists() and not self.root.is_dir():
            raise FwbenchError("the workspace is a file, not a folder", path=self.root, fix=fix)
        if not self.root.exists():
            if create:
                return
            raise FwbenchError("the workspace does not exist", path=self.root, fix=fix)
        for name in LAYOUT:
            path = self.root / name
            if not (path.exists() or path.is_symlink()):
                continue
            target = path.resolve()
            if path.is_symlink() and not target.exists():
                raise FwbenchError(
                    f"workspace folder {name}/ is a symlink to {target}, which does not exist",
                    path=path,
                    fix=f"remove the link or create {target} inside the workspace",
                )
            if not target.is_relative_to(self.root):
                raise FwbenchError(
                    f"workspace folder {name}/ leads outside the workspace (to {target})",
                    path=path,
                    fix="replace the link with a folder, or make the folder it leads to the "
                    "workspace",
                )
            if not target.is_dir():
                raise FwbenchError(
                    f"workspace folder {name}/ is a file, not a folder",
                    path=path,
                    fix="move the file aside",
                )

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
