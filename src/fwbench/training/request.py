"""A request to train one run, typed: what ``fwbench train``'s options say, resolved to a spec.

``RunRequest.resolve`` turns the request into the run directory and ``RunSpec`` to train: from
``--framework/--dataset/--model`` (validated, the train config loaded and overridden, the batch
fitted to a small subset, the dataset checked before any directory exists), or from the
``spec.json`` already in ``--run-dir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from fwbench.core.errors import FwbenchError
from fwbench.core.paths import Workspace
from fwbench.record.runs import RunDir, RunSpec, make_spec
from fwbench.registry.arms import COMPILE_MODES, get_arm
from fwbench.registry.datasets import DATASETS
from fwbench.registry.models import PRECISIONS, VARIANTS, check_choice, get_model


def check_run_dir(path: Path) -> None:
    """``--run-dir`` names an fwbench run directory (it holds ``spec.json``), or a folder that
    is empty or not there yet: a user's own folder is never written into."""
    if path.exists() and not path.is_dir():
        raise FwbenchError("--run-dir is a file, not a folder", path=path, fix="name a folder")
    if path.is_dir() and not (path / "spec.json").is_file() and any(path.iterdir()):
        raise FwbenchError(
            "--run-dir is not an fwbench run directory (no spec.json) and is not empty",
            path=path,
            fix="name an empty or new folder, or a run directory fwbench made",
        )


@dataclass(frozen=True)
class RunRequest:
    """One run as asked for on the command line (``None``: not given)."""

    framework: str | None = None
    dataset: str | None = None
    model: str | None = None
    precision: str = "fp32"
    seed: int = 42
    variant: str = "library"
    init: str | None = None
    config: Path | None = None  # the train config file (else the workspace's, else defaults)
    epochs_override: int | None = None
    subset: int | None = None
    eval_subset: int | None = None
    num_workers: int | None = None
    compile_mode: str | None = None
    sets: tuple[str, ...] = ()  # ``key.path=value`` overrides, shortcuts and tracking included

    def resolve(self, ws: Workspace, run_dir: Path | None) -> tuple[RunDir, RunSpec]:
        """The run directory and spec this request trains; a user error if it names none."""
        given = {
            k: v
            for k, v in {
                "framework": self.framework,
                "dataset": self.dataset,
                "model": self.model,
            }.items()
            if v is not None
        }
        if not given:
            if run_dir is None:
                raise FwbenchError(
                    "nothing to train",
                    fix="pass --framework, --dataset and --model, or --run-dir of a run with "
                    "spec.json",
                )
            check_run_dir(Path(run_dir))
            rd = RunDir(run_dir)
            return rd, rd.read_spec()
        missing = [k for k in ("framework", "dataset", "model") if k not in given]
        if missing:
            raise FwbenchError(
                f"missing --{', --'.join(missing)}",
                fix="give --framework, --dataset and --model (or only --run-dir to rerun a spec)",
            )
        given["framework"] = get_arm(given["framework"]).name
        check_choice("dataset", given["dataset"], tuple(DATASETS))
        get_model(given["model"])
        check_choice("precision", self.precision, PRECISIONS)
        check_choice("variant", self.variant, VARIANTS)
        if self.compile_mode is not None:
            check_choice("compile mode", self.compile_mode, COMPILE_MODES)
        from fwbench.training.preflight import check_trainable  # numpy: not for `--help`

        spec = self._spec(ws, given)
        if run_dir is not None:
            check_run_dir(Path(run_dir))
        rd = RunDir(run_dir or ws.runs_dir / spec.run_id)
        check_trainable(ws, spec)  # before the run directory exists: a failure leaves nothing
        return rd, spec

    def _spec(self, ws: Workspace, given: dict[str, str]) -> RunSpec:
        from fwbench.config.overrides import apply_sets, fit_batch_to_subset, fit_notice
        from fwbench.config.train import workspace_train_config

        sets = list(self.sets)
        cfg = apply_sets(workspace_train_config(ws, self.config), sets)
        cfg_fitted, fitted = fit_batch_to_subset(cfg, self.subset)
        if fitted:
            Console(stderr=True, highlight=False).print(fit_notice(fitted), soft_wrap=True)
            sets = [*sets, fitted]
        epochs = self.epochs_override
        return make_spec(
            cfg_fitted,
            dataset=given["dataset"],
            model=given["model"],
            precision=self.precision,
            seed=self.seed,
            framework=given["framework"],
            variant=self.variant,
            init=self.init,
            epochs_override=epochs,
            subset=self.subset,
            eval_subset=self.eval_subset,
            num_workers=self.num_workers,
            compile_mode=self.compile_mode,
            overrides=[*sets, *([f"epochs={epochs}"] if epochs else [])],
        )
