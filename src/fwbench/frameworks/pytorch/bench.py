"""PyTorch side of ``fwbench bench``: pin the speed switches, the bare loop, run one job.

Run as ``python -m fwbench.frameworks.pytorch.bench --json-args JOB``; prints one line of rows.

The bare loop is the minimal idiomatic PyTorch training step, written once here::

    with torch.autocast(device, dtype, enabled=amp):
        loss = F.cross_entropy(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward(); scaler.step(optimizer); scaler.update()

with ``torch.optim.SGD`` at the train config's momentum, Nesterov and weight decay, the same
model builder, device, precision, threads and determinism switches as the harness.
"""

from __future__ import annotations

import itertools
import sys
from typing import Any

import torch
import torch.nn.functional as F

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
from fwbench.frameworks.pytorch.backend import TorchBackend


def apply_settings(job: BenchJob) -> None:
    """Inter-op threads (TF32, intra-op threads, determinism: ``Backend.setup``)."""
    torch.set_num_interop_threads(min(job.settings.threads, 2))  # must precede parallel work


def synthetic_batch(job: BenchJob, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One random batch on ``device`` (NHWC memory when channels_last is on)."""
    g = torch.Generator().manual_seed(job.seed)
    x = torch.randn(job.batch_size, 3, job.input_size, job.input_size, generator=g)
    y = torch.randint(0, job.num_classes, (job.batch_size,), generator=g)
    fmt = torch.channels_last if job.settings.channels_last else torch.contiguous_format
    return x.to(device, memory_format=fmt), y.to(device)


def bare_runner(job: BenchJob, backend: TorchBackend, spec: Any, batch, sync):
    """The minimal idiomatic PyTorch loop on one synthetic batch, and its model."""
    from fwbench.frameworks.pytorch.models import build_model

    device, amp, amp_dtype = backend.device, backend.amp, backend.amp_dtype
    model = build_model(job.model, job.num_classes, job.input_size, variant=job.variant)
    model.to(device)
    if job.settings.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    forward = torch.compile(model) if job.compile == "compiled" else model
    o = spec.train_config.optimizer
    optimizer = torch.optim.SGD(
        model.parameters(),
        lr=job.lr,
        momentum=o.momentum,
        nesterov=o.nesterov,
        weight_decay=o.weight_decay,
    )
    scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")

    def step(b) -> int:
        x, y = b
        with torch.autocast(device.type, dtype=amp_dtype, enabled=amp):
            loss = F.cross_entropy(forward(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return int(y.shape[0])

    return Runner(itertools.repeat(batch), step, sync), model


def run_job(job: BenchJob) -> list[dict]:
    """Build the bare loop and the harness for ``job``, measure its modes, return CSV rows."""
    apply_settings(job)
    spec, inputs = job_spec_and_inputs(job)
    backend = TorchBackend()
    backend.channels_last = job.settings.channels_last
    backend.tf32 = job.settings.tf32
    backend.compile = job.compile == "compiled"
    setup = backend.setup(spec)
    cuda = backend.device.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    batch = synthetic_batch(job, backend.device)
    runners, model = {}, None
    if "bare" in job.modes:
        runners["bare"], model = bare_runner(job, backend, spec, batch, sync)
    if any(m != "bare" for m in job.modes):
        backend.build(spec, inputs)
        runners |= harness_runners(backend, batch, job.modes, job.lr, sync)
        model = backend.model
    results = measure_modes(runners, job.warmup, job.steps, job.repeats)
    facts = {
        "device": torch.cuda.get_device_name(0) if cuda else cpu_model(),
        "framework_version": torch.__version__,
        "param_count": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "tf32": torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32,
        "channels_last": job.settings.channels_last,
        "compile": job.compile,
        "execution": setup["execution"],
        "intra_op_threads": torch.get_num_threads(),
        "inter_op_threads": torch.get_num_interop_threads(),
        "num_workers": inputs.loader.num_workers,
        "deterministic": setup["deterministic"],
        "determinism": setup["determinism"],
    }
    return job_rows(job, results, facts)


if __name__ == "__main__":
    framework_main(sys.argv[1:], run_job)
