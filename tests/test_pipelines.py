"""Input pipelines: shared draws, identical batches in both arms, grayscale, loader settings."""

from __future__ import annotations

import numpy as np

from fwbench.config.train import AugmentationConfig, load_train_config
from fwbench.frameworks.both import import_both
from fwbench.recipe.augment import augment_numpy, draw_epoch, normalize_numpy
from fwbench.recipe.inputs import load_inputs
from fwbench.record.runs import make_spec

import_both()  # torch before TensorFlow for this whole test module


def _inputs(ws, batch=16, padding=4, flip=True, workers=0):
    cfg = load_train_config().model_copy(deep=True)
    data = cfg.model_dump()
    data["training"] |= {"batch_size": batch, "eval_batch_size": 64, "num_workers": workers}
    data["augmentation"]["synthetic"] = {"random_crop_padding": padding, "horizontal_flip": flip}
    cfg = type(cfg).model_validate(data)
    # workers as --num-workers gives them: the config's count is capped on small machines
    spec = make_spec(
        cfg, dataset="synthetic", model="mobilenetv2", precision="fp32", seed=3,
        framework="pytorch", epochs_override=2, subset=100, num_workers=workers,
    )  # fmt: skip
    return load_inputs(ws, spec)


def test_epoch_draws_are_seeded_per_epoch_and_cover_the_crop_range():
    aug = AugmentationConfig(random_crop_padding=4, horizontal_flip=True)
    a, b = draw_epoch(1, 0, 1000, aug), draw_epoch(1, 0, 1000, aug)
    c = draw_epoch(1, 1, 1000, aug)
    assert np.array_equal(a.order, b.order) and np.array_equal(a.dy, b.dy)
    assert not np.array_equal(a.order, c.order)
    assert sorted(a.order.tolist()) == list(range(1000))
    assert a.dy.min() == 0 and a.dy.max() == 8 and a.dx.max() == 8
    assert 0.4 < a.flip.mean() < 0.6
    no_flip = draw_epoch(
        1, 0, 1000, AugmentationConfig(random_crop_padding=0, horizontal_flip=False)
    )
    assert not no_flip.flip.any() and not no_flip.dy.any()
    # ``take`` truncates the order only: per-sample draws are unchanged
    short = draw_epoch(1, 0, 1000, aug, take=96)
    assert np.array_equal(short.order, a.order[:96]) and np.array_equal(short.dx, a.dx)


def test_crop_pads_with_zeros_after_normalisation_and_flips():
    x = np.arange(2 * 3 * 3, dtype=np.float32).reshape(2, 3, 3) + 1
    out = augment_numpy(x, 1, 0, 0, False)
    assert out.shape == x.shape
    assert np.all(out[0] == 0) and np.all(out[:, 0] == 0)  # the zero border
    assert np.array_equal(out[1, 1:], x[0, :2])
    assert np.array_equal(augment_numpy(x, 1, 1, 1, True), x[:, ::-1])


def test_grayscale_image_becomes_three_identical_channels():
    gray = np.random.default_rng(0).integers(0, 256, (8, 8), dtype=np.uint8)
    mean, std = np.array([0.5] * 3, np.float32), np.array([0.25] * 3, np.float32)
    x = normalize_numpy(gray, mean, std)
    assert x.shape == (8, 8, 3) and x.dtype == np.float32
    assert np.array_equal(x[..., 0], x[..., 2])
    np.testing.assert_allclose(x[..., 1], (gray / 255.0 - 0.5) / 0.25, atol=1e-6)


def test_both_arms_yield_identical_train_batches(synthetic_ws):
    import tensorflow as tf

    from fwbench.frameworks.keras.tensorflow.data import KerasPipelines, normalize_tf
    from fwbench.frameworks.pytorch.data import eval_loader, train_loader

    inputs = _inputs(synthetic_ws)
    loader, sampler = train_loader(inputs)
    keras_pipes = KerasPipelines(inputs)
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        torch_batches = [(x.numpy().transpose(0, 2, 3, 1), y.numpy()) for x, y in loader]
        keras_batches = [(x.numpy(), y.numpy()) for x, y in keras_pipes.train(epoch)]
        assert len(torch_batches) == len(keras_batches) == 100 // 16  # drop_last / remainder
        for (xt, yt), (xk, yk) in zip(torch_batches, keras_batches, strict=True):
            assert np.array_equal(yt, yk)
            assert np.abs(xt - xk).max() < 1e-5
    val_t = [x for x, _ in eval_loader(inputs, "val")]
    val_k = [x for x, _ in keras_pipes.evaluation("val")]
    assert sum(len(x) for x in val_t) == sum(len(x) for x in val_k) == len(inputs.val)  # no drop
    first = normalize_tf(tf.constant(inputs.val.images[0]), inputs.mean, inputs.std).numpy()
    assert np.array_equal(val_k[0][0].numpy(), first)


def test_worker_count_does_not_change_batches(synthetic_ws):
    from fwbench.frameworks.pytorch.data import train_loader

    batches = []
    for workers in (0, 2):
        loader, sampler = train_loader(_inputs(synthetic_ws, workers=workers))
        sampler.set_epoch(1)
        batches.append([x.numpy() for x, _ in loader])
        assert loader.num_workers == workers
        assert (loader.persistent_workers, loader.prefetch_factor) == (
            (True, 2) if workers else (False, None)
        )
    assert all(np.array_equal(a, b) for a, b in zip(*batches, strict=True))
