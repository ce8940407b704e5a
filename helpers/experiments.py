"""Named experiment configurations, shared by the notebooks and ``python -m helpers.train``.

An experiment fixes the dataset, the architecture, the exit heads, the loss
weights and the training budget. ``quick()`` shrinks the budget (a few images
per class, two epochs) so CI can run every notebook in minutes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import keras


@dataclasses.dataclass(frozen=True)
class Experiment:
    """One training configuration.

    Attributes:
        name: unique name, also the name of the reference model it produces.
        description: one line for listings.
        dataset: ``"flowers"``.
        head: exit head kind (``"conv"`` or ``"pool"``), or ``None`` for the plain network.
        loss_weights: lambda for every early exit, or one weight per exit (see
            ``helpers.losses.exit_loss_weights``).
        image_size: side of the square input images.
        width: filter multiplier of the backbone.
        epochs: training epochs.
        batch_size: global batch size (split across replicas under a strategy).
        learning_rate: peak learning rate of the cosine schedule (AdamW).
        weight_decay: AdamW weight decay.
        split_seed: seed of the train/validation/test split.
        quick_per_class: images per class kept in quick mode.
    """

    name: str
    description: str
    dataset: str = "flowers"
    head: str | None = "conv"
    loss_weights: float | tuple[float, ...] = 1.0
    image_size: int = 96
    width: float = 0.5
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    split_seed: int = 0
    quick_per_class: int = 24

    def quick(self) -> Experiment:
        """The same experiment shrunk for CI: two epochs (and ``quick_per_class`` images per class).

        The architecture and image size stay as they are, so the quick run shows the same
        parameter counts and cost tables as the full one (the notebooks check them).
        """
        return dataclasses.replace(self, epochs=2, batch_size=32)

    def build_model(self, num_classes: int) -> keras.Model:
        """Build the (uncompiled) model of this experiment."""
        from helpers.models import build_vgg11

        return build_vgg11(
            num_classes, self.image_size, self.width, head=self.head,
            name=self.name.replace("-", "_").replace(".", "_"),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "flowers-vgg11-lambda1",
            "VGG11 + 5 conv-head exits, every exit weighted 1 (the course project's lambda=1 run)",
            head="conv", loss_weights=1.0,
        ),
        Experiment(
            "flowers-vgg11-lambda0.3",
            "VGG11 + 5 conv-head exits, early exits weighted 0.3 (the course project's lambda=0.3 run)",
            head="conv", loss_weights=0.3,
        ),
        Experiment(
            "flowers-vgg11-poolhead",
            "VGG11 + 5 cheap exits (global pooling + dense), every exit weighted 1",
            head="pool", loss_weights=1.0,
        ),
        Experiment(
            "flowers-vgg11-plain",
            "plain VGG11, final classifier only (the baseline)",
            head=None, loss_weights=(),
        ),
    ]
}


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; ``ValueError`` listing the known names otherwise."""
    try:
        return EXPERIMENTS[name]
    except KeyError:
        raise ValueError(
            f"unknown experiment {name!r}; known experiments: {', '.join(EXPERIMENTS)}"
        ) from None


def names() -> Sequence[str]:
    return list(EXPERIMENTS)
