"""``fwbench env``: record the software and hardware a study ran on."""

from __future__ import annotations

from rich.console import Console

from fwbench.commands.options import OptPath, WorkspaceOpt
from fwbench.core.paths import Workspace

STACK = ("keras", "tensorflow", "jax", "jaxlib", "torch", "torchvision")  # as each arm layers


def arm_versions(probe: dict) -> str:
    """``keras 3.15.0, jax 0.10.2, jaxlib 0.10.2``: the versions an arm's own probe found."""
    return ", ".join(f"{k} {probe[k]}" for k in STACK if probe.get(k)) or "no version recorded"


def env(workspace: OptPath = WorkspaceOpt) -> None:
    """Write environment.txt, env.json, requirements_lock.txt (no GPU is recorded, not an error)."""
    from fwbench.frameworks.env import write_environment

    ws = Workspace.from_env(workspace, create=True)
    out = Console()
    info = write_environment(ws.root)
    for name, fw in info["frameworks"].items():
        if "error" in fw:
            out.print(f"{name}: [yellow]not usable[/] ({fw['error'].splitlines()[-1]})")
        else:
            gpus = ", ".join(fw.get("gpus") or []) or "none"
            out.print(f"{name}: {arm_versions(fw)}; GPUs: {gpus}")
    smi = info["nvidia_smi"]
    out.print(f"nvidia-smi: {'ok' if smi['available'] else 'unavailable: ' + smi['output'][:80]}")
    out.print(f"wrote {ws.root / 'environment.txt'}, env.json, requirements_lock.txt")
