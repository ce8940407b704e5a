"""Named experiment configurations, shared by the notebooks and ``python -m helpers.train``.

An experiment fixes the dataset, the architecture, the exit heads, the loss
weights and the training budget: VGG11 on tf_flowers (lesson 1, notebooks 02-04)
and ResNet18 on CIFAR-10 (lesson 2, notebook 05). ``quick()`` shrinks the budget (a few images
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
        dataset: ``"flowers"`` or ``"cifar10"``.
        arch: backbone, ``"vgg11"`` (``helpers.models``) or ``"resnet18"`` (``helpers.resnet``).
        head: exit head kind: ``"conv"``, ``"pool"`` or ``"strided"`` for VGG11, ``"avg"`` or ``"spp"``
            (the pooling) for ResNet18; ``None`` for the plain network.
        head_filters: VGG11 only: filters of a conv or strided head, before ``width`` scaling.
        exits_after: ResNet18 only: the stages followed by an early exit (VGG11 has one
            after every block).
        backbone_from: the name of the trained run (or reference model) whose network becomes
            this one's frozen backbone (blocks and final classifier, ``helpers.models.freeze_backbone``):
            only the exit heads train. Usually another experiment's name; a run of one with
            another seed (``flowers-vgg11-128px-wd-seed1``) works too. ``None`` trains everything.
        loss_weights: lambda for every early exit, or one weight per exit (see
            ``helpers.losses.exit_loss_weights``).
        distill_weight: weight of the self-distillation term of every early exit (the
            final classifier as its teacher, ``helpers.losses.SelfDistillationLoss``);
            0 trains without it.
        distill_temperature: the temperature of that term.
        image_size: side of the square input images.
        width: filter multiplier of the backbone.
        epochs: training epochs.
        batch_size: batch size per replica (under a strategy with N replicas the global
            batch is N times larger, ``helpers.train``).
        learning_rate: peak learning rate of the cosine schedule.
        weight_decay: weight decay of the optimizer.
        optimizer: ``"adamw"`` or ``"sgd"`` (Nesterov momentum 0.9).
        augmentation: training augmentation (see ``helpers.data.make_dataset``).
        mixing: ``"cutmix"`` or ``"mixup"`` of the training batches after the augmentation
            (``helpers.data.mix_batch``; the loss then takes soft labels), or ``None``.
        mixing_alpha: the mixing weights are drawn from ``Beta(mixing_alpha, mixing_alpha)``.
        label_smoothing: share of every training label moved to the uniform distribution
            over the classes (``helpers.losses.compile_multi_exit``); 0 trains on hard labels.
        val_fraction: for a dataset with its own test set (CIFAR-10): the fraction of
            the training images held out for validation.
        split_seed: seed of the train/validation/test split.
        quick_per_class: images per class kept in quick mode.
    """

    name: str
    description: str
    dataset: str = "flowers"
    arch: str = "vgg11"
    head: str | None = "conv"
    head_filters: int = 128
    exits_after: tuple[int, ...] = ()
    backbone_from: str | None = None
    loss_weights: float | tuple[float, ...] = 1.0
    distill_weight: float = 0.0
    distill_temperature: float = 3.0
    image_size: int = 96
    width: float = 0.5
    epochs: int = 50
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 1e-4
    optimizer: str = "adamw"
    augmentation: str = "flowers"
    mixing: str | None = None
    mixing_alpha: float = 1.0
    label_smoothing: float = 0.0
    val_fraction: float = 0.15
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
        name = self.name.replace("-", "_").replace(".", "_")
        if self.arch == "resnet18":
            from helpers.resnet import build_resnet18

            exits = self.exits_after if self.head is not None else ()
            return build_resnet18(num_classes, self.image_size, self.width, exits, self.head or "avg", name=name)
        if self.arch != "vgg11":
            raise ValueError(f"unknown architecture {self.arch!r} in experiment {self.name}; choose vgg11 or resnet18")
        from helpers.models import build_vgg11

        return build_vgg11(
            num_classes, self.image_size, self.width, head=self.head, head_filters=self.head_filters, name=name,
        )

    def make_optimizer(self, schedule) -> keras.optimizers.Optimizer:
        """The experiment's optimizer with learning-rate ``schedule``."""
        if self.optimizer == "sgd":
            return keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=self.weight_decay)
        if self.optimizer == "adamw":
            return keras.optimizers.AdamW(schedule, weight_decay=self.weight_decay)
        raise ValueError(f"unknown optimizer {self.optimizer!r} in experiment {self.name}; choose adamw or sgd")

    @property
    def soft_labels(self) -> bool:
        """Whether training takes probability-vector labels (mixed or smoothed) instead of indices."""
        return self.mixing is not None or self.label_smoothing > 0

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, config: dict) -> Experiment:
        """The experiment a run's ``config["experiment"]`` records.

        A field the record lacks (one added to ``Experiment`` after the run) takes its
        default, which is what the run trained with.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(config) - known
        if unknown:
            raise ValueError(f"unknown experiment settings {sorted(unknown)}; known: {sorted(known)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}
        return cls(**values)


FLOWERS_LARGER = dict(image_size=128, epochs=60, augmentation="flowers_strong")
"""A larger budget for the cheap-head flowers model and its plain baseline (the ``-128px`` runs).

