"""Training parity (fairness layer 4): both arms train in lockstep from one start.

Three arms run side by side in one process, each through its backend's own ``train_step``
(its optimizer, loss and BatchNorm): PyTorch, Keras (matched mirror, ``init: shared``), and a
*control* — PyTorch again with one innocuous change (memory layout toggled, the ``layout``
perturbation). Dropout is off in all three (each arm would draw its own masks). Every step
the three take their batches from their own input pipelines and the LR from the shared
schedule; the batches, labels and LRs must be identical.

What is asserted, and why (numbers in docs/notes/frameworks.md):
- steps 0–1, in the run's dtype: loss, BatchNorm running statistics, the classifier's gradient
  and its momentum buffer (PyTorch's convention) agree tightly. Later steps cannot: ReLU
  kinks amplify rounding, and training is chaotic in each framework alone.
- float64: weights after the first update (step 1; step 0 runs at LR 0) agree to 1e-8 (FP32
  rounding noise would hide a missing weight decay or Keras' own SGD; float64 does not).
- over all steps: finite losses, and the PyTorch–Keras weight divergence at the last step at
  most ``FLOOR_RATIO`` × the PyTorch–control divergence (the *instability floor*). The floor
  is a float32 notion: in float64 the layout toggle is exact on a CPU (the control stays
  within ~1e-15 of PyTorch), so there the check reports the ratio as not applicable.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from fwbench.config.train import TrainConfig
from fwbench.core.paths import Workspace
from fwbench.recipe.schedule import lr_at
from fwbench.record.runs import RunSpec, make_spec

LOSS_REL = 1e-4
BN_REL = 1e-3
CLASSIFIER_GRAD_REL = 5e-3
FLOAT64_WEIGHTS_REL = 1e-8
LOGITS_REL = 1e-6
FLOOR_RATIO = 1.5
EARLY_STEPS = (0, 1)
# Step 0 runs at LR 0 (warmup starts at 0): the weights first move at step 1. After it the
# arms agree to ~1e-11 in float64; from step 2 on, ReLU kinks can make them jump (measured).
FLOAT64_STEPS = (1,)
LOGIT_IMAGES = 64
ARMS = ("pytorch", "keras", "control")
BN_STATS = ("running_mean", "running_var")


@dataclass(frozen=True)
class StepRow:
    """One lockstep step: each arm's loss and how far the arms are apart after it."""

    step: int
    lr: float
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
    lr_equal: bool

    @property
    def ratio(self) -> float:
        """Cross-framework divergence over the instability floor."""
        return _ratio(self.weight_div_keras, self.weight_div_control)


@dataclass(frozen=True)
class Check:
    """One assertion of the lockstep run."""

    check: str
    value: float
    tolerance: float
    passed: bool
    detail: str = ""


@dataclass
class Lockstep:
    """The outcome of ``fwbench parity train`` for one model and dtype."""

    model: str
    dataset: str
    dtype: str
    seed: int
    rows: list[StepRow] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def check_rows(self) -> list[dict]:
        """The checks as flat rows (``results/parity_train.csv``)."""
        key = {"model": self.model, "dataset": self.dataset, "dtype": self.dtype, "seed": self.seed}
        return [key | {"steps": len(self.rows)} | asdict(c) for c in self.checks]

    def step_rows(self) -> list[dict]:
        """The per-step table as flat rows (``results/parity_train_steps.csv``)."""
        key = {"model": self.model, "dataset": self.dataset, "dtype": self.dtype, "seed": self.seed}
        return [key | asdict(r) | {"ratio": r.ratio} for r in self.rows]


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
    x = np.asarray(x.numpy() if hasattr(x, "numpy") else x, np.float64)
    return x.transpose(0, 2, 3, 1) if channels_first else x


