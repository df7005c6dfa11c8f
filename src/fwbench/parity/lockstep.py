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
from fwbench.parity.measures import (
    bn_divergence,
    classifier_name,
    compare_batches,
    dropout_differences,
    ratio,
    relative_norm,
    weight_divergence,
)
from fwbench.parity.train_checks import Check, lockstep_checks
from fwbench.recipe.schedule import lr_at
from fwbench.record.runs import RunSpec, make_spec

ARMS = ("pytorch", "keras", "control")


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
        return ratio(self.weight_div_keras, self.weight_div_control)


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
        return ratio(self.prob_max_abs_diff_keras, self.prob_max_abs_diff_control)


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
        eval_loss_rel=ratio(abs(e_pt.loss - e_ks.loss), abs(e_pt.loss)),
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
            _row(step, lrs, out["keras"].lr, loss, grads, new, replay, compare_batches(batches))
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
        loss_rel=ratio(abs(loss["pytorch"] - loss["keras"]), abs(loss["pytorch"])),
        weight_div_keras=weight_divergence(w["pytorch"], w["keras"]),
        weight_div_control=weight_divergence(w["pytorch"], w["control"]),
        bn_mean_rel=mean_rel, bn_var_rel=var_rel,
        classifier_grad_rel=relative_norm(grads["pytorch"][head], grads["keras"][head]),
        classifier_momentum_rel=(
            relative_norm(buffers[0][head], buffers[1][head]) if head in buffers[1] else math.inf
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
