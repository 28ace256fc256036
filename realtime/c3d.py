"""The Sports1M C3D network in Keras 3, and a loader for its legacy Keras-2 HDF5 weights.

Layer names follow the public Keras port (conv1 ... conv5b, fc6, fc7, fc8) so
``C3D_Sport1M_weights_keras_2.2.4.h5`` (written by Keras 2 ``save_weights``)
loads layer by layer. The feature is fc7 after its ReLU: 4096-d at width 1.0.

Input: ``(N, 16, 112, 112, 3) float32`` BGR minus the Sports1M means
(:func:`realtime.preprocess.to_model_input`).

pool5 pads only bottom and right, ``ZeroPadding3D(((0, 0), (0, 1), (0, 1)))``:
Caffe's pooling rounds the output size up (ceil mode), which amounts to an
extra row and column at the far edge. The seed padded both sides, which shifts
every pool5 window and changes fc6/fc7 for the real weights.

Only ``keras.layers`` / ``keras.ops`` are used, so the model runs on the
TensorFlow, JAX or PyTorch backend.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from .errors import GestureError

CONV_LAYERS = ("conv1", "conv2", "conv3a", "conv3b", "conv4a", "conv4b", "conv5a", "conv5b")
FC_LAYERS = ("fc6", "fc7", "fc8")
BASE_FILTERS = {"conv1": 64, "conv2": 128, "conv3a": 256, "conv3b": 256,
                "conv4a": 512, "conv4b": 512, "conv5a": 512, "conv5b": 512}
BASE_FC = 4096
SPORTS1M_CLASSES = 487


class TimeTapsConv3D(keras.layers.Conv3D):
    """A 3x3x3 'same' Conv3D computed as one Conv2D over the 3 stacked time taps.

    Same kernel shape ``(3, 3, 3, cin, cout)`` and the same numbers as Conv3D
    (so Sports1M weights load unchanged), but CPU Conv2D kernels are far better
    tuned than Conv3D ones for few input channels: on our 2-core CPU conv1+conv2
    of the small backbone train about 2x faster this way.
    """

    def call(self, x):
        from keras import ops

        _, T, H, W, cin = x.shape
        xp = ops.pad(x, ((0, 0), (1, 1), (0, 0), (0, 0), (0, 0)))
        st = ops.concatenate([xp[:, i : i + T] for i in range(3)], axis=-1)
        st = ops.reshape(st, (-1, H, W, 3 * cin))
        k = ops.reshape(ops.transpose(self.kernel, (1, 2, 0, 3, 4)), (3, 3, 3 * cin, self.filters))
        y = ops.conv(st, k, strides=1, padding="same")
        y = ops.reshape(y, (-1, T, H, W, self.filters))
        if self.use_bias:
            y = y + self.bias
        return self.activation(y) if self.activation is not None else y


TAPS_LAYERS = ("conv1", "conv2")


class TemporalDifference(keras.layers.Layer):
    """Appends each frame's difference to the previous frame as 3 more channels (0 for the first).

    Used by small backbones trained from scratch (``motion: true`` in model.json): gestures are
    motion, and a C3D from scratch otherwise spends most of a short CPU training budget learning
    to difference frames before it can tell a swipe from a shake. Not used by the Sports1M network.
    """

    def call(self, x):
        from keras import ops

        d = ops.concatenate([ops.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], axis=1)
        return ops.concatenate([x, 2.0 * d], axis=-1)


class SpatialDownsample(keras.layers.Layer):
    """Average-pools every frame of ``(N, T, H, W, C)`` by ``factor`` (no weights).

    Computed as 2-D pooling over the frames, which TensorFlow runs about 2x faster on a CPU than
    ``AveragePooling3D((1, f, f))`` with the same result.
    """

    def __init__(self, factor: int, **kwargs):
        super().__init__(**kwargs)
        self.factor = int(factor)

    def call(self, x):
        from keras import ops

        _, T, H, W, C = x.shape
        f = self.factor
        y = ops.average_pool(ops.reshape(x, (-1, H, W, C)), f, f, padding="valid")
        return ops.reshape(y, (-1, T, H // f, W // f, C))

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def scaled(n: int, width: float) -> int:
    """Channels at a width multiplier (at least 4)."""
    return max(4, int(round(n * width)))


def feature_dim(width: float = 1.0) -> int:
    return scaled(BASE_FC, width)


def build_c3d(
    width: float = 1.0,
    clip_len: int = 16,
    size: int = 112,
    with_fc8: bool = True,
    n_classes: int = SPORTS1M_CLASSES,
    dropout: float = 0.5,
    name: str = "c3d",
    input_scale: float = 1.0,
    motion: bool = False,
    norm: bool = False,
    downsample: int = 1,
) -> keras.Model:
    """C3D to fc8 (softmax, 487 Sports1M classes) or, ``with_fc8=False``, to fc7 (ReLU).

    ``(N, clip_len, size, size, 3) float32 -> (N, n_classes)`` or ``(N, feature_dim(width))``.
    ``width`` scales every layer's channels (1.0 = the Sports1M network).
    ``input_scale`` multiplies the (mean-subtracted, 0..255-range) input first: backbones
    trained from scratch use 1/64 so their first activations are O(1); Sports1M uses 1.0.

    Small backbones trained from scratch on a CPU budget also use (all off for Sports1M):
    ``motion`` frame differences as 3 more input channels; ``norm`` BatchNorm after every conv
    (trains several times faster from scratch); ``downsample`` average-pool the 112x112 crop
    by this factor first (4: 28x28 frames, sixteen times less compute). The layers after the
    pooling are the same as those of ``build_c3d(size=size // downsample, downsample=1)``, which
    is how the trainer runs it on crops it downsampled once, up front.
    """
    L = keras.layers
    f = {k: scaled(v, width) for k, v in BASE_FILTERS.items()}
    fc = feature_dim(width)
    inp = keras.Input((clip_len, size, size, 3), name="clip")

    def conv(x, n):
        cls = TimeTapsConv3D if n in TAPS_LAYERS else L.Conv3D
        if not norm:
            return cls(f[n], 3, padding="same", activation="relu", name=n)(x)
        x = cls(f[n], 3, padding="same", use_bias=False, name=n)(x)
        x = L.BatchNormalization(momentum=0.9, name=n + "_bn")(x)
        return L.ReLU(name=n + "_relu")(x)

    # downsample, scale and frame differences are linear and commute: pooling first is cheapest,
    # and a model built for ``size // downsample`` input with ``downsample=1`` has the same weights
    x = SpatialDownsample(downsample, name="downsample")(inp) if downsample > 1 else inp
    x = x if input_scale == 1.0 else L.Rescaling(input_scale, name="input_scale")(x)
    if motion:
        x = TemporalDifference(name="motion")(x)
    x = conv(x, "conv1")
    x = L.MaxPooling3D((1, 2, 2), (1, 2, 2), name="pool1")(x)
    x = conv(x, "conv2")
    x = L.MaxPooling3D(2, 2, name="pool2")(x)
    x = conv(conv(x, "conv3a"), "conv3b")
    x = L.MaxPooling3D(2, 2, name="pool3")(x)
    x = conv(conv(x, "conv4a"), "conv4b")
    x = L.MaxPooling3D(2, 2, name="pool4")(x)
    x = conv(conv(x, "conv5a"), "conv5b")
    x = L.ZeroPadding3D(((0, 0), (0, 1), (0, 1)), name="zeropadding")(x)
    x = L.MaxPooling3D(2, 2, name="pool5")(x)
    x = L.Flatten(name="flatten")(x)
    x = L.Dense(fc, activation="relu", name="fc6")(x)
    x = L.Dropout(dropout, name="dropout_fc6")(x)
    x = L.Dense(fc, activation="relu", name="fc7")(x)
    if with_fc8:
        x = L.Dropout(dropout, name="dropout_fc7")(x)
        x = L.Dense(n_classes, activation="softmax", name="fc8")(x)
    return keras.Model(inp, x, name=name)


def fc7_extractor(model: keras.Model) -> keras.Model:
    """The fc7 (after ReLU) output of a C3D built by :func:`build_c3d`."""
    return keras.Model(model.input, model.get_layer("fc7").output, name=model.name + "_fc7")


def _h5_layer_weights(f, layer_name: str, path: Path) -> list[np.ndarray]:
    """Weights of one layer from a Keras-2 ``save_weights`` HDF5 (``model_weights`` group or root)."""
    root = f["model_weights"] if "model_weights" in f else f
    if layer_name not in root:
        raise GestureError(f"{path}: layer '{layer_name}' missing from the weights file (not a Sports1M C3D file?)")
    g = root[layer_name]
    names = [n.decode() if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
    if not names:  # Keras 3 style or hand-written: take datasets in kernel, bias order
        names = []
        g.visititems(lambda n, o: names.append(n) if hasattr(o, "shape") else None)
        names.sort(key=lambda n: (0 if "kernel" in n else 1, n))
    out = []
    for n in names:
        try:
            out.append(np.asarray(g[n]))
        except KeyError:
            raise GestureError(f"{path}: layer '{layer_name}' lists weight '{n}' but it is not in the file") from None
    return out


def load_sports1m_weights(model: keras.Model, path: str | Path) -> keras.Model:
    """Load a legacy Keras-2 HDF5 (``C3D_Sport1M_weights_keras_2.2.4.h5``) into ``model`` by layer name.

    Every conv and fc layer must be present with the right shapes; otherwise a
    GestureError names the layer. fc8 is loaded when the model has it.
    """
    import h5py

    path = Path(path)
    if not path.exists():
        raise GestureError(f"{path}: weights file not found (download the Sports1M C3D Keras weights yourself)")
    try:
        f = h5py.File(path, "r")
    except OSError:
        raise GestureError(f"{path}: not an HDF5 weights file") from None
    with f:
        names = [l.name for l in model.layers if l.weights and l.name in CONV_LAYERS + FC_LAYERS]
        for name in names:
            layer = model.get_layer(name)
            arrays = _h5_layer_weights(f, name, path)
            expected = [tuple(w.shape) for w in layer.weights]
            got = [tuple(a.shape) for a in arrays]
            if got != expected:
                raise GestureError(f"{path}: layer '{name}' has weight shapes {got}, this C3D needs {expected}")
            layer.set_weights(arrays)
    return model


def save_keras2_h5(model: keras.Model, path: str | Path) -> None:
    """Write ``model``'s conv/fc weights in the legacy Keras-2 ``save_weights`` HDF5 layout.

    Used by tests (and users) to produce a file shaped like the Sports1M download.
    """
    import h5py

    path = Path(path)
    with h5py.File(path, "w") as f:
        layers = [l for l in model.layers if l.weights]
        f.attrs["layer_names"] = np.array([l.name.encode() for l in layers])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.2.4"
        for l in layers:
            g = f.create_group(l.name)
            wn = [f"{l.name}/{'kernel' if i == 0 else 'bias'}:0".encode() for i in range(len(l.weights))]
            g.attrs["weight_names"] = np.array(wn)
            for n, w in zip(wn, l.get_weights()):
                g.create_dataset(n.decode(), data=w)
