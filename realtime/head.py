"""The temporal head: a BiLSTM over the last ``window`` clip features -> gesture probabilities.

Input ``(N, window, feature_dim) float32`` (8 fc7 features, 16 frames apart),
output ``(N, n_labels)`` softmax over the four gestures plus ``no_gesture``.
Without a background class a live model fires on everything it sees.

``kind="small"`` (default): LayerNorm -> Dropout -> Dense projection -> one BiLSTM -> softmax.
``kind="seed"``: the blog post's BiLSTM 1024/256/64 -> Dense 32 -> softmax (kept for comparison).
"""

from __future__ import annotations

import keras
import numpy as np

from .modelio import HEAD_KINDS


def build_head(
    feature_dim: int,
    n_labels: int = 5,
    window: int = 8,
    kind: str = "small",
    units: int = 64,
    proj: int = 128,
    dropout: float = 0.3,
    name: str = "head",
) -> keras.Model:
    L = keras.layers
    inp = keras.Input((window, feature_dim), name="features")
    if kind == "seed":
        x = L.Bidirectional(L.LSTM(1024, return_sequences=True), name="bilstm1")(inp)
        x = L.Bidirectional(L.LSTM(256, return_sequences=True), name="bilstm2")(x)
        x = L.Bidirectional(L.LSTM(64), name="bilstm3")(x)
        x = L.Dense(32, activation="relu", name="dense")(x)
    elif kind == "small":
        x = L.LayerNormalization(name="norm")(inp)
        x = L.Dropout(dropout, name="drop_in")(x)
        x = L.Dense(proj, activation="relu", name="proj")(x)
        x = L.Bidirectional(L.LSTM(units), name="bilstm")(x)
        x = L.Dropout(dropout, name="drop_out")(x)
    else:
        raise ValueError(f"head kind must be one of {HEAD_KINDS}, got {kind!r}")
    out = L.Dense(n_labels, activation="softmax", name="probs", dtype="float32")(x)
    return keras.Model(inp, out, name=name)


def window_batches(X, y, w, batch: int, seed: int) -> keras.utils.PyDataset:
    """Shuffled ``(x, y, sample_weight)`` batches of head windows, cut from the arrays one batch at a time.

    ``fit`` on the arrays themselves copies all of them into the backend first (more than once with
    TensorFlow): thirty 15-minute streams make 4.5 GB of windows, and that ran a 24 GB machine out of memory.
    """

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(y))

        def __len__(self):
            return -(-len(y) // batch)

        def __getitem__(self, i):
            idx = np.sort(self.order[i * batch : (i + 1) * batch])
            return X[idx], y[idx], w[idx]

        def on_epoch_end(self):
            self.order = self.rng.permutation(len(y))

    return Batches()