At 96 pixels and 50 epochs the VGG11s fit the training images far better than the
validation images (93 % against 80 %) and validation accuracy stopped rising after
about 35 epochs: more pixels, a stronger augmentation and more epochs are what the
model was short of. These runs measure what they buy, for (128/96)² × 60/50 ≈ 2.1 times
the training MACs.
"""

CIFAR10_EXITS = {2: (2,), 3: (2, 3)}
"""Default exit placement of the CIFAR-10 ResNet18s: the stages followed by an early exit.

Stage 2 ends at 52 % of the plain network's MACs, stage 3 at 76 % (stage 1 at 28 %;
notebook 05 shows the table). A sample that leaves after stage 2 saves about half of
the network; the exit after stage 3 catches the images that stage 2 is not yet sure
of for another quarter. An exit after stage 1 would be the cheapest, but its
features (a few 3x3 layers on 32x32 pixels) are too local to be trusted within a
point of the final accuracy, so it would cost its head for almost no leavers.
"""

POOLINGS = ("avg", "spp")

CIFAR10_RESNET18 = dict(
    dataset="cifar10", arch="resnet18", image_size=32, width=0.5, epochs=48, batch_size=128,
    learning_rate=0.1, weight_decay=5e-4, optimizer="sgd", augmentation="crop_flip",
    val_fraction=0.1, quick_per_class=20,
)
"""What the five CIFAR-10 experiments share: the equal budget they are compared on.

Width 0.5 (32-64-128-256 filters) and 48 epochs are what the CPU time we had bought:
one run per working session on two cores with bfloat16 (notebook 05 states the measured
epochs and wall time of each run, and what 8, 16 and 32 epochs of the same recipe
reach). SGD with Nesterov momentum and a cosine schedule is the standard CIFAR recipe,
but its weight decay is not: Keras applies weight decay decoupled (learning rate x decay
per step), so 5e-4 here is about a tenth of the classic L2 penalty of 5e-4 under
momentum 0.9 (which would be 5e-3 here; see docs/flowers-experiments.md). The
published CIFAR-10 runs were trained with it as it stands.
"""

WD_HEADS = Experiment(
    "flowers-vgg11-128px-wd-heads",
    "flowers-vgg11-128px-wd's trained network, frozen, with new strided-conv exit heads "
    "(32 filters) trained alone for 20 epochs",
    head="strided", head_filters=64, backbone_from="flowers-vgg11-128px-wd", loss_weights=1.0,
    **{**FLOWERS_LARGER, "epochs": 20}, weight_decay=0.05,
)
"""Exit heads on the frozen flowers-vgg11-128px-wd; the -seedN-heads experiments put the same
heads on that recipe's other seeds."""