class _Arms:
    """The three backends of a lockstep run, built from their run specs."""

    def __init__(self, ws: Workspace, specs: dict[str, RunSpec], dtype: str):
        from fwbench.frameworks.both import import_both

        import_both()  # torch before TensorFlow
        from fwbench.frameworks.base import load_backend
        from fwbench.recipe.inputs import load_inputs

        self.backends = {arm: load_backend(spec.framework) for arm, spec in specs.items()}
        for backend in self.backends.values():
            backend.dtype = dtype
        self.backends["keras"].capture_gradients = True
        for arm, backend in self.backends.items():
            backend.setup(specs[arm])
        self.inputs = load_inputs(ws, specs["pytorch"])
        for arm, backend in self.backends.items():
            backend.build(specs[arm], self.inputs)
            backend.disable_dropout()
        self._iters: dict = {}

    def batches(self, step: int) -> dict[str, list]:
        """Each arm's micro-batches of ``step``, from its own pipeline."""
        plan = self.inputs.plan
        epoch, i = divmod(step, plan.steps_per_epoch)
        if i == 0:
            self._iters = {a: iter(b.train_batches(epoch)) for a, b in self.backends.items()}
        return {a: [next(it) for _ in range(plan.accumulation)] for a, it in self._iters.items()}


def lockstep_specs(
    train_config: TrainConfig, *, dataset: str, model: str, seed: int, batch_size: int
) -> dict[str, RunSpec]:
    """The three arms' specs: matched, shared init, one loader process, ``batch_size``."""
    training = train_config.training.model_copy(update={"batch_size": batch_size})
    cfg = train_config.model_copy(update={"training": training})
    common = {"dataset": dataset, "model": model, "precision": "fp32", "seed": seed}
    common |= {"variant": "matched", "num_workers": 0}
    return {
        "pytorch": make_spec(cfg, framework="pytorch", **common),
        "keras": make_spec(cfg, framework="keras", init="shared", **common),
        "control": make_spec(cfg, framework="pytorch", perturbation="layout", **common),
    }


def classifier_name(state: dict[str, np.ndarray]) -> str:
    """The classifier's weight: the last 2-D parameter in PyTorch order."""
    return [k for k in _params(state) if state[k].ndim == 2][-1]


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
) -> Lockstep:
    """Train the three arms ``steps`` steps in lockstep; return the table and the checks."""
    specs = lockstep_specs(
        train_config, dataset=dataset, model=model, seed=seed, batch_size=batch_size
    )
    arms = _Arms(ws, specs, dtype)
    pt, ks = arms.backends["pytorch"], arms.backends["keras"]
    result = Lockstep(model, dataset, dtype, seed)
    start = (pt.weights(), ks.weights())
    logits = (pt.eval_logits("val", LOGIT_IMAGES), ks.eval_logits("val", LOGIT_IMAGES))
    f64_weights: list[float] = []
    for step in range(steps):
        lr = lr_at(step, specs["pytorch"].train_config.lr, arms.inputs.plan)
        batches = arms.batches(step)
        diff, labels_equal = _compare_batches(batches)
        out = {a: b.read_steps([b.train_step(batches[a], lr)])[0] for a, b in arms.backends.items()}
        w = {a: b.weights() for a, b in arms.backends.items()}
        grads = (pt.gradients(), ks.gradients())
        buffers = (pt.optimizer_state(), ks.optimizer_state())
        head = classifier_name(w["pytorch"])
        mean_rel, var_rel = bn_divergence(w["pytorch"], w["keras"])
        loss = {a: r.loss_sum / arms.inputs.plan.accumulation for a, r in out.items()}
        row = StepRow(
            step=step,
            lr=lr,
            loss_pytorch=loss["pytorch"],
            loss_keras=loss["keras"],
            loss_control=loss["control"],
            loss_rel=_ratio(abs(loss["pytorch"] - loss["keras"]), abs(loss["pytorch"])),
            weight_div_keras=weight_divergence(w["pytorch"], w["keras"]),
            weight_div_control=weight_divergence(w["pytorch"], w["control"]),
            bn_mean_rel=mean_rel,
            bn_var_rel=var_rel,
            classifier_grad_rel=_rel(grads[0][head], grads[1][head]),
            classifier_momentum_rel=(
                _rel(buffers[0][head], buffers[1][head]) if head in buffers[1] else math.inf
            ),
            batch_max_abs_diff=diff,
            labels_equal=labels_equal,
            lr_equal=all(r.lr == lr for r in out.values()),
        )
        result.rows.append(row)
        if step in FLOAT64_STEPS:
            f64_weights.append(row.weight_div_keras)
    result.checks = _checks(result.rows, start, logits, dtype, f64_weights)
    return result


