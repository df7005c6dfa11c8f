"""Training parity (fairness layer 4): PyTorch and one Keras arm train in lockstep from one start.

Three arms run side by side in one process, each through its backend's own code: PyTorch, a
Keras arm (``keras``, ``keras-jax`` or ``keras-torch``: matched mirror, ``init: shared``) and a
*control* — PyTorch again with one innocuous change (memory layout toggled, the ``layout``
perturbation). Each arm builds its own inputs and step plan from its own run spec, as
``fwbench train`` does, and takes each step's LR from ``lr_at`` over *its own* plan; what the
optimizer held and what it really applied (read back from the update, ``replay.py``) are
compared step by step. Before the first step each arm runs the ``evaluate("val")`` a training
run uses, and the arms' dropout / stochastic-depth layers are compared (kind, placement, rate);
then dropout is switched off for the lockstep itself (each arm would draw its own masks).

The checks and their measured tolerances are in ``train_checks.py``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from fwbench.config.train import TrainConfig
from fwbench.core.paths import Workspace
from fwbench.parity.train_checks import Check, lockstep_checks
from fwbench.recipe.schedule import lr_at
from fwbench.record.runs import RunSpec, make_spec

ARMS = ("pytorch", "keras", "control")
BN_STATS = ("running_mean", "running_var")


@dataclass(frozen=True)
class StepRow:
    """One lockstep step: each arm's loss, LR and how far the arms are apart after it."""

    step: int
    lr: float  # the PyTorch arm's LR, from its own step plan
    lr_keras: float  # the Keras arm's LR, from its own step plan
    lr_held_keras: float  # the LR the Keras optimizer held when it stepped
    lr_effective_pytorch: float  # the LR each optimizer applied, read back from the update
    lr_effective_keras: float
    lr_effective_control: float
    buffer_rel_pytorch: float  # momentum buffer vs PyTorch's rule on the arm's own inputs
    buffer_rel_keras: float
    buffer_rel_control: float
    loss_pytorch: float
    loss_keras: float
    loss_control: float
    loss_rel: float  # |pytorch - keras| / |pytorch|
    weight_div_keras: float  # ||w_pt - w_keras|| / ||w_pt|| over the parameters
    weight_div_control: float  # ||w_pt - w_control|| / ||w_pt||: the instability floor
    bn_mean_rel: float  # worst BN channel: |Δ running_mean| / sqrt(running_var)
    bn_var_rel: float  # worst BN channel: |Δ running_var| / running_var
    classifier_grad_rel: float  # ||Δ g|| / ||g|| of the classifier weight
    classifier_momentum_rel: float  # ||Δ b|| / ||b|| of its momentum buffer (PyTorch's rule)
    batch_max_abs_diff: float  # over the three arms' input tensors
    labels_equal: bool

    @property
    def ratio(self) -> float:
        """Cross-framework divergence over the instability floor."""
        return _ratio(self.weight_div_keras, self.weight_div_control)


@dataclass(frozen=True)
class Start:
    """What the arms look like before the first step."""

    weights_max_abs_diff: float
    eval_loss_rel: float  # evaluate("val"): |Δ loss| / loss
    eval_prob_max_abs_diff: float  # evaluate("val"): max |Δ probability|
    eval_images: int
    dropout_differences: list[str]  # "classifier.0: dropout 0.2 vs dropout 0.5", ...
    dropout_layers: int


@dataclass(frozen=True)
class End:
    """The ``evaluate("val")`` of each arm after the last step, against PyTorch's."""

    prob_max_abs_diff_keras: float
    prob_max_abs_diff_control: float  # the instability floor of the evaluation
    loss_keras: float
    loss_pytorch: float
    loss_control: float

    @property
    def ratio(self) -> float:
        """The Keras arm's evaluation divergence over the control's."""
        return _ratio(self.prob_max_abs_diff_keras, self.prob_max_abs_diff_control)


