"""Keras arm's models: ``keras.applications`` MobileNetV2, ResNet50, ConvNeXtTiny, random init.

Channels-last input ``(input_size, input_size, 3)``; outputs logits (``classifier_activation=
None``) so both arms use from-logits cross-entropy. Only the stem changes
(``fwbench.registry.stems``,
the same table the PyTorch arm reads), by ``keras.models.clone_model`` with a
``clone_function`` that swaps the stem layers; every other layer keeps its library config.

Defaults kept from keras.applications (the "library" a user gets), stated here because they
differ from torchvision (``fwbench models audit`` reads them off the built models):

- MobileNetV2: BatchNorm epsilon 1e-3, momentum 0.999; no conv bias; strided depthwise convs
  padded bottom/right only (``ZeroPadding2D`` + valid); no classifier dropout.
- ResNet50: BatchNorm epsilon 1.001e-5, momentum 0.99; conv bias on every conv; stride on the
  first 1×1 conv of a bottleneck (v1); glorot-uniform kernels.
- ConvNeXtTiny: no stochastic depth (``drop_path_rate=0``), layer scale 1e-6, LayerNorm
  epsilon 1e-6, 7×7 depthwise step as a grouped ``Conv2D``; ``include_preprocessing=False``
  because fwbench normalises with the dataset's own statistics in the input pipeline.

The ``matched`` variant is a functional mirror of torchvision (``mirrors.py``).
"""

from __future__ import annotations

from fwbench.registry.models import VARIANTS, check_choice, get_model
from fwbench.registry.stems import stem_for


def _keras():
    import keras

    return keras


def _clone_with(model, replace: dict):
    """Clone ``model``; layers named in ``replace`` become ``replace[name](old_layer)``."""
    keras = _keras()

    def clone(layer):
        if layer.name in replace:
            return replace[layer.name](layer)
        return layer.__class__.from_config(layer.get_config())

    return keras.models.clone_model(model, clone_function=clone)


def _with_config(**changes):
    """A replacement that rebuilds a layer from its own config with ``changes`` applied."""

    def make(layer):
        return layer.__class__.from_config({**layer.get_config(), **changes})

    return make


def _identity(layer):
    return _keras().layers.Identity(name=layer.name)


def mobilenetv2(num_classes: int, input_size: int, alpha: float = 1.0):
    """``keras.applications.MobileNetV2`` with the small-image stem stride."""
    keras = _keras()
    base = keras.applications.MobileNetV2(
        input_shape=(input_size, input_size, 3),
        alpha=alpha,
        weights=None,
        classes=num_classes,
        classifier_activation=None,
    )
    stem = stem_for("mobilenetv2", input_size)
    return _clone_with(base, {"Conv1": _with_config(strides=(stem.stride, stem.stride))})


def resnet50(num_classes: int, input_size: int):
    """``keras.applications.ResNet50`` with a 3×3 stem; max-pool kept only where the stem says."""
    keras = _keras()
    base = keras.applications.ResNet50(
        input_shape=(input_size, input_size, 3),
        weights=None,
        classes=num_classes,
        classifier_activation=None,
    )
    stem = stem_for("resnet50", input_size)
    pad = stem.kernel // 2
    replace = {
        "conv1_pad": lambda layer: keras.layers.ZeroPadding2D(pad, name=layer.name),
        "conv1_conv": _with_config(
            kernel_size=(stem.kernel, stem.kernel), strides=(stem.stride, stem.stride)
        ),
    }
    if not stem.maxpool:
        replace.update({"pool1_pad": _identity, "pool1_pool": _identity})
    return _clone_with(base, replace)


def _rebuilt_sequential(layer, first=None):
    """A nested ``Sequential`` rebuilt from its layers' configs, without its fixed input shape.

    ``first`` optionally replaces the config of the first inner layer (the stem conv).
    """
    keras = _keras()
    inner = [sub.__class__.from_config(sub.get_config()) for sub in layer.layers]
    if first is not None:
        inner[0] = first(layer.layers[0])
    return keras.Sequential(inner, name=layer.name)


def convnext_tiny(num_classes: int, input_size: int):
    """``keras.applications.ConvNeXtTiny`` with a smaller patchify stem."""
    keras = _keras()
    base = keras.applications.ConvNeXtTiny(
        input_shape=(input_size, input_size, 3),
        include_preprocessing=False,
        weights=None,
        classes=num_classes,
        classifier_activation=None,
    )
    stem = stem_for("convnext_tiny", input_size)
    stem_conv = _with_config(
        kernel_size=(stem.kernel, stem.kernel), strides=(stem.stride, stem.stride)
    )
    # Every downsampling Sequential was built for the ImageNet stem's shapes: rebuild them all.
    replace = {"convnext_tiny_stem": lambda layer: _rebuilt_sequential(layer, first=stem_conv)}
    for i in range(3):
        replace[f"convnext_tiny_downsampling_block_{i}"] = _rebuilt_sequential
    return _clone_with(base, replace)


BUILDERS = {"mobilenetv2": mobilenetv2, "resnet50": resnet50, "convnext_tiny": convnext_tiny}


def build_model(model: str, num_classes: int, input_size: int, variant: str = "library"):
    """Build ``model`` for ``input_size``×``input_size``×3 images and ``num_classes`` logits.

    Returns a ``keras.Model`` (channels-last input, logits output, no softmax).
    """
    get_model(model)
    check_choice("variant", variant, VARIANTS)
    if variant == "matched":
        from fwbench.frameworks.keras import mirrors

        return mirrors.build_mirror(model, num_classes=num_classes, input_size=input_size)
    return BUILDERS[model](num_classes=num_classes, input_size=input_size)


def float32_head(model) -> None:
    """Make ``model``'s last ``Dense`` (its classifier head) compute in float32, in place.

    The Keras mixed-precision guide keeps a model's outputs in float32; doing it in the head
    itself (not only a float32 activation after it) also keeps logits beyond float16's 65504
    finite. Its float32 weights stay the same variables.
    """
    keras = _keras()
    heads = [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]
    if not heads:
        raise ValueError(f"model {model.name!r} has no Dense classifier head")
    heads[-1].dtype_policy = keras.DTypePolicy("float32")
