"""Start-up budget: ``fwbench --help``, ``status`` and ``config show`` import nothing heavy.

The budget is 0.5 s of imports (``python -X importtime``, best of three runs). No numerical or
framework library may load at all. The time is only judged when the machine is not overloaded
(load average below its CPU count): with six jobs on two cores every import takes three times
as long, and the test would measure the neighbours.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HEAVY = ("numpy", "pandas", "scipy", "sklearn", "matplotlib", "torch", "tensorflow", "keras",
         "mlflow", "tensorboard", "submitit", "statsmodels", "pingouin")  # fmt: skip
BUDGET_S = 0.5


def _imports(args: list[str], cwd) -> tuple[float, set[str]]:
    """Seconds spent importing, and the top-level modules imported, for ``fwbench ARGS``."""
    env = os.environ | {"COLUMNS": "200"}
    p = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "fwbench.cli", *args],
        capture_output=True, text=True, cwd=cwd, env=env, timeout=120,
    )  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    total, modules = 0.0, set()
    for line in p.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        _, cumulative, name = line.split("|")
        modules.add(name.strip().split(".")[0])
        if not name.startswith("  "):  # a top-level import: its cumulative time counts once
            total += int(cumulative) / 1e6
    return total, modules


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["status"], ["config", "show"]])
def test_light_commands_start_within_budget_and_import_nothing_heavy(args, tmp_path):
    runs = [_imports(args, tmp_path) for _ in range(3)]
    loaded = set.union(*(m for _, m in runs))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))
    best = min(t for t, _ in runs)
    if os.getloadavg()[0] >= (os.cpu_count() or 1):
        pytest.skip(f"machine overloaded (load {os.getloadavg()[0]:.1f}); heavy imports checked")
    assert best < BUDGET_S, f"fwbench {' '.join(args)} spent {best:.2f} s importing"


def test_train_precondition_fails_before_any_framework_is_imported(tmp_path):
    code = (
        "import sys\nfrom fwbench.cli import main\n"
        "sys.argv = ['fwbench', 'train', '--framework', 'pytorch', '--dataset', 'cifar10', "
        f"'--model', 'resnet50', '-w', {str(tmp_path)!r}]\n"
        "try:\n    main()\nexcept SystemExit as e:\n    code = e.code\n"
        "print(code, sorted(m for m in ('torch', 'tensorflow', 'keras') if m in sys.modules))\n"
    )
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert p.stdout.split()[0] == "2" and p.stdout.strip().endswith("[]"), p.stdout + p.stderr
    assert "dataset 'cifar10' is not prepared" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "runs").exists()  # nothing written for a run that cannot start


def test_version_prints_the_package_version(run_cli):
    from fwbench import __version__

    res = run_cli("--version")
    assert res.code == 0 and res.out.strip() == f"fwbench {__version__}"
