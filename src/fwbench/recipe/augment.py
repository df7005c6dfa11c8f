"""Input semantics written once: normalisation, augmentation draws, epoch order (numpy only).

Both input pipelines follow this module, so the two arms cannot drift apart:

- **Normalisation**: ``x = (uint8 / 255 - mean) / std`` in float32, with the train-only channel
  statistics. Grayscale images (one channel, or no channel axis) are repeated to three channels.
- **Random crop**: the *normalised* image is padded with ``random_crop_padding`` zeros on every
  side, then cropped back to its size at offset ``(dy, dx)``, each uniform in ``[0, 2p]``.
- **Horizontal flip** with probability 0.5 (only where the config enables it).
- **Order**: a fresh permutation of the training set every epoch.

Every random choice of an epoch is drawn here, with numpy, from a generator seeded by
``(seed, epoch)``: the crop offsets and flip flag of *sample i* are ``draws.dy[i]``,
``draws.dx[i]``, ``draws.flip[i]``. The pipelines only apply them, so both arms see the same
augmented images in the same order (fairness layer 4), and a resumed run redraws exactly the
epoch it was killed in. :func:`augment_numpy` is the reference transform; the Keras arm
reimplements it in TensorFlow ops and ``fwbench parity pixels`` checks they agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fwbench.config.train import AugmentationConfig

_STREAM = 0xF0B3  # separates these draws from any other use of the run seed


@dataclass(frozen=True)
class EpochDraws:
    """One epoch's random choices: visiting order and per-sample crop offsets and flips."""

    order: np.ndarray  # int64 indices into the training split, in visiting order
    dy: np.ndarray  # int64 per sample (indexed by sample, not by position in ``order``)
    dx: np.ndarray
    flip: np.ndarray  # bool per sample

    def records(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(index, dy, dx, flip)`` arrays in visiting order (what a pipeline consumes)."""
        o = self.order
        return o, self.dy[o], self.dx[o], self.flip[o]


def draw_epoch(
    seed: int, epoch: int, n: int, aug: AugmentationConfig, take: int | None = None
) -> EpochDraws:
    """The random choices of ``epoch`` (0-based) for a training split of ``n`` images.

    ``take`` keeps only the first ``take`` positions of the order (the micro-batches an epoch
    actually uses); the per-sample draws do not depend on it.
    """
    rng = np.random.default_rng([seed, epoch, _STREAM])
    order = rng.permutation(n).astype(np.int64)
    p = aug.random_crop_padding
    dy = rng.integers(0, 2 * p + 1, size=n, dtype=np.int64)
    dx = rng.integers(0, 2 * p + 1, size=n, dtype=np.int64)
    u = rng.random(n)
    flip = (u < 0.5) if aug.horizontal_flip else np.zeros(n, dtype=bool)
    return EpochDraws(order if take is None else order[:take], dy, dx, flip)


def as_nhwc(images: np.ndarray) -> np.ndarray:
    """``images`` with a channel axis: (N, H, W) grayscale becomes (N, H, W, 1)."""
    return images[..., None] if images.ndim == 3 else images


def normalize_numpy(image: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """One uint8 HWC (or HW) image -> float32 HWC, three channels, normalised."""
    x = image if image.ndim == 3 else image[..., None]
    if x.shape[-1] == 1:
        x = np.repeat(x, 3, axis=-1)
    x = x.astype(np.float32) / np.float32(255.0)
    return (x - mean.astype(np.float32)) / std.astype(np.float32)


def augment_numpy(x: np.ndarray, padding: int, dy: int, dx: int, flip: bool) -> np.ndarray:
    """Zero-pad a normalised HWC image by ``padding``, crop at ``(dy, dx)``, maybe flip."""
    if padding:
        h, w = x.shape[:2]
        x = np.pad(x, ((padding, padding), (padding, padding), (0, 0)))[dy : dy + h, dx : dx + w]
    if flip:
        x = x[:, ::-1]
    return x
