"""Environment capture (seed phase 0): versions, devices, drivers -> env.json, environment.txt.

Each framework is probed in its own subprocess, so a broken or missing framework is recorded,
never fatal, and the two are never imported into one process here.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from fwbench.core.fileio import StagedWrites, check_writable
from fwbench.registry.arms import ARMS, arm_env

# Every arm, probed in its own process with its own KERAS_BACKEND.
PROBES = {arm.name: arm.module("envinfo") for arm in ARMS.values()}


def _run(
    cmd: list[str], timeout: float = 120, stdout_only: bool = False, env: dict | None = None
) -> tuple[bool, str]:
    if shutil.which(cmd[0]) is None and not Path(cmd[0]).exists():
        return False, f"{cmd[0]} not found on PATH"
    try:
        p = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=os.environ | (env or {})
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"{' '.join(cmd)} failed: {e}"
    if p.returncode == 0:
        return True, (p.stdout if stdout_only else p.stdout + p.stderr).strip()
    return False, f"exit {p.returncode}: {(p.stdout + p.stderr).strip()}"


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else platform)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def host_info() -> dict:
    """Framework-free facts: Python, OS, CPU, package versions."""
    return {
        "captured_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hostname": platform.node(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "packages": {
            d: _version(d)
            for d in (
                "fwbench",
                "numpy",
                "torch",
                "torchvision",
                "tensorflow",
                "tensorflow-cpu",
                "keras",
                "jax",
                "jaxlib",
                "scikit-learn",
                "scipy",
                "pandas",
            )
        },
    }


def probe_framework(name: str) -> dict:
    """Run the framework's envinfo in a subprocess; failure is recorded as ``error``."""
    cmd = [sys.executable, "-m", PROBES[name]]
    ok, out = _run(cmd, timeout=300, stdout_only=True, env=arm_env(name))
    if ok:
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (json.JSONDecodeError, IndexError):
            return {"error": f"unreadable probe output: {out[-500:]}"}
    return {"error": out[-2000:]}


def gpu_tools() -> dict:
    """``nvidia-smi`` and ``nvcc --version`` output, or why they are unavailable."""
    smi_ok, smi = _run(["nvidia-smi"])
    nvcc_ok, nvcc = _run(["nvcc", "--version"])
    return {
        "nvidia_smi": {"available": smi_ok, "output": smi},
        "nvcc": {"available": nvcc_ok, "output": nvcc},
    }


def capture() -> dict:
    """Everything ``fwbench env`` records."""
    info = host_info()
    info["frameworks"] = {name: probe_framework(name) for name in PROBES}
    info.update(gpu_tools())
    return info


def render_text(info: dict) -> str:
    """The human-readable ``environment.txt``."""
    lines = [
        f"captured_at: {info['captured_at']}",
        f"host: {info['hostname']}",
        f"python: {info['python']}",
        f"platform: {info['platform']}",
        f"cpu: {info['cpu_model']} ({info['cpu_cores']} cores)",
        "",
        "packages:",
        *(f"  {k}: {v or '-'}" for k, v in info["packages"].items()),
    ]
    for name, fw in info["frameworks"].items():
        lines += ["", f"{name}:"]
        lines += [f"  {k}: {v}" for k, v in fw.items()]
    for tool in ("nvidia_smi", "nvcc"):
        t = info[tool]
        lines += ["", f"{tool.replace('_', '-')} ({'ok' if t['available'] else 'unavailable'}):"]
        lines += ["  " + line for line in t["output"].splitlines()]
    return "\n".join(lines) + "\n"


def write_environment(out_dir: Path) -> dict:
    """Write ``env.json``, ``environment.txt`` and ``requirements_lock.txt`` into ``out_dir``."""
    check_writable(out_dir)  # before minutes of probing
    info = capture()
    ok, freeze = _run([sys.executable, "-m", "pip", "freeze"], stdout_only=True)
    texts = {
        "env.json": json.dumps(info, indent=2, default=str) + "\n",
        "environment.txt": render_text(info),
        "requirements_lock.txt": (freeze if ok else f"# {freeze}") + "\n",
    }
    with StagedWrites() as staged:  # all three or none (a full disk changes nothing)
        for name, text in texts.items():
            staged.add(out_dir / name, lambda p, text=text: p.write_text(text, encoding="utf-8"))
        staged.commit()
    return info
