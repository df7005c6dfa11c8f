"""Dataset facts, written once: classes, image size, split sizes, official files and checksums.

Everything else asks this registry, so an unknown name is one clear error in one place.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fwbench.core.errors import FwbenchError


@dataclass(frozen=True)
class SourceFile:
    """One official file of a dataset and its published MD5."""

    name: str
    md5: str


@dataclass(frozen=True)
class DatasetInfo:
    """What fwbench knows about a dataset before reading any file.

    ``train_size``/``val_size`` split the official training set (stratified, seed 42);
    ``test_size`` is the official evaluation set (Tiny-ImageNet: its labelled ``val/`` folder).
    """

    name: str
    num_classes: int
    image_size: int
    train_size: int
    val_size: int
    test_size: int
    description: str
    archive: SourceFile | None = None
    url: str | None = None
    folder: str | None = None
    files: tuple[SourceFile, ...] = field(default=())

    @property
    def pool_size(self) -> int:
        """Images in the official training set, before the train/val split."""
        return self.train_size + self.val_size


CIFAR10 = DatasetInfo(
    name="cifar10",
    num_classes=10,
    image_size=32,
    train_size=45_000,
    val_size=5_000,
    test_size=10_000,
    description="CIFAR-10, python version (Krizhevsky 2009)",
    archive=SourceFile("cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"),
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    folder="cifar-10-batches-py",
    files=(
        SourceFile("data_batch_1", "c99cafc152244af753f735de768cd75f"),
        SourceFile("data_batch_2", "d4bba439e000b95fd0a9bffe97cbabec"),
        SourceFile("data_batch_3", "54ebc095f3ab1f0389bbae665268c751"),
        SourceFile("data_batch_4", "634d18415352ddfa80567beed471001a"),
        SourceFile("data_batch_5", "482c414d41f54cd18b22e5b47cb7c3cb"),
        SourceFile("test_batch", "40351d587109b95175f43aff81a1287e"),
        SourceFile("batches.meta", "5ff9c542aee3614f3951f8cda6e48888"),
    ),
)

CIFAR100 = DatasetInfo(
    name="cifar100",
    num_classes=100,
    image_size=32,
    train_size=45_000,
    val_size=5_000,
    test_size=10_000,
    description="CIFAR-100, python version, fine labels (Krizhevsky 2009)",
    archive=SourceFile("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    folder="cifar-100-python",
    files=(
        SourceFile("train", "16019d7e3df5f24257cddd4c1e3b4ef5"),
        SourceFile("test", "f0ef6b0ae62326f3e7ffdfab6717acfc"),
        SourceFile("meta", "7973b15100ade9c7d40fb424638fde48"),
    ),
)

TINY_IMAGENET = DatasetInfo(
    name="tiny-imagenet",
    num_classes=200,
    image_size=64,
    train_size=90_000,
    val_size=10_000,
    test_size=10_000,
    description="Tiny-ImageNet-200 (CS231n); its labelled val/ set is fwbench's test set",
    archive=SourceFile("tiny-imagenet-200.zip", "90528d7ca1a48142e341f4ef8d21d0de"),
    url="http://cs231n.stanford.edu/tiny-imagenet-200.zip",
    folder="tiny-imagenet-200",
)

DIGITS = DatasetInfo(
    name="digits",
    num_classes=10,
    image_size=32,
    train_size=1_257,
    val_size=180,
    test_size=360,
    description="scikit-learn's handwritten digits (UCI), 8x8 upsampled to 32x32 RGB; offline",
)

SYNTHETIC = DatasetInfo(
    name="synthetic",
    num_classes=10,
    image_size=32,
    train_size=500,
    val_size=100,
    test_size=200,
    description="generated class-coloured patterns with noise (seeded): for tests",
)

DATASETS: dict[str, DatasetInfo] = {
    d.name: d for d in (CIFAR10, CIFAR100, TINY_IMAGENET, DIGITS, SYNTHETIC)
}


def get_dataset(name: str) -> DatasetInfo:
    """The registry entry for ``name``; an unknown name is a user error listing the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        raise FwbenchError(
            f"unknown dataset '{name}'; known: {', '.join(DATASETS)}",
            fix="use one of the known dataset names",
        ) from None
