"""Export a multi-exit model as a self-contained TensorFlow SavedModel.

    python -m helpers.export MODEL OUT_DIR [--precision float32|mixed_bfloat16|mixed_float16] [--exits E1,E2,...]
                             [--policy entropy|max_prob|patience] [--overwrite]

MODEL is a ``.keras`` file, a run folder or the name of a reference model (see
``helpers.registry``). The SavedModel needs nothing from this repository: load it
with TensorFlow alone,

    loaded = tf.saved_model.load(OUT_DIR)
    out = loaded.signatures["early_exit"](images=images, threshold=tf.constant(0.4))
    names = loaded.class_names.numpy()          # bytes, in label order

Serving signatures, each taking ``images``: uint8 ``[N, H, W, 3]`` at the model's
input size (the model's own preprocessing is inside):

- ``full``: backbone and final classifier only, no exit heads -> ``logits`` float32
  ``[N, K]``. The plain network's cost: the baseline.
- ``all_exits``: every head on the whole batch -> ``logits`` float32 ``[N, E, K]``
  (E outputs, final last; every block runs once).
- ``early_exit``: also ``threshold``, a float32 scalar in [0, 1] (for ``--policy
  patience`` the integer p) -> ``label`` int32
  ``[N]``, ``exit`` int32 ``[N]`` (1-based, E is the final classifier) and
  ``probabilities`` float32 ``[N, K]``, computing for each image only the stages it
  needs (``helpers.inference.EarlyExitEngine``).
- ``early_exit_per_exit``: the same with ``thresholds``, float32 ``[E - 1]``, one
  threshold per early exit instead of one for all (for instance those that
  ``helpers.budget.per_exit_thresholds_for_budget`` chooses; 0 closes an exit).

All four run the network with its batch normalisations folded into the convolutions
before them (``helpers.folding``, as the engine does by default): the same function up
to float32 rounding, one pass less over every activation map.

The same four functions are attributes of the loaded object (``loaded.full(images)``
...). Non-trainable variables carry the metadata: ``class_names`` (tf.string ``[K]``),
``exit_names`` (tf.string ``[E]``), ``policy`` (tf.string, the exit rule that
``threshold`` is a threshold of) and ``default_threshold`` (float32, the model's
chosen threshold for that policy if its metadata has one, else the policy's default).

``--policy`` chooses the exit rule of ``early_exit`` (``helpers.policies``): normalised
entropy by default (leave when it is below ``threshold``), ``max_prob`` (leave when the
top probability is above it) or ``patience`` (``threshold`` = p, leave once p
consecutive exits agree). Patience remembers the earlier exits' labels, so it takes no
per-exit thresholds: its export has no ``early_exit_per_exit`` (``signature_names``).

Wrong inputs: the signatures accept uint8 images of any height and width, and an
assertion inside the graph rejects every size but the model's before anything is
computed: ``InvalidArgumentError`` with the message "images must be uint8
[N, H, W, 3] (the model's input size); resize them to HxW before calling the
model". (A fixed-size signature alone would not do: TensorFlow does not check the
shape of inputs given to a loaded signature, and the convolutions and global
pooling would silently run on the wrong size.) Images of another dtype are rejected
by TensorFlow ("... expected to be a uint8 tensor but is a float tensor"). A
threshold outside [0, 1] (or NaN) fails a graph assertion: ``InvalidArgumentError``
whose message starts "threshold must be a number in [0, 1]"; so does a ``thresholds``
vector of the wrong length ("thresholds must hold one threshold per early exit").

``--exits`` exports the model with only some of its early exits (output names or
1-based numbers, comma-separated; ``helpers.models.select_exits``): the other heads
are not in the export at all, so they cost nothing, unlike a closed exit's. E then
counts the kept outputs, ``exit`` numbers them in that order, and ``exit_names`` names
them (``[b"exit_2", b"exit_4", b"final"]`` for ``--exits 2,4``). ``default_threshold``
stays the one chosen with every exit.

Errors on the command line (unknown model, existing output folder ...) print one
line on stderr and exit with status 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import tensorflow as tf

SIGNATURES = ("full", "all_exits", "early_exit", "early_exit_per_exit")
PRECISION_CHOICES = ("float32", "mixed_bfloat16", "mixed_float16")


def signature_names(policy: str = "entropy") -> tuple[str, ...]:
    """The serving signatures of an export with exit ``policy``: ``SIGNATURES``, without
    ``early_exit_per_exit`` for a policy that takes no per-exit thresholds (patience)."""
    from helpers.policies import resolve_policy

    if resolve_policy(policy).integer:
        return tuple(name for name in SIGNATURES if name != "early_exit_per_exit")
    return SIGNATURES


def _size_check(image_shape: Sequence[int]) -> Callable[[tf.Tensor], tf.Tensor]:
    """A graph function asserting that ``images`` are ``[N, *image_shape]``, then fixing that static shape."""
    h, w, c = (int(d) for d in image_shape)
    message = (
        f"images must be uint8 [N, {h}, {w}, {c}] (the model's input size); "
        f"resize them to {h}x{w} before calling the model"
    )

    def checked(images: tf.Tensor) -> tf.Tensor:
        check = tf.debugging.assert_equal(tf.shape(images)[1:], tf.constant([h, w, c]), message=message)
        with tf.control_dependencies([check]):
            images = tf.identity(images)
        return tf.ensure_shape(images, [None, h, w, c])

    return checked


class EarlyExitModule(tf.Module):
    """The object written to the SavedModel: the tf.functions of ``signature_names`` and the metadata variables.

    Args:
        engine: a ``helpers.inference.EarlyExitEngine`` (its model's variables are
            captured by the functions and tracked here); its policy is the export's.
        class_names: class names in label order.
        default_threshold: stored as ``default_threshold`` for the users of the export.
    """

    def __init__(self, engine, class_names: Sequence[str], default_threshold: float = 0.5) -> None:
        super().__init__(name="early_exit_model")
        if len(class_names) != engine.num_classes:
            raise ValueError(
                f"{len(class_names)} class names for a model with {engine.num_classes} classes"
            )
        self.class_names = tf.Variable(list(class_names), trainable=False, dtype=tf.string, name="class_names")
        self.exit_names = tf.Variable(engine.exit_names, trainable=False, dtype=tf.string, name="exit_names")
        self.policy = tf.Variable(engine.policy.name, trainable=False, dtype=tf.string, name="policy")
        self.signature_names = signature_names(engine.policy.name)
        self.default_threshold = tf.Variable(
            float(default_threshold), trainable=False, dtype=tf.float32, name="default_threshold"
        )

        # Any height and width pass the signature; the assertion in `checked` then
        # rejects every size but the model's with a clear message. (A fixed-size
        # signature is not enough: a loaded signature does not check shapes.)
        images_spec = tf.TensorSpec([None, None, None, 3], tf.uint8, name="images")
        checked = _size_check(engine.image_shape)

        @tf.function(input_signature=[images_spec])
        def full(images: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logits": engine.full_logits(checked(images))}

        @tf.function(input_signature=[images_spec])
        def all_exits(images: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"logits": engine.all_exit_logits(checked(images))}

        @tf.function(input_signature=[images_spec, engine.threshold_spec])
        def early_exit(images: tf.Tensor, threshold: tf.Tensor) -> dict[str, tf.Tensor]:
            return engine.early_exit(checked(images), threshold)

        self.full = full
        self.all_exits = all_exits
        self.early_exit = early_exit
        if "early_exit_per_exit" in self.signature_names:
            # Any length passes the signature, as any image size does; the engine asserts E - 1.
            thresholds_spec = tf.TensorSpec([None], tf.float32, name="thresholds")

            @tf.function(input_signature=[images_spec, thresholds_spec])
            def early_exit_per_exit(images: tf.Tensor, thresholds: tf.Tensor) -> dict[str, tf.Tensor]:
                return engine.early_exit(checked(images), thresholds)

            self.early_exit_per_exit = early_exit_per_exit
        # Track the model's variables that the functions use (as keras.export does),
        # rather than the Keras model itself: the export holds plain TF objects only.
        seen: dict[int, tf.Variable] = {}
        for name in self.signature_names:
            for v in getattr(self, name).get_concrete_function().variables:
                seen.setdefault(id(v), v)
        self.model_variables = list(seen.values())

    def serving_signatures(self) -> dict:
        """The concrete functions to register as serving signatures."""
        return {name: getattr(self, name).get_concrete_function() for name in self.signature_names}


def export_saved_model(
    model,
    class_names: Sequence[str],
    out_dir: str | os.PathLike,
    default_threshold: float = 0.5,
    overwrite: bool = False,
    policy: str = "entropy",
) -> Path:
    """Write ``model`` as a SavedModel with the ``full``, ``all_exits``, ``early_exit`` and ``early_exit_per_exit`` signatures.

    The SavedModel is written to a temporary folder beside ``out_dir`` and renamed,
    so an interrupted export never leaves half a model behind.

    Args:
        model: a multi-exit model from ``helpers.models`` (run in its own precision).
        class_names: class names in label order.
        out_dir: the SavedModel folder to create.
        default_threshold: stored in the export as ``default_threshold`` (a threshold of ``policy``).
        overwrite: replace an existing ``out_dir`` that holds an earlier export.
        policy: the exit rule of ``early_exit`` (``signature_names`` says which signatures it gets).

    Returns:
        ``out_dir`` as a ``Path``.

    Raises:
        FileExistsError: ``out_dir`` exists and is not empty, and ``overwrite`` is false;
            or ``overwrite`` is true but ``out_dir`` is not an earlier export (no
            ``saved_model.pb``) or is, or holds, the working directory; or part of its
            path is a file.
        PermissionError: its parent folder is not writable.
        ValueError: the model is not a multi-exit model of ``helpers.models``.
    """
    from helpers.inference import EarlyExitEngine

    out_dir = Path(out_dir)
    target = out_dir.resolve()  # "." or "a/.." have no name of their own to put beside
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} is a file; choose a folder name for the SavedModel")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not overwrite:
            raise FileExistsError(f"{out_dir} already exists and is not empty; choose another folder or pass --overwrite")
        # --overwrite deletes the folder: only ever an earlier export, never the folder we work in
        if not (out_dir / "saved_model.pb").is_file():
            raise FileExistsError(f"{out_dir} is not empty and holds no SavedModel (no saved_model.pb); "
                                  "--overwrite replaces only an earlier export: choose another folder")
        cwd = Path.cwd().resolve()
        if target == cwd or target in cwd.parents:
            raise FileExistsError(f"{out_dir} is or holds the current working directory; "
                                  "export from outside it, or choose another folder")
    engine = EarlyExitEngine(model, policy)
    module = EarlyExitModule(engine, class_names, engine.policy.check(default_threshold))
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise FileExistsError(f"cannot create {out_dir}: part of its path is a file") from None
    if not os.access(target.parent, os.W_OK):
        raise PermissionError(f"cannot write in {target.parent}; choose a folder you may write to")
    partial = target.parent / f".{target.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        tf.saved_model.save(module, str(partial), signatures=module.serving_signatures())
        if target.exists():
            shutil.rmtree(target)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out_dir


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point (``python -m helpers.export --help``).

    Returns:
        0 on success, 2 on an error (one line on stderr).
    """
    from helpers.evaluate import argument_type, default_threshold
    from helpers.models import parse_exits
    from helpers.policies import POLICIES

    parser = argparse.ArgumentParser(
        prog="python -m helpers.export",
        description="Export a multi-exit model as a TensorFlow SavedModel with full, all_exits, "
        "early_exit and (except for --policy patience) early_exit_per_exit signatures (uint8 images in, "
        "preprocessing inside).",
    )
    parser.add_argument("model", metavar="MODEL", help="a .keras file, a run folder or a reference model name")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the SavedModel to")
    parser.add_argument(
        "--precision", choices=PRECISION_CHOICES,
        help="rebuild the model under this dtype policy before exporting (default: as saved)",
    )
    parser.add_argument("--exits", type=argument_type(parse_exits),
                        help="export only these early exits (names or 1-based numbers, comma-separated, or none): "
                        "the other heads are left out")
    parser.add_argument("--policy", default="entropy", choices=sorted(POLICIES),
                        help="exit rule of early_exit (default entropy); default_threshold is the model's threshold "
                        "for it (tau* for entropy)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier export in OUT_DIR (a folder holding anything else is never deleted)")
    args = parser.parse_args(argv)
    try:
        from helpers.inference import with_precision
        from helpers.models import select_exits
        from helpers.registry import load

        print(f"loading {args.model} ...", file=sys.stderr)
        loaded = load(args.model)
        model = with_precision(loaded.model, args.precision) if args.precision else loaded.model
        if args.exits is not None:
            model = select_exits(model, args.exits)
        threshold = default_threshold(loaded.meta, args.policy)
        print(f"tracing and writing the SavedModel to {args.out_dir} ...", file=sys.stderr)
        out = export_saved_model(model, loaded.class_names, args.out_dir, threshold, args.overwrite, args.policy)
    except Exception as err:  # one line, no traceback: the message says what to fix
        message = " ".join(str(err).split()) or type(err).__name__
        expected = isinstance(err, (ValueError, OSError, TypeError))
        print(f"error: {message}" if expected else f"error: {type(err).__name__}: {message}", file=sys.stderr)
        return 2
    size = model.inputs[0].shape[1]
    print(
        f"wrote {out}: signatures {', '.join(signature_names(args.policy))}; images uint8 [N, {size}, {size}, 3]; "
        f"{len(model.outputs)} outputs, {len(loaded.class_names)} classes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
