"""``fwbench models audit``: every way the two arms' builds of a model differ.

The facts are read off freshly built models (``audit_read.py``), one row per aspect with the
PyTorch value, the Keras value and whether they differ. BatchNorm momentum is given in the
PyTorch convention (weight of the new batch): Keras ``momentum`` m reads as 1 − m.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from fwbench.core.fileio import write_text
from fwbench.registry.models import MODELS


@dataclass(frozen=True)
class AuditRow:
    """One aspect of one model, as each arm builds it."""

    model: str
    variant: str
    input_size: int
    aspect: str
    pytorch: str
    keras: str
    differs: bool

    def as_row(self) -> dict:
        """The row as a flat dict (CSV / table)."""
        return asdict(self)


def _differs(pytorch: str, keras: str) -> bool:
    """Whether two facts differ; sampled init stds count as equal within sampling noise."""
    if ", std " not in pytorch or ", std " not in keras:
        return pytorch != keras
    (fam_a, std_a), (fam_b, std_b) = (v.rsplit(", std ", 1) for v in (pytorch, keras))
    # "random" marks a tensor too small to name its family: its std is noisy too.
    tolerance = 0.35 if fam_a == "random" else 0.10
    return fam_a != fam_b or abs(float(std_a) / float(std_b) - 1.0) > tolerance


def audit_model(
    model: str, input_size: int = 32, num_classes: int = 10, variant: str = "library"
) -> list[AuditRow]:
    """Build ``model`` in both arms (random init) and list each aspect side by side."""
    from fwbench.frameworks.both import import_both

    torch, _, _, keras = import_both()
    from fwbench.frameworks.keras.models import build_model as build_keras
    from fwbench.frameworks.pytorch.models import build_model as build_torch
    from fwbench.parity.audit_read import describe_keras, describe_torch

    torch.manual_seed(0)
    keras.utils.set_random_seed(0)
    pt = describe_torch(build_torch(model, num_classes, input_size, variant))
    keras.backend.clear_session()
    ks = describe_keras(build_keras(model, num_classes, input_size, variant))
    return [
        AuditRow(
            model,
            variant,
            input_size,
            aspect,
            pt[aspect],
            ks[aspect],
            _differs(pt[aspect], ks[aspect]),
        )
        for aspect in pt
    ]


def audit_all(
    models: Iterable[str] = tuple(MODELS), input_size: int = 32, variant: str = "library"
) -> list[AuditRow]:
    """``audit_model`` for every model."""
    return [row for m in models for row in audit_model(m, input_size, variant=variant)]


def to_markdown(rows: list[AuditRow]) -> str:
    """One markdown table per model (the report embeds it)."""
    out = []
    for model in dict.fromkeys(r.model for r in rows):
        mine = [r for r in rows if r.model == model]
        first = mine[0]
        size = f"{first.input_size}×{first.input_size}"
        out.append(f"### {MODELS[model].display} ({first.variant}, {size})\n")
        out.append("| aspect | PyTorch | Keras | differs |")
        out.append("|---|---|---|---|")
        out += [
            f"| {r.aspect} | {r.pytorch} | {r.keras} | {'yes' if r.differs else 'no'} |"
            for r in mine
        ]
        out.append("")
    return "\n".join(out)


def write_audit(rows: list[AuditRow], results_dir: Path) -> tuple[Path, Path]:
    """Write ``model_audit.csv`` and ``model_audit.md`` into ``results_dir``."""
    import pandas as pd

    csv = results_dir / "model_audit.csv"
    write_text(csv, pd.DataFrame([r.as_row() for r in rows]).to_csv(index=False))
    md = write_text(results_dir / "model_audit.md", to_markdown(rows))
    return csv, md