@dataclass
class Lockstep:
    """The outcome of ``fwbench parity train`` for one model, Keras arm, precision and mode."""

    model: str
    dataset: str
    framework: str  # the Keras arm
    precision: str  # fp32 | amp
    dtype: str  # float32 | float64 (fp32 only)
    compile: str  # eager | compiled
    seed: int
    rows: list[StepRow] = field(default_factory=list)
    start: Start | None = None
    end: End | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def key(self) -> dict:
        """The columns that name this run in ``results/parity_train*.csv``."""
        names = ("model", "dataset", "framework", "precision", "dtype", "compile", "seed")
        return {k: getattr(self, k) for k in names}

    def check_rows(self) -> list[dict]:
        """The checks as flat rows (``results/parity_train.csv``)."""
        return [self.key | {"steps": len(self.rows)} | asdict(c) for c in self.checks]

    def step_rows(self) -> list[dict]:
        """The per-step table as flat rows (``results/parity_train_steps.csv``)."""
        return [self.key | asdict(r) | {"ratio": r.ratio} for r in self.rows]

    def to_json(self) -> dict:
        """Everything, as JSON-able data (a Keras arm run in its own process sends this)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> Lockstep:
        """The inverse of :meth:`to_json`."""
        data = dict(data)
        rows = [StepRow(**r) for r in data.pop("rows")]
        checks = [Check(**c) for c in data.pop("checks")]
        start, end = data.pop("start"), data.pop("end")
        return cls(
            **data, rows=rows, checks=checks, start=Start(**start) if start else None,
            end=End(**end) if end else None,
        )  # fmt: skip


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else (0.0 if a == 0 else math.inf)


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / ||a|| in float64 (0 when both are 0)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return _ratio(float(np.linalg.norm(a - b)), float(np.linalg.norm(a)))


def _params(state: dict[str, np.ndarray]) -> list[str]:
    return [k for k in state if not k.endswith(BN_STATS)]


def weight_divergence(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> float:
    """||Δw|| / ||w|| over every parameter (BatchNorm statistics left out)."""
    names = _params(ref)
    flat = [
        np.concatenate([np.ravel(s[n]).astype(np.float64) for n in names]) for s in (ref, other)
    ]
    return _rel(*flat)


def bn_divergence(ref: dict[str, np.ndarray], other: dict[str, np.ndarray]) -> tuple[float, float]:
    """Worst channel's BatchNorm running-mean and running-variance divergence.

    The mean in units of the channel's running standard deviation (means sit near 0, where a
    plain ratio is rounding noise; what BN's output sees is the shift over the scale), the
    variance as a ratio (it stays near 1; the channel with the widest batch variance shows a
    wrong update rule first).
    """
    means, variances = [0.0], [0.0]
    for k in ref:
        if k.endswith("running_var"):
            var = ref[k].astype(np.float64)
            mean = k.removesuffix("running_var") + "running_mean"
            shift = np.abs(ref[mean].astype(np.float64) - other[mean])
            means.append(float(np.max(shift / np.sqrt(var))))
            variances.append(float(np.max(np.abs(var - other[k]) / var)))
    return max(means), max(variances)


def _as_nhwc(x, channels_first: bool) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu()
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, np.float64)
    return x.transpose(0, 2, 3, 1) if channels_first else x


def dropout_differences(pytorch: list[tuple], keras: list[tuple]) -> list[str]:
    """Where the arms' dropout / stochastic-depth layers differ in placement, kind or rate."""
    pt = {name: (kind, rate) for name, kind, rate in pytorch}
    ks = {name: (kind, rate) for name, kind, rate in keras}
    out = []
    for name in dict.fromkeys([*pt, *ks]):
        a, b = pt.get(name), ks.get(name)
        if a is None or b is None or a[0] != b[0] or not math.isclose(a[1], b[1], abs_tol=1e-12):
            show = [f"{v[0]} {v[1]:g}" if v else "absent" for v in (a, b)]
            out.append(f"{name}: pytorch {show[0]} vs keras {show[1]}")
    if not out and [n for n, *_ in pytorch] != [n for n, *_ in keras]:
        out.append("same layers in a different order")
    return out


