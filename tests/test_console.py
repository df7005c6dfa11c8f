"""The live bar of `fwbench train` on a terminal: shown before the framework loads, sane rates."""

from __future__ import annotations

import io
import time

from fwbench.training.console import ConsoleSink, warmup_warning
from specs import digits_spec


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _spec():
    return digits_spec(epochs_override=2)


def test_the_bar_shows_at_once_and_its_first_rates_are_sane():
    sink = ConsoleSink(stream=_Terminal())
    sink.prepare(_spec())  # before any framework import: the bar is up with a spinner
    assert sink.bar is not None and "loading the framework" in sink.bar.tasks[0].description
    sink.start(_spec(), steps_per_epoch=10, first_epoch=0)
    (task,) = sink.bar.tasks
    assert task.description == "pytorch epoch 1/2" and task.total == 10
    sink.step(0, 0, 2.5, 0.0, 16)
    first = sink.bar.tasks[0].fields["rate"]
    assert first == "loss 2.5000 lr warmup"  # one step timed from nothing is no rate
    time.sleep(0.05)  # a step's time
    sink.step(1, 0, 2.0, 0.0125, 16)
    second = sink.bar.tasks[0].fields["rate"]
    its, imgs = float(second.split(" it/s")[0]), float(second.split(" img/s")[0].split()[-1])
    assert 1 < its <= 20 and abs(imgs / its - 16) < 1  # one step in >= 0.05 s, 16 images
    assert second.endswith("loss 2.0000 lr 0.0125")
    sink.close("done", None)
    assert sink.bar is None


def test_warmup_as_long_as_training_is_said():
    assert warmup_warning(10, 20) is None and warmup_warning(0, 0) is None
    assert warmup_warning(20, 20).startswith("warning: LR warmup (20 steps) is as long as")


def test_the_report_counts_runs_whose_warmup_lasted_the_whole_training(tmp_path):
    import json

    import pandas as pd

    from fwbench.record.view import warmup_as_long_as_training

    for name, warm, total in (("a", 4, 4), ("b", 2, 10), ("c", 12, 10)):
        (tmp_path / name).mkdir()
        facts = {"run": {"warmup_steps": warm, "total_steps": total}}
        (tmp_path / name / "env.json").write_text(json.dumps(facts))
    runs = pd.DataFrame({"run_dir": ["a", "b", "c", "missing", None]})
    assert warmup_as_long_as_training(tmp_path, runs) == 2
