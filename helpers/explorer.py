"""The interactive threshold explorer: move tau (or patience p) and watch where the samples leave.

``threshold_explorer`` returns an ``ipywidgets`` UI (a policy selector, a threshold
slider and a live figure: exit histogram, accuracy, relative cost and a few images
leaving at each exit) when it runs in a live Jupyter or Colab kernel. Otherwise it
returns a static figure (the same histogram for a few thresholds), so a notebook
never hangs or fails when executed headlessly:

- ipywidgets is not installed, or the code does not run in an IPython kernel;
- the notebook runs under pytest/nbval (``PYTEST_CURRENT_TEST`` is set in the
  kernel's environment);
- ``EARLY_EXIT_STATIC=1`` is set (for headless runs such as ``python -m helpers.notebooks``,
  whose committed outputs GitHub should show as a picture), or ``interactive=False``.

The figures come from pure functions (``explorer_state``, ``explorer_static``,
built on ``helpers.plots``) that the unit tests check; the widget wiring is thin.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from matplotlib.figure import Figure

from helpers import plots
from helpers.evaluation import exit_accuracies
from helpers.policies import resolve_policy

STATIC_ENV = "EARLY_EXIT_STATIC"

STATIC_THRESHOLDS = {"entropy": (0.1, 0.3, 0.5, 0.7), "max_prob": (0.99, 0.9, 0.8, 0.6)}
"""Thresholds of the static fallback, from conservative to aggressive (patience: p = E-1 ... 1)."""


def widgets_available() -> bool:
    """Whether a live widget UI can be shown (see the module docstring for the fallbacks)."""
    if os.environ.get(STATIC_ENV) == "1" or "PYTEST_CURRENT_TEST" in os.environ:
        return False
    try:
        import ipywidgets  # noqa: F401
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def static_thresholds(policy: str, num_exits: int) -> list:
    """A few thresholds of ``policy`` worth showing side by side, from conservative to aggressive."""
    spec = resolve_policy(policy)
    if spec.integer:
        return list(range(max(num_exits - 1, 1), 0, -1))[:4]
    return list(STATIC_THRESHOLDS.get(spec.name, (0.1, 0.3, 0.5, 0.7)))


def explorer_state(
    analysis,
    threshold: float | None = None,
    policy: str = "entropy",
    images: np.ndarray | None = None,
    split: str = "test",
    per_exit: int = 3,
    seed: int = 0,
) -> Figure:
    """The explorer's figure at one threshold (the picture the slider updates).

    Args:
        analysis: a ``helpers.evaluation.Analysis``.
        threshold: the policy's threshold; default its operating threshold.
        policy: policy name.
        images: uint8 images of ``split``, in the order of its logits (or None).
        split: ``"val"`` or ``"test"``.
        per_exit: example images per exit.
        seed: seed of the choice of examples.

    Returns:
        ``helpers.plots.plot_threshold_state`` of ``analysis.at(threshold, split, policy)``.
    """
    spec = resolve_policy(policy)
    logits, labels = analysis.split_data(split)
    if images is not None and len(images) != len(labels):
        raise ValueError(f"{len(images)} images for the {len(labels)} samples of the {split} split")
    result = analysis.at(threshold, split, spec.name)
    final = float(exit_accuracies(logits, labels)[-1])
    return plots.plot_threshold_state(
        result, analysis.exit_names, final, images, labels if images is not None else None,
        analysis.class_names if images is not None else None, per_exit, seed, spec.threshold_name,
    )


def explorer_static(
    analysis, policy: str = "entropy", thresholds: Sequence[float] | None = None, split: str = "test"
) -> Figure:
    """The static fallback: exit histograms of ``policy`` at a few thresholds.

    Args:
        analysis: a ``helpers.evaluation.Analysis``.
        policy: policy name.
        thresholds: default ``static_thresholds(policy, E)``.
        split: ``"val"`` or ``"test"``.

    Returns:
        ``helpers.plots.plot_exit_histograms`` of those thresholds.
    """
    spec = resolve_policy(policy)
    logits, labels = analysis.split_data(split)
    thresholds = static_thresholds(spec.name, logits.shape[1]) if thresholds is None else thresholds
    results = [analysis.at(t, split, spec.name) for t in thresholds]
    final = float(exit_accuracies(logits, labels)[-1])
    fig = plots.plot_exit_histograms(results, analysis.exit_names, final, spec.threshold_name)
    fig.suptitle(f"{analysis.name}: {spec.description}", y=1.02)
    return fig


def threshold_explorer(
    analysis,
    images: np.ndarray | None = None,
    policies: Sequence[str] = ("entropy", "max_prob", "patience"),
    split: str = "test",
    interactive: bool | None = None,
    per_exit: int = 3,
):
    """A live explorer of the exit threshold, or a static figure where widgets cannot run.

    Args:
        analysis: a ``helpers.evaluation.Analysis``.
        images: uint8 images of ``split`` (in the order of its logits) for the examples.
        policies: the policies offered in the selector (the first is shown first).
        split: ``"val"`` or ``"test"``.
        interactive: force the widget UI (True) or the static figure (False);
            default ``widgets_available()``.
        per_exit: example images per exit.

    Returns:
        An ``ipywidgets.VBox`` (display it, or let the cell return it), or the static
        ``Figure`` of ``explorer_static`` for the first policy.
    """
    if not policies:
        raise ValueError("give at least one policy")
    specs = [resolve_policy(p) for p in policies]
    if interactive is None:
        interactive = widgets_available()
    if not interactive:
        return explorer_static(analysis, specs[0].name, split=split)

    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import clear_output, display

    num_exits = analysis.val_logits.shape[1]
    start = {s.name: analysis.operating_threshold(s.name) for s in specs}

    def slider_for(spec):
        if spec.integer:
            return widgets.IntSlider(value=int(start[spec.name]), min=1, max=num_exits, step=1,
                                     description=spec.threshold_name, continuous_update=False)
        return widgets.FloatSlider(value=float(start[spec.name]), min=0.0, max=1.0, step=0.005, readout_format=".3f",
                                   description=spec.threshold_name, continuous_update=False)

    sliders = {s.name: slider_for(s) for s in specs}
    selector = widgets.Dropdown(options=[s.name for s in specs], value=specs[0].name, description="policy")
    slider_box = widgets.HBox([sliders[specs[0].name]])
    out = widgets.Output()

    def render(*_) -> None:
        name = selector.value
        with out:
            clear_output(wait=True)
            fig = explorer_state(analysis, sliders[name].value, name, images, split, per_exit)
            display(fig)
            plt.close(fig)

    def on_policy(change) -> None:
        slider_box.children = [sliders[change["new"]]]
        render()

    selector.observe(on_policy, names="value")
    for slider in sliders.values():
        slider.observe(render, names="value")
    render()
    return widgets.VBox([widgets.HBox([selector, slider_box]), out])
