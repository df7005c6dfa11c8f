"""Keras side of ``fwbench bench`` (every Keras arm): pin the speed switches, the bare loop, run.

Run as ``python -m fwbench.frameworks.keras.bench --json-args JOB`` in a process whose
``KERAS_BACKEND`` is the arm's; prints one line of rows.

The bare loop is the minimal idiomatic Keras 3 training step of the backend. On TensorFlow,
the custom loop of the Keras guide::

    @tf.function(jit_compile=compiled)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, tf.cast(model(x, training=True), tf.float32))
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, model.trainable_variables),
                        model.trainable_variables)
        return loss

On JAX and PyTorch, Keras' own ``model.compile(jit_compile=...)`` + ``train_on_batch`` (the
JAX one is ``jax.jit``-compiled in both modes). Each uses ``keras.optimizers.SGD`` at the train
config's momentum, Nesterov and weight decay (``LossScaleOptimizer`` around it for AMP on a
GPU), the same model builder, precision policy, threads and determinism switches as the
harness. The step's loss is read back every step: the device synchronisation before the
clock is read.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import keras
import numpy as np

from fwbench.bench.measure import (
    BenchJob,
    Runner,
    framework_main,
    harness_runners,
    job_rows,
    job_spec_and_inputs,
    measure_modes,
)
from fwbench.frameworks.env import cpu_model
from fwbench.frameworks.keras import envinfo
from fwbench.frameworks.keras.backend import KerasBackend


def synthetic_batch(job: BenchJob):
    """One random NHWC float32 batch and int64 labels, as backend tensors."""
    rng = np.random.default_rng(job.seed)
    x = rng.standard_normal((job.batch_size, job.input_size, job.input_size, 3), np.float32)
    y = rng.integers(0, job.num_classes, job.batch_size).astype(np.int64)
    return keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y)


def bare_runner(job: BenchJob, backend: KerasBackend, spec: Any, batch) -> tuple[Runner, Any]:
    """The minimal idiomatic Keras loop of this backend on one synthetic batch, and its model."""
    from fwbench.frameworks.keras.models import build_model

    model = build_model(job.model, job.num_classes, job.input_size, variant=job.variant)
    o = spec.train_config.optimizer
    optimizer = keras.optimizers.SGD(
        learning_rate=job.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    if backend.amp and backend.gpu:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if keras.backend.backend() != "tensorflow":
        model.compile(optimizer=optimizer, loss=loss_fn, jit_compile=backend.compiled or "auto")

        def fit_step(b) -> int:
            x, y = b
            float(model.train_on_batch(x, y))
            return int(y.shape[0])

        return Runner(itertools.repeat(batch), fit_step), model
    import tensorflow as tf

    @tf.function(jit_compile=backend.compiled)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, tf.cast(model(x, training=True), tf.float32))
            scaled = optimizer.scale_loss(loss)
        grads = tape.gradient(scaled, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    def step(b) -> int:
        x, y = b
        train_step(x, y).numpy()
        return int(y.shape[0])

    return Runner(itertools.repeat(batch), step), model


def _device_name(gpu: bool) -> str:
    if not gpu:
        return cpu_model()
    gpus = envinfo.info()["gpus"]
    return str(gpus[0]) if gpus else "GPU"


def _version() -> str:
    info = envinfo.info()
    lib = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}[info["keras_backend"]]
    return f"keras {info['keras']} on {lib} {info[lib]}"


def run_job(job: BenchJob) -> list[dict]:
    """Build the bare loop and the harness for ``job``, measure its modes, return CSV rows."""
    spec, inputs = job_spec_and_inputs(job)
    backend = KerasBackend()
    backend.compile_mode = job.compile
    backend.tf32 = job.settings.tf32
    setup = backend.setup(spec)
    batch = synthetic_batch(job)
    runners, model = {}, None
    if "bare" in job.modes:
        runners["bare"], model = bare_runner(job, backend, spec, batch)
    if any(m != "bare" for m in job.modes):
        backend.build(spec, inputs)
        runners |= harness_runners(backend, batch, job.modes, job.lr, lambda: None)
        model = backend.model
    results = measure_modes(runners, job.warmup, job.steps, job.repeats)
    facts = {
        "device": _device_name(backend.gpu),
        "framework_version": _version(),
        "param_count": sum(int(np.prod(v.shape)) for v in model.trainable_variables),
        "tf32": setup["tf32"],
        "channels_last": keras.config.image_data_format() == "channels_last",
        "compile": job.compile,
        "execution": setup["execution"],
        "intra_op_threads": setup.get("intra_op_threads", setup["threads"]),
        "inter_op_threads": setup.get("inter_op_threads"),
        # tf.data map/prefetch use AUTOTUNE; the numpy pipeline one prefetch thread
        "num_workers": "autotune" if backend.name == "keras" else "prefetch thread",
        "deterministic": setup["deterministic"],
        "determinism": setup["determinism"],
    }
    return job_rows(job, results, facts)


if __name__ == "__main__":
    framework_main(sys.argv[1:], run_job)