def _compare_batches(batches: dict[str, list]) -> tuple[float, bool]:
    """Max |Δ| between the arms' input tensors (NHWC) and whether the labels are equal."""
    worst, same = 0.0, True
    for k, (x_pt, y_pt) in enumerate(batches["pytorch"]):
        ref = _as_nhwc(x_pt, channels_first=True)
        for arm, first in (("keras", False), ("control", True)):
            x, y = batches[arm][k]
            worst = max(worst, float(np.max(np.abs(ref - _as_nhwc(x, first)))))
            same &= np.array_equal(np.asarray(y_pt), np.asarray(y))
    return worst, bool(same)


def _checks(rows, start, logits, dtype, f64_weights) -> list[Check]:
    early = [r for r in rows if r.step in EARLY_STEPS]
    last = rows[-1] if rows else None
    pt_start, ks_start = start
    start_diff = max(float(np.max(np.abs(pt_start[k] - ks_start[k]))) for k in pt_start)
    logit_rel = float(np.max(np.abs(logits[0] - logits[1])) / np.max(np.abs(logits[0])))

    def worst(attr: str, among=early) -> float:
        return max((getattr(r, attr) for r in among), default=math.nan)

    def check(name: str, value: float, tol: float, detail: str = "") -> Check:
        return Check(name, value, tol, bool(value <= tol), detail)

    checks = [
        check("start weights: max |Δ| (shared init)", start_diff, 0.0),
        check(f"step-0 eval logits: max |Δ| / max |logit| ({len(logits[0])} val images)",
              logit_rel, LOGITS_REL),
        check("batches: max |Δ| over all steps", worst("batch_max_abs_diff", rows), 0.0),
        check("labels differ at steps", sum(not r.labels_equal for r in rows), 0),
        check("LR differs from the schedule at steps", sum(not r.lr_equal for r in rows), 0),
        check("steps 0-1: loss, relative", worst("loss_rel"), LOSS_REL),
        check("steps 0-1: BN running_mean / std, worst channel", worst("bn_mean_rel"), BN_REL),
        check("steps 0-1: BN running_var, worst channel", worst("bn_var_rel"), BN_REL),
        check("steps 0-1: classifier gradient, relative", worst("classifier_grad_rel"),
              CLASSIFIER_GRAD_REL),
        check("steps 0-1: classifier momentum buffer, relative", worst("classifier_momentum_rel"),
              CLASSIFIER_GRAD_REL),
    ]  # fmt: skip
    if dtype == "float64":
        value = max(f64_weights, default=math.nan)
        checks.append(check("float64, step 1 (first update): weights, relative", value,
                            FLOAT64_WEIGHTS_REL))  # fmt: skip
    bad = [r.step for r in rows if not all(map(math.isfinite, (r.loss_pytorch, r.loss_keras)))]
    checks.append(check("non-finite losses", len(bad), 0, f"steps {bad}" if bad else ""))
    if last is not None:
        name = "last step: weight divergence / instability floor"
        detail = (
            f"step {last.step}: pytorch-keras {last.weight_div_keras:.3g}, "
            f"pytorch-control {last.weight_div_control:.3g}"
        )
        if dtype == "float64":
            detail += "; not applicable in float64 (the layout toggle is exact there)"
            checks.append(Check(name, last.ratio, FLOOR_RATIO, True, detail))
        else:
            checks.append(check(name, last.ratio, FLOOR_RATIO, detail))
    return [c if not math.isnan(c.value) else Check(c.check, c.value, c.tolerance, False,
                                                    "not measured: too few steps")
            for c in checks]  # fmt: skip
