"""The ``matched`` variant: Keras functional mirrors of the torchvision architectures.

Why mirror torchvision in Keras, and not the reverse: torchvision's modules are small and
every choice is visible (``padding=1``, ``bias=False``, ``eps``), so a functional Keras copy
is a short, readable transcription, while rebuilding keras.applications in PyTorch would need
TensorFlow's asymmetric "same" padding re-implemented by hand. It also keeps the PyTorch arm
identical in both variants: ``matched`` changes only the Keras side.

What makes a mirror match (each one a difference ``fwbench models audit`` lists for the
library builds):

- layer names are the torchvision module paths with ``-`` for ``.`` (``layer1-0-conv2``;
  :func:`layer_name`), so weight transfer (``fwbench.frameworks.transfer``) pairs layers by name
  (Keras on PyTorch registers variables as torch parameters, whose names cannot hold a dot);
- strided convolutions pad explicitly and symmetrically (``ZeroPadding2D`` + ``valid``) like
  PyTorch; stride-1 odd kernels use ``same``, which is symmetric there;
- conv bias only where torchvision has one; BatchNorm epsilon 1e-5 and Keras momentum 0.9
  (= PyTorch momentum 0.1); LayerNorm epsilon 1e-6;
- BatchNorm's running variance is updated with the *unbiased* batch variance (PyTorch's rule;
  Keras' own layer uses the biased one: updates differ by n/(n−1), n = batch·H·W);
- ResNet-50 v1.5: stride on the 3×3 conv; MobileNetV2 classifier dropout 0.2; ConvNeXt
  stochastic depth rising linearly to 0.1 per block, layer scale 1e-6;
- initialisers reproduce torchvision's (kaiming-normal fan-out convs, ``nn.Linear`` default
  uniform or N(0, 0.01) or N(0, 0.02) heads), so training from scratch starts alike too;
- ConvNeXt's 7×7 depthwise step is a ``DepthwiseConv2D`` (same parameters as a grouped
  ``Conv2D``, about 5× faster on CPU: docs/notes/frameworks.md).

Stems follow ``fwbench.registry.stems``, exactly as in the library builds.
"""

from __future__ import annotations

from fwbench.registry.models import get_model
from fwbench.registry.stems import stem_for

SEP = "-"  # in place of torchvision's "." in module paths


def layer_name(torch_path: str) -> str:
    """The mirror layer name of the torchvision module at ``torch_path``."""
    return torch_path.replace(".", SEP)


def _keras():
    import keras

    return keras


BN_EPSILON = 1e-5  # torch.nn.BatchNorm2d default
BN_MOMENTUM = 0.9  # Keras convention: PyTorch momentum 0.1
LN_EPSILON = 1e-6  # torchvision ConvNeXt


def _kaiming_fan_out(depthwise: bool = False):
    """torchvision's ``kaiming_normal_(mode="fan_out")`` as a Keras initializer.

    Keras counts a depthwise kernel's fan-out without its channels (its kernel is (k, k, C, 1)),
    so PyTorch's fan-out C·k·k is Keras's fan-in there.
    """
    keras = _keras()
    mode = "fan_in" if depthwise else "fan_out"
    return keras.initializers.VarianceScaling(2.0, mode=mode, distribution="untruncated_normal")


def _conv(x, filters, kernel, stride, name, *, bias=False, init=None, depthwise=False):
    """A PyTorch-style conv: symmetric padding ``kernel // 2``, explicit when strided."""
    layers = _keras().layers
    pad = kernel // 2
    padding = "valid"
    if pad and stride > 1:
        x = layers.ZeroPadding2D(pad, name=f"{name}-pad")(x)
    elif pad:
        padding = "same"  # stride 1, odd kernel: same == symmetric
    init = init or _kaiming_fan_out(depthwise)
    if depthwise:
        return layers.DepthwiseConv2D(
            kernel, stride, padding=padding, use_bias=bias, name=name, depthwise_initializer=init
        )(x)
    return layers.Conv2D(
        filters, kernel, stride, padding=padding, use_bias=bias, name=name, kernel_initializer=init
    )(x)


