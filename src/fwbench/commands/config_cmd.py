"""``fwbench config show``: the resolved configuration and each stage's run count."""

from __future__ import annotations

import typer
from rich.console import Console

from fwbench.commands.options import MatrixOpt, OptPath, TrainConfigOpt, WorkspaceOpt
from fwbench.commands.output import print_whole
from fwbench.core.paths import Workspace

app = typer.Typer(
    help="Show the resolved configuration (reading it checks it: an error names the file and key).",
    no_args_is_help=True,
)


@app.command("show")
def show(
    config: OptPath = TrainConfigOpt, matrix: OptPath = MatrixOpt, workspace: OptPath = WorkspaceOpt
) -> None:
    """Print the resolved train config and experiment matrix, with each stage's run count."""
    import yaml
    from rich.table import Table

    from fwbench.config.experiment_matrix import EXPERIMENT_MATRIX, load_matrix
    from fwbench.config.train import TRAIN_CONFIG, find_user_config, load_train_config

    ws = Workspace.from_env(workspace)
    train_path = find_user_config(ws.configs_dir, TRAIN_CONFIG, config)
    matrix_path = find_user_config(ws.configs_dir, EXPERIMENT_MATRIX, matrix)
    train = load_train_config(train_path)
    stages = load_matrix(matrix_path)
    out = Console()
    out.print(f"[bold]# train_config[/] ({train_path or 'package defaults'})")
    out.print(yaml.safe_dump(train.model_dump(mode="json"), sort_keys=False), highlight=False)
    out.print(f"[bold]# experiment_matrix[/] ({matrix_path or 'package defaults'})")
    out.print(yaml.safe_dump(stages.model_dump(mode="json"), sort_keys=False), highlight=False)
    table = Table("stage", "datasets", "models", "precisions", "seeds", "frameworks", "runs")
    for name, s in stages.stages.items():
        table.add_row(
            name,
            *(str(len(a)) for a in (s.datasets, s.models, s.precisions, s.seeds, s.frameworks)),
            str(s.run_count),
        )
    print_whole(out, table)
