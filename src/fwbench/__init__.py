"""fwbench: compare training an image classifier in PyTorch and in Keras, with evidence.

From Python (each call imports what it needs only when called)::

    import fwbench
    runs, epochs = fwbench.load_results("study/", stages="stage1")  # DataFrames
    analysis = fwbench.analyze(runs)       # .summary, .comparison (verdicts), .per_class
    fwbench.report("study/")               # report/report.md and report/report.html
    specs = fwbench.expand("stage1", "study/", sets=["lr.base_lr=0.05"])  # the runs of a stage

``help(fwbench.load_results)`` (and the others) say what each returns.
"""

from fwbench.core.version import __version__

__all__ = ["__version__", "analyze", "expand", "load_results", "report"]

_API = ("analyze", "expand", "load_results", "report")


def __getattr__(name: str):
    # PEP 562: `import fwbench` (which every `fwbench` command does) stays free of pandas & co.
    if name in _API:
        from fwbench import api

        return getattr(api, name)
    raise AttributeError(f"module 'fwbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    # dir(fwbench), tab completion and help(fwbench) show the API, loaded or not
    return sorted({*globals(), *_API})