def torch_batch_norm_class():
    """``TorchBatchNormalization``: Keras BatchNormalization with PyTorch's running-variance rule.

    In training mode it normalises with the biased batch variance (as both frameworks do) but
    moves ``moving_variance`` toward the *unbiased* one, ``var · n/(n−1)`` with n the values
    per channel, as ``torch.nn.BatchNorm2d`` updates ``running_var``. Written in ``keras.ops``,
    so it works on every Keras backend. Built once per process.
    """
    if hasattr(torch_batch_norm_class, "cache"):
        return torch_batch_norm_class.cache
    keras = _keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="fwbench")
    class TorchBatchNormalization(keras.layers.BatchNormalization):
        """BatchNormalization whose running variance takes the unbiased batch variance."""

        def call(self, inputs, training=None, mask=None):
            if mask is not None or self.renorm:
                return super().call(inputs, training=training, mask=mask)
            # float16/bfloat16 computed in float32, float32/float64 as they are. Not Keras' own
            # ``result_type(dtype, "float32")``: off TensorFlow it maps float64 to float32, so a
            # float64 model on torch normalised in float32 (2.5e-7 from PyTorch's float64).
            dtype = keras.backend.standardize_dtype(inputs.dtype)
            x = inputs if dtype in ("float32", "float64") else ops.cast(inputs, "float32")
            gamma, beta = (ops.cast(w, x.dtype) for w in (self.gamma, self.beta))
            if not (training and self.trainable):
                mean, variance = (
                    ops.cast(v, x.dtype) for v in (self.moving_mean, self.moving_variance)
                )
                out = ops.batch_normalization(
                    x, mean, variance, axis=self.axis, offset=beta, scale=gamma,
                    epsilon=self.epsilon,
                )  # fmt: skip
                return ops.cast(out, self.compute_dtype)
            mean, variance = ops.moments(x, axes=self._reduction_axes)
            n = ops.cast(ops.size(x), x.dtype) / ops.cast(ops.shape(x)[self.axis], x.dtype)
            unbiased = variance * n / (n - 1.0)
            m = self.momentum
            moving_mean = ops.cast(self.moving_mean, x.dtype)
            moving_variance = ops.cast(self.moving_variance, x.dtype)
            self.moving_mean.assign(moving_mean * m + mean * (1.0 - m))
            self.moving_variance.assign(moving_variance * m + unbiased * (1.0 - m))
            out = ops.batch_normalization(
                x, mean, variance, axis=self.axis, offset=beta, scale=gamma, epsilon=self.epsilon
            )
            return ops.cast(out, self.compute_dtype)

    torch_batch_norm_class.cache = TorchBatchNormalization
    return TorchBatchNormalization


def _global_average_pool(x):
    """Global average pooling as a sum over height and width divided by their size.

    Keras' ``GlobalAveragePooling2D`` takes ``ops.mean``, which off TensorFlow computes a
    float64 tensor in float32 (``result_type(float64, "float32")`` is float32 there: 1.7e-8 on
    a float64 model on torch); a sum keeps the input's dtype on every backend (float16 and
    bfloat16 are summed in float32, as ``ops.mean`` does).
    """
    keras = _keras()
    ops = keras.ops
    size = x.shape[1] * x.shape[2]

    def pool(t):
        dtype = keras.backend.standardize_dtype(t.dtype)  # float16/bfloat16 summed in float32
        total = ops.sum(t if dtype in ("float32", "float64") else ops.cast(t, "float32"), (1, 2))
        return ops.cast(total / size, dtype)

    return keras.layers.Lambda(pool, output_shape=(x.shape[-1],), name="avgpool")(x)


def _bn(x, name):
    bn = torch_batch_norm_class()(epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)
    return bn(x)


def _torch_linear_init(fan_in: int):
    """``nn.Linear``'s default init: weight and bias uniform in ±1/sqrt(fan_in)."""
    keras = _keras()
    bound = fan_in**-0.5
    return (
        keras.initializers.VarianceScaling(1.0 / 3.0, mode="fan_in", distribution="uniform"),
        keras.initializers.RandomUniform(-bound, bound),
    )


# ---------------------------------------------------------------- ResNet-50 (torchvision v1.5)


def _bottleneck(x, planes, stride, name):
    layers = _keras().layers
    inplanes = x.shape[-1]
    identity = x
    out = layers.ReLU(name=f"{name}-relu1")(
        _bn(_conv(x, planes, 1, 1, f"{name}-conv1"), f"{name}-bn1")
    )
    out = layers.ReLU(name=f"{name}-relu2")(
        _bn(_conv(out, planes, 3, stride, f"{name}-conv2"), f"{name}-bn2")
    )
    out = _bn(_conv(out, planes * 4, 1, 1, f"{name}-conv3"), f"{name}-bn3")
    if stride != 1 or inplanes != planes * 4:
        identity = _bn(
            _conv(x, planes * 4, 1, stride, f"{name}-downsample-0"), f"{name}-downsample-1"
        )
    return layers.ReLU(name=f"{name}-relu3")(layers.Add(name=f"{name}-add")([out, identity]))


