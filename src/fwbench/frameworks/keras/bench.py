"""Keras/TensorFlow side of ``fwbench bench``: pin the speed switches, the bare loop, run one job.

Run as ``python -m fwbench.frameworks.keras.bench --json-args JOB``; prints one line of rows.

The bare loop is the minimal idiomatic Keras 3 custom training step, written once here::

    @tf.function(jit_compile=...)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, tf.cast(model(x, training=True), tf.float32))
            scaled = optimizer.scale_loss(loss)
        optimizer.apply(tape.gradient(scaled, model.trainable_variables),
                        model.trainable_variables)
        return loss

with ``keras.optimizers.SGD`` at the train config's momentum, Nesterov and weight decay
(``LossScaleOptimizer`` around it for AMP on a GPU, as the harness), the same model builder,
precision policy, threads and determinism switches as the harness. The step's loss is read back
(``.numpy()``) every step: that is the device synchronisation before the clock is read.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import keras
import tensorflow as tf

from fwbench.bench import (
    BenchJob,
    Runner,
    framework_main,
    harness_runners,
    job_rows,
    job_spec_and_inputs,
    measure_modes,
)
from fwbench.env import cpu_model
from fwbench.frameworks.keras.backend import KerasBackend


def synthetic_batch(job: BenchJob) -> tuple[tf.Tensor, tf.Tensor]:
    """One random NHWC batch and int64 labels (the dtypes the tf.data pipeline yields)."""
    g = tf.random.Generator.from_seed(job.seed)
    x = g.normal((job.batch_size, job.input_size, job.input_size, 3))
    y = g.uniform((job.batch_size,), 0, job.num_classes, dtype=tf.int64)
    return x, y


def bare_runner(job: BenchJob, backend: KerasBackend, spec: Any, batch) -> tuple[Runner, Any]:
    """The minimal idiomatic Keras loop on one synthetic batch, and its model."""
    from fwbench.frameworks.keras.models import build_model

    model = build_model(job.model, job.num_classes, job.input_size, variant=job.variant)
    o = spec.train_config.optimizer
    optimizer = keras.optimizers.SGD(
        learning_rate=job.lr, momentum=o.momentum, nesterov=o.nesterov, weight_decay=o.weight_decay
    )
    if backend.amp and backend.gpu:
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=job.settings.jit_compile)
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
    details = tf.config.experimental.get_device_details(tf.config.list_physical_devices("GPU")[0])
    return details.get("device_name", "GPU")


def run_job(job: BenchJob) -> list[dict]:
    """Build the bare loop and the harness for ``job``, measure its modes, return CSV rows."""
    spec, inputs = job_spec_and_inputs(job)
    backend = KerasBackend()
    backend.jit_compile = job.settings.jit_compile
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
        "framework_version": f"tensorflow {tf.__version__}, keras {keras.__version__}",
        "param_count": sum(int(v.numpy().size) for v in model.trainable_variables),
        "tf32": bool(tf.config.experimental.tensor_float_32_execution_enabled()),
        "channels_last": keras.config.image_data_format() == "channels_last",
        "compile": None,  # torch.compile is the PyTorch arm's switch
        "jit_compile": job.settings.jit_compile,
        "intra_op_threads": setup["intra_op_threads"],
        "inter_op_threads": setup["inter_op_threads"],
        "num_workers": "autotune",  # tf.data map/prefetch use AUTOTUNE, not worker processes
        "deterministic": setup["op_determinism"],
    }
    return job_rows(job, results, facts)


if __name__ == "__main__":
    framework_main(sys.argv[1:], run_job)