EXPERIMENTS: dict[str, Experiment] = {
    e.name: e
    for e in [
        Experiment(
            "flowers-vgg11-96px-lambda1",
            "VGG11 + 5 conv-head exits, every exit weighted 1 (the course project's lambda=1 run)",
            head="conv", loss_weights=1.0,
        ),
        Experiment(
            "flowers-vgg11-96px-lambda0.3",
            "VGG11 + 5 conv-head exits, early exits weighted 0.3 (the course project's lambda=0.3 run)",
            head="conv", loss_weights=0.3,
        ),
        Experiment(
            "flowers-vgg11-96px",
            "VGG11 + 5 cheap exits (global pooling + dense), every exit weighted 1 (the first design, at 96 px)",
            head="pool", loss_weights=1.0,
        ),
        Experiment(
            "flowers-vgg11-plain-96px",
            "plain VGG11, final classifier only (the baseline)",
            head=None, loss_weights=(),
        ),
        Experiment(
            "flowers-vgg11-128px",
            "flowers-vgg11-96px on a larger budget: 128 px, stronger augmentation, 60 epochs",
            head="pool", loss_weights=1.0, **FLOWERS_LARGER,
        ),
        Experiment(
            "flowers-vgg11-128px-distill",
            "flowers-vgg11-128px with self-distillation: every early exit also learns the final "
            "classifier's softened output (weight 1, T=3)",
            head="pool", loss_weights=1.0, distill_weight=1.0, distill_temperature=3.0, **FLOWERS_LARGER,
        ),
        Experiment(
            "flowers-vgg11-128px-wd",
            "flowers-vgg11-128px for 120 epochs with AdamW weight decay 0.05 instead of 1e-4 "
            "(the 120-epoch run fit its training images at 98 %, validation at 86 %)",
            head="pool", loss_weights=1.0, **{**FLOWERS_LARGER, "epochs": 120}, weight_decay=0.05,
        ),
        Experiment(
            "flowers-vgg11-128px-wd-150ep",
            "flowers-vgg11-128px-wd for 150 epochs instead of 120 (its validation accuracy was still "
            "rising in the last third of the cosine schedule)",
            head="pool", loss_weights=1.0, **{**FLOWERS_LARGER, "epochs": 150}, weight_decay=0.05,
        ),
        Experiment(
            "flowers-vgg11-128px-wd-cutmix",
            "flowers-vgg11-128px-wd with CutMix (alpha 1) on every training batch, against the gap "
            "between its training and validation accuracy",
            head="pool", loss_weights=1.0, **{**FLOWERS_LARGER, "epochs": 120}, weight_decay=0.05,
            mixing="cutmix",
        ),
        Experiment(
            "flowers-vgg11-128px-wd-ls",
            "flowers-vgg11-128px-wd with label smoothing 0.1, a milder regulariser than CutMix against "
            "the gap between its training and validation accuracy",
            head="pool", loss_weights=1.0, **{**FLOWERS_LARGER, "epochs": 120}, weight_decay=0.05,
            label_smoothing=0.1,
        ),
        Experiment(
            "flowers-vgg11-128px-sgd",
            "flowers-vgg11-128px-wd with SGD (Nesterov momentum 0.9, peak learning rate 0.05) instead "
            "of AdamW, the optimizer VGG nets are usually trained with; decay 5e-3 is the classic "
            "L2 of 5e-4 in the decoupled form (5e-4 / (1 - 0.9))",
            head="pool", loss_weights=1.0, **{**FLOWERS_LARGER, "epochs": 120}, optimizer="sgd",
            learning_rate=0.05, weight_decay=5e-3,
        ),
        Experiment(
            "flowers-vgg11-160px-wd",
            "flowers-vgg11-128px-wd at 160 px, for 90 epochs instead of 120 (more pixels for the same "
            "recipe; each epoch costs (160/128)^2 = 1.56 times the MACs)",
            head="pool", loss_weights=1.0, **{**FLOWERS_LARGER, "image_size": 160, "epochs": 90},
            weight_decay=0.05,
        ),
        WD_HEADS,
        *[
            dataclasses.replace(
                WD_HEADS, name=f"flowers-vgg11-128px-wd-seed{seed}-heads",
                description=f"flowers-vgg11-128px-wd-heads on the network of flowers-vgg11-128px-wd-seed{seed} "
                "(the same recipe trained with another seed): is the operating point of the heads typical?",
                backbone_from=f"flowers-vgg11-128px-wd-seed{seed}",
            )
            for seed in (1, 2)
        ],
        dataclasses.replace(
            WD_HEADS, name="flowers-vgg11-128px-sgd-heads",
            description="flowers-vgg11-128px-wd-heads on the network of flowers-vgg11-128px-sgd, whose "
            "own first exits were better than flowers-vgg11-128px-wd's: do the strided heads lift them "
            "further?",
            backbone_from="flowers-vgg11-128px-sgd",
        ),
        Experiment(
            "flowers-vgg11-128px-wd-heads-distill",
            "flowers-vgg11-128px-wd-heads with self-distillation (weight 1, T=3): the frozen final "
            "classifier teaches the new exit heads, and no gradient reaches the backbone",
            head="strided", head_filters=64, backbone_from="flowers-vgg11-128px-wd", loss_weights=1.0,
            distill_weight=1.0, distill_temperature=3.0, **{**FLOWERS_LARGER, "epochs": 20}, weight_decay=0.05,
        ),
        Experiment(
            "flowers-vgg11-160px-wd-heads",
            "flowers-vgg11-160px-wd's trained network, frozen, with new strided-conv exit heads "
            "(32 filters) trained alone for 20 epochs",
            head="strided", head_filters=64, backbone_from="flowers-vgg11-160px-wd", loss_weights=1.0,
            **{**FLOWERS_LARGER, "image_size": 160, "epochs": 20}, weight_decay=0.05,
        ),
        Experiment(
            "flowers-vgg11-plain-128px",
            "plain VGG11 on the larger budget of flowers-vgg11-128px (its baseline)",
            head=None, loss_weights=(), **FLOWERS_LARGER,
        ),
        Experiment(
            "flowers-vgg11-plain-128px-wd",
            "plain VGG11 on the budget of flowers-vgg11-128px-wd: 120 epochs, AdamW weight decay 0.05 "
            "(its baseline)",
            head=None, loss_weights=(), **{**FLOWERS_LARGER, "epochs": 120}, weight_decay=0.05,
        ),
        Experiment(
            "flowers-vgg11-plain-128px-wd-heads",
            "the plain flowers-vgg11-plain-128px-wd, frozen, turned into a multi-exit network by "
            "strided-conv exit heads (32 filters) trained alone for 20 epochs",
            head="strided", head_filters=64, backbone_from="flowers-vgg11-plain-128px-wd", loss_weights=1.0,
            **{**FLOWERS_LARGER, "epochs": 20}, weight_decay=0.05,
        ),
        *[
            Experiment(
                f"cifar10-resnet18-{n}exits-{pool}" if exits else "cifar10-resnet18-plain",
                (f"ResNet18 + early exit{'s' if n > 2 else ''} after stage {' and '.join(map(str, exits))}, "
                 f"{'average' if pool == 'avg' else 'spatial-pyramid'}-pooling heads, loss weights "
                 f"{list(weights)}") if exits else "plain ResNet18, final classifier only (the baseline)",
                **CIFAR10_RESNET18,
                head=pool if exits else None, exits_after=exits, loss_weights=weights,
            )
            for n, exits, weights, pools in [
                (1, (), (), ["avg"]),
                (2, CIFAR10_EXITS[2], (0.3, 0.7), POOLINGS),
                (3, CIFAR10_EXITS[3], (0.2, 0.3, 0.5), POOLINGS),
            ]
            for pool in pools
        ],
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