def resnet50(num_classes: int, input_size: int):
    """torchvision ResNet-50 (v1.5, stride on the 3×3 conv) as a Keras functional model."""
    keras = _keras()
    layers = keras.layers
    stem = stem_for("resnet50", input_size)
    inputs = keras.Input((input_size, input_size, 3))
    x = _conv(inputs, 64, stem.kernel, stem.stride, "conv1")
    x = layers.ReLU(name="relu")(_bn(x, "bn1"))
    if stem.maxpool:
        # After ReLU every value is >= 0, so zero padding acts like PyTorch's -inf padding.
        x = layers.ZeroPadding2D(1, name="maxpool-pad")(x)
        x = layers.MaxPooling2D(3, 2, name="maxpool")(x)
    for i, (planes, blocks, stride) in enumerate(
        [(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)], start=1
    ):
        for b in range(blocks):
            x = _bottleneck(x, planes, stride if b == 0 else 1, f"layer{i}-{b}")
    x = _global_average_pool(x)
    w_init, b_init = _torch_linear_init(2048)
    x = layers.Dense(num_classes, name="fc", kernel_initializer=w_init, bias_initializer=b_init)(x)
    return keras.Model(inputs, x, name="resnet50_matched")


# ---------------------------------------------------------------- MobileNetV2 (torchvision)


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's ``_make_divisible`` (channel counts rounded to multiples of 8)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def _conv_bn_relu6(x, filters, kernel, stride, name, depthwise=False):
    layers = _keras().layers
    x = _conv(x, filters, kernel, stride, f"{name}-0", depthwise=depthwise)
    return layers.ReLU(6.0, name=f"{name}-2")(_bn(x, f"{name}-1"))


def _inverted_residual(x, oup, stride, expand_ratio, name):
    layers = _keras().layers
    inp = x.shape[-1]
    hidden = int(round(inp * expand_ratio))
    out, i = x, 0
    if expand_ratio != 1:
        out = _conv_bn_relu6(out, hidden, 1, 1, f"{name}-conv-{i}")
        i += 1
    out = _conv_bn_relu6(out, hidden, 3, stride, f"{name}-conv-{i}", depthwise=True)
    out = _bn(_conv(out, oup, 1, 1, f"{name}-conv-{i + 1}"), f"{name}-conv-{i + 2}")
    if stride == 1 and inp == oup:
        out = layers.Add(name=f"{name}-add")([x, out])
    return out


def mobilenetv2(num_classes: int, input_size: int, width_mult: float = 1.0):
    """torchvision MobileNetV2 as a Keras functional model."""
    keras = _keras()
    layers = keras.layers
    stem = stem_for("mobilenetv2", input_size)
    settings = [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]
    inputs = keras.Input((input_size, input_size, 3))
    x = _conv_bn_relu6(inputs, _make_divisible(32 * width_mult), 3, stem.stride, "features-0")
    index = 1
    for t, c, n, s in settings:
        for j in range(n):
            x = _inverted_residual(
                x, _make_divisible(c * width_mult), s if j == 0 else 1, t, f"features-{index}"
            )
            index += 1
    x = _conv_bn_relu6(x, _make_divisible(1280 * max(1.0, width_mult)), 1, 1, f"features-{index}")
    x = _global_average_pool(x)
    x = layers.Dropout(0.2, name="classifier-0")(x)
    init = keras.initializers.RandomNormal(stddev=0.01)
    x = layers.Dense(num_classes, name="classifier-1", kernel_initializer=init)(x)
    return keras.Model(inputs, x, name="mobilenetv2_matched")


# ---------------------------------------------------------------- ConvNeXt-Tiny (torchvision)


