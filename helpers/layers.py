"""Custom Keras layers: spatial pyramid pooling (SPP).

Spatial pyramid pooling (He, Zhang, Ren, Sun, 2015) max-pools a feature map over
several grids, 1x1, 2x2 and 4x4 by default, and concatenates the results: a
fixed-length vector of ``C * sum(n * n for n in levels)`` features whatever the
input's height and width, that keeps some of *where* a feature fired (the 4x4
grid) as well as *whether* it fired (the 1x1 grid, global max pooling). The
earlier ResNet18 course project used it in its exit heads.

The layer is registered with Keras, so models that contain it save and load
with ``model.save`` / ``keras.models.load_model`` once this module is imported
(``helpers.registry`` and ``helpers.train`` import it for you).
"""

from __future__ import annotations

from collections.abc import Sequence

import keras
from keras import ops


def _bin_edges(size: int, n: int) -> list[tuple[int, int]]:
    """``n`` bins covering ``range(size)``: bin i is ``[floor(i*size/n), ceil((i+1)*size/n))``.

    The adaptive-pooling rule: bins tile the axis exactly when ``n`` divides ``size``
    and overlap by one row otherwise, so every bin is non-empty as long as ``n <= size``.
    """
    return [((i * size) // n, -((-(i + 1) * size) // n)) for i in range(n)]


@keras.saving.register_keras_serializable(package="early_exit")
class SpatialPyramidPooling(keras.layers.Layer):
    """Max pooling over an ``n x n`` grid for every ``n`` in ``levels``, flattened and concatenated.

    Input ``(batch, H, W, C)``; output ``(batch, C * sum(n * n))``, level by level
    (coarsest first), each level's bins in row-major order and each bin's ``C``
    channels together: for levels ``(1, 2)`` the features are
    ``[global max (C), top-left (C), top-right (C), bottom-left (C), bottom-right (C)]``.

    Args:
        levels: grid sizes, each at most the input's height and width.
    """

    def __init__(self, levels: Sequence[int] = (1, 2, 4), **kwargs) -> None:
        super().__init__(**kwargs)
        levels = tuple(int(n) for n in levels)
        if not levels or any(n < 1 for n in levels):
            raise ValueError(f"SPP levels must be positive grid sizes, got {levels}")
        self.levels = levels

    def build(self, input_shape) -> None:
        if len(input_shape) != 4 or input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                f"SpatialPyramidPooling needs a (batch, H, W, C) input with known H and W, got {input_shape}"
            )
        h, w = int(input_shape[1]), int(input_shape[2])
        if max(self.levels) > min(h, w):
            raise ValueError(
                f"SPP level {max(self.levels)} needs a feature map of at least that many rows and "
                f"columns, got {h}x{w}; use smaller levels or attach the head earlier"
            )
        self._bins = [
            (r, c) for n in self.levels for r in _bin_edges(h, n) for c in _bin_edges(w, n)
        ]

    def call(self, inputs):
        # one (batch, C) max per bin; 21 bins for the default levels
        pooled = [ops.max(inputs[:, r0:r1, c0:c1, :], axis=(1, 2)) for (r0, r1), (c0, c1) in self._bins]
        return ops.concatenate(pooled, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], int(input_shape[-1]) * sum(n * n for n in self.levels))

    def count_macs(self) -> int:
        """Comparisons per image: every bin reads each of its elements once (see ``helpers.cost``)."""
        channels = int(self.input.shape[-1])
        return sum((r1 - r0) * (c1 - c0) * channels for (r0, r1), (c0, c1) in self._bins)

    def get_config(self) -> dict:
        return super().get_config() | {"levels": list(self.levels)}
