"""``fwbench env``: record the software and hardware a study ran on."""

from __future__ import annotations

from rich.console import Console

from fwbench.commands.options import OptPath, WorkspaceOpt
from fwbench.core.paths import Workspace


def env(workspace: OptPath = WorkspaceOpt) -> None:
    """Write environment.txt, env.json, requirements_lock.txt (no GPU is recorded, not an error)."""
    from fwbench.frameworks.env import write_environment

    ws = Workspace.from_env(workspace)
    out = Console()
    info = write_environment(ws.root)
    for name, fw in info["frameworks"].items():
        if "error" in fw:
            out.print(f"{name}: [yellow]not usable[/] ({fw['error'].splitlines()[-1]})")
        else:
            gpus = ", ".join(fw.get("gpus") or []) or "none"
            out.print(f"{name}: {fw.get('torch') or fw.get('tensorflow')}  GPUs: {gpus}")
    smi = info["nvidia_smi"]
    out.print(f"nvidia-smi: {'ok' if smi['available'] else 'unavailable: ' + smi['output'][:80]}")
    out.print(f"wrote {ws.root / 'environment.txt'}, env.json, requirements_lock.txt")