class _Arms:
    """The three backends of a lockstep run, each built from its own spec and inputs."""

    def __init__(self, ws: Workspace, specs: dict[str, RunSpec], dtype: str):
        from fwbench.frameworks.both import import_both

        import_both(specs["keras"].framework)  # torch before TensorFlow
        from fwbench.frameworks.base import load_backend
        from fwbench.recipe.inputs import load_inputs

        self.specs = specs
        self.backends = {arm: load_backend(spec.framework) for arm, spec in specs.items()}
        for backend in self.backends.values():
            backend.dtype = dtype
        self.backends["keras"].capture_gradients = True
        for arm, backend in self.backends.items():
            backend.setup(specs[arm])
        self.inputs = {arm: load_inputs(ws, spec) for arm, spec in specs.items()}
        for arm, backend in self.backends.items():
            backend.build(specs[arm], self.inputs[arm])
        self._iters: dict = {}

    def lrs(self, step: int) -> dict[str, float]:
        """Each arm's LR of ``step``, from its own config and step plan (as the loop takes it)."""
        return {
            a: lr_at(step, self.specs[a].train_config.lr, self.inputs[a].plan) for a in self.specs
        }

    def batches(self, step: int) -> dict[str, list]:
        """Each arm's micro-batches of ``step``, from its own pipeline and plan."""
        out = {}
        for arm, backend in self.backends.items():
            plan = self.inputs[arm].plan
            epoch, i = divmod(step, plan.steps_per_epoch)
            if i == 0:
                self._iters[arm] = iter(backend.train_batches(epoch))
            out[arm] = [next(self._iters[arm]) for _ in range(plan.accumulation)]
        return out

    def state(self) -> dict[str, tuple[dict, dict]]:
        """Each arm's weights and momentum buffers, by PyTorch name."""
        return {a: (b.weights(), b.optimizer_state()) for a, b in self.backends.items()}


def lockstep_specs(
    train_config: TrainConfig,
    *,
    dataset: str,
    model: str,
    seed: int,
    batch_size: int,
    framework: str = "keras",
    precision: str = "fp32",
    compile_mode: str = "eager",
) -> dict[str, RunSpec]:
    """The three arms' specs: matched, shared init, one loader process, ``batch_size``."""
    training = train_config.training.model_copy(update={"batch_size": batch_size})
    cfg = train_config.model_copy(update={"training": training})
    common = {"dataset": dataset, "model": model, "precision": precision, "seed": seed}
    common |= {"variant": "matched", "num_workers": 0, "compile_mode": compile_mode}
    # Under torch.compile the layout toggle is no perturbation: Inductor picks its own layouts
    # and kernels, and the control stayed within 8.7e-11 of PyTorch after one step (eager:
    # 7.1e-7), a floor 4000x below any float32 reordering. The compiled comparison's control
    # is therefore PyTorch eager with the layout toggled: the same math through other kernels,
    # which is what separates two compiled graphs of the same model.
    control = common | {"compile_mode": "eager"}
    return {
        "pytorch": make_spec(cfg, framework="pytorch", **common),
        "keras": make_spec(cfg, framework=framework, init="shared", **common),
        "control": make_spec(cfg, framework="pytorch", perturbation="layout", **control),
    }


def classifier_name(state: dict[str, np.ndarray]) -> str:
    """The classifier's weight: the last 2-D parameter in PyTorch order."""
    return [k for k in _params(state) if state[k].ndim == 2][-1]


def _start(arms: _Arms) -> Start:
    """Shared init, the evaluation a run really uses, and the dropout layout, before step 0."""
    pt, ks = arms.backends["pytorch"], arms.backends["keras"]
    w_pt, w_ks = pt.weights(), ks.weights()
    e_pt, e_ks = pt.evaluate("val"), ks.evaluate("val")
    pt_layers, ks_layers = pt.stochastic_layers(), ks.stochastic_layers()
    for backend in arms.backends.values():
        backend.disable_dropout()  # after the comparison: masks would differ per arm
    return Start(
        weights_max_abs_diff=max(float(np.max(np.abs(w_pt[k] - w_ks[k]))) for k in w_pt),
        eval_loss_rel=_ratio(abs(e_pt.loss - e_ks.loss), abs(e_pt.loss)),
        eval_prob_max_abs_diff=float(
            np.max(np.abs(e_pt.probabilities.astype(np.float64) - e_ks.probabilities))
        ),
        eval_images=len(e_pt.probabilities),
        dropout_differences=dropout_differences(pt_layers, ks_layers),
        dropout_layers=len(pt_layers),
    )