def _convnext_layers():
    """LayerScale and StochasticDepth as torchvision defines them (built once per process)."""
    keras = _keras()
    if hasattr(_convnext_layers, "cache"):
        return _convnext_layers.cache

    @keras.saving.register_keras_serializable(package="fwbench")
    class LayerScale(keras.layers.Layer):
        """Per-channel scale ``gamma * x`` (torchvision CNBlock ``layer_scale``)."""

        def __init__(self, init_value: float = 1e-6, **kwargs):
            super().__init__(**kwargs)
            self.init_value = init_value

        def build(self, input_shape):
            self.gamma = self.add_weight(
                shape=(input_shape[-1],),
                initializer=keras.initializers.Constant(self.init_value),
                name="gamma",
            )

        def call(self, x):
            return x * self.gamma

        def get_config(self):
            return {**super().get_config(), "init_value": self.init_value}

    @keras.saving.register_keras_serializable(package="fwbench")
    class StochasticDepth(keras.layers.Layer):
        """Drop the residual branch per sample with probability ``rate`` ("row" mode)."""

        def __init__(self, rate: float = 0.0, **kwargs):
            super().__init__(**kwargs)
            self.rate = rate
            self.seed_generator = keras.random.SeedGenerator()

        def call(self, x, training=None):
            if not training or self.rate == 0.0:
                return x
            keep = 1.0 - self.rate
            shape = (keras.ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
            mask = keras.random.uniform(shape, seed=self.seed_generator) < keep
            return x * keras.ops.cast(mask, x.dtype) / keep

        def get_config(self):
            return {**super().get_config(), "rate": self.rate}

    _convnext_layers.cache = (LayerScale, StochasticDepth)
    return _convnext_layers.cache


def _cn_block(x, dim, drop_rate, name):
    keras = _keras()
    layers = keras.layers
    LayerScale, StochasticDepth = _convnext_layers()
    init = keras.initializers.RandomNormal(stddev=0.02)  # torch's trunc_normal_(a=-2, b=2)
    out = layers.DepthwiseConv2D(
        7, padding="same", use_bias=True, depthwise_initializer=init, name=f"{name}-block-0"
    )(x)
    out = layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}-block-2")(out)
    out = layers.Dense(4 * dim, kernel_initializer=init, name=f"{name}-block-3")(out)
    out = layers.Activation("gelu", name=f"{name}-block-4")(out)  # exact erf GELU, as torch
    out = layers.Dense(dim, kernel_initializer=init, name=f"{name}-block-5")(out)
    out = LayerScale(1e-6, name=f"{name}-layer_scale")(out)
    out = StochasticDepth(drop_rate, name=f"{name}-stochastic_depth")(out)
    return layers.Add(name=f"{name}-add")([x, out])


def convnext_tiny(num_classes: int, input_size: int, stochastic_depth_prob: float = 0.1):
    """torchvision ConvNeXt-Tiny as a Keras functional model."""
    keras = _keras()
    layers = keras.layers
    stem = stem_for("convnext_tiny", input_size)
    init = keras.initializers.RandomNormal(stddev=0.02)
    dims, depths = (96, 192, 384, 768), (3, 3, 9, 3)
    total, block_id = sum(depths), 0
    inputs = keras.Input((input_size, input_size, 3))
    x = layers.Conv2D(
        dims[0], stem.kernel, stem.stride, kernel_initializer=init, name="features-0-0"
    )(inputs)
    x = layers.LayerNormalization(epsilon=LN_EPSILON, name="features-0-1")(x)
    for stage, (dim, depth) in enumerate(zip(dims, depths, strict=True)):
        if stage > 0:
            name = f"features-{2 * stage}"
            x = layers.LayerNormalization(epsilon=LN_EPSILON, name=f"{name}-0")(x)
            x = layers.Conv2D(dim, 2, 2, kernel_initializer=init, name=f"{name}-1")(x)
        for j in range(depth):
            rate = stochastic_depth_prob * block_id / (total - 1.0)
            x = _cn_block(x, dim, rate, f"features-{2 * stage + 1}-{j}")
            block_id += 1
    x = _global_average_pool(x)
    x = layers.LayerNormalization(epsilon=LN_EPSILON, name="classifier-0")(x)
    x = layers.Dense(num_classes, kernel_initializer=init, name="classifier-2")(x)
    return keras.Model(inputs, x, name="convnext_tiny_matched")


MIRRORS = {"mobilenetv2": mobilenetv2, "resnet50": resnet50, "convnext_tiny": convnext_tiny}


def build_mirror(model: str, num_classes: int, input_size: int):
    """The Keras mirror of torchvision's ``model`` (logits out, channels-last in)."""
    get_model(model)
    return MIRRORS[model](num_classes=num_classes, input_size=input_size)