def run_lockstep(
    ws: Workspace,
    train_config: TrainConfig,
    *,
    dataset: str,
    model: str,
    steps: int,
    dtype: str = "float32",
    seed: int = 42,
    batch_size: int = 32,
    framework: str = "keras",
    precision: str = "fp32",
    compile_mode: str = "eager",
) -> Lockstep:
    """Train the three arms ``steps`` steps in lockstep; return the table and the checks."""
    from fwbench.parity.replay import Rule, replay_step

    specs = lockstep_specs(
        train_config, dataset=dataset, model=model, seed=seed, batch_size=batch_size,
        framework=framework, precision=precision, compile_mode=compile_mode,
    )  # fmt: skip
    arms = _Arms(ws, specs, dtype)
    result = Lockstep(
        model, dataset, specs["keras"].framework, precision, dtype, compile_mode, seed
    )
    result.start = _start(arms)
    o = specs["pytorch"].train_config.optimizer
    rule = Rule(o.momentum, o.nesterov, o.weight_decay)
    state = arms.state()
    for step in range(steps):
        lrs = arms.lrs(step)
        batches = arms.batches(step)
        out = {
            a: b.read_steps([b.train_step(batches[a], lrs[a])])[0] for a, b in arms.backends.items()
        }
        grads = {a: b.gradients() for a, b in arms.backends.items()}
        new = arms.state()
        replay = {
            a: replay_step(rule, state[a][0], new[a][0], grads[a], state[a][1], new[a][1])
            for a in ARMS
        }
        loss = {a: r.loss_sum / arms.inputs[a].plan.accumulation for a, r in out.items()}
        result.rows.append(
            _row(step, lrs, out["keras"].lr, loss, grads, new, replay, _compare_batches(batches))
        )
        state = new
    result.end = _end(arms)
    result.checks = lockstep_checks(result)
    return result


def _row(step, lrs, held_keras, loss, grads, state, replay, batches) -> StepRow:
    """One step's row from each arm's LR, loss, gradients, new state and replayed update."""
    w = {a: state[a][0] for a in ARMS}
    head = classifier_name(w["pytorch"])
    buffers = (state["pytorch"][1], state["keras"][1])
    mean_rel, var_rel = bn_divergence(w["pytorch"], w["keras"])
    return StepRow(
        step=step, lr=lrs["pytorch"], lr_keras=lrs["keras"], lr_held_keras=held_keras,
        lr_effective_pytorch=replay["pytorch"].effective_lr,
        lr_effective_keras=replay["keras"].effective_lr,
        lr_effective_control=replay["control"].effective_lr,
        buffer_rel_pytorch=replay["pytorch"].buffer_rel,
        buffer_rel_keras=replay["keras"].buffer_rel,
        buffer_rel_control=replay["control"].buffer_rel,
        loss_pytorch=loss["pytorch"], loss_keras=loss["keras"], loss_control=loss["control"],
        loss_rel=_ratio(abs(loss["pytorch"] - loss["keras"]), abs(loss["pytorch"])),
        weight_div_keras=weight_divergence(w["pytorch"], w["keras"]),
        weight_div_control=weight_divergence(w["pytorch"], w["control"]),
        bn_mean_rel=mean_rel, bn_var_rel=var_rel,
        classifier_grad_rel=_rel(grads["pytorch"][head], grads["keras"][head]),
        classifier_momentum_rel=(
            _rel(buffers[0][head], buffers[1][head]) if head in buffers[1] else math.inf
        ),
        batch_max_abs_diff=batches[0], labels_equal=batches[1],
    )  # fmt: skip


def _end(arms: _Arms) -> End:
    """Each arm's evaluation after the last step (BatchNorm statistics have moved by then)."""
    e = {a: b.evaluate("val") for a, b in arms.backends.items()}
    ref = e["pytorch"].probabilities.astype(np.float64)

    def diff(arm: str) -> float:
        return float(np.max(np.abs(ref - e[arm].probabilities)))

    return End(
        diff("keras"), diff("control"), e["keras"].loss, e["pytorch"].loss, e["control"].loss
    )


def _compare_batches(batches: dict[str, list]) -> tuple[float, bool]:
    """Max |Δ| between the arms' input tensors (NHWC) and whether the labels are equal."""
    worst, same = 0.0, True
    if any(len(b) != len(batches["pytorch"]) for b in batches.values()):
        return math.inf, False
    for k, (x_pt, y_pt) in enumerate(batches["pytorch"]):
        ref = _as_nhwc(x_pt, channels_first=True)
        for arm, first in (("keras", False), ("control", True)):
            x, y = batches[arm][k]
            worst = max(worst, float(np.max(np.abs(ref - _as_nhwc(x, first)))))
            same &= np.array_equal(np.asarray(y_pt), np.asarray(y))
    return worst, bool(same)
