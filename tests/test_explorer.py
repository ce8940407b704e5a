"""Tests of helpers.explorer: the figures are pure functions; the widget falls back to a figure headlessly."""


import numpy as np
import pytest
from hand_made import LABELS, LOGITS
from matplotlib.figure import Figure

from helpers import explorer
from helpers.evaluation import Analysis

IMAGES = np.repeat(np.arange(4, dtype=np.uint8), 2 * 2 * 3).reshape(-1, 2, 2, 3)


@pytest.fixture
def analysis() -> Analysis:
    return Analysis("tiny", ["exit_1", "exit_2", "final"], ["a", "b"], np.array([0.3, 0.6, 1.1]),
                    LOGITS, LABELS, LOGITS, LABELS, threshold=0.9, tolerance=0.01, rule="cheapest")


def test_widgets_are_not_used_under_pytest():
    assert not explorer.widgets_available()  # PYTEST_CURRENT_TEST is set (as in an nbval kernel)


def test_static_thresholds():
    assert explorer.static_thresholds("entropy", 6) == [0.1, 0.3, 0.5, 0.7]
    assert explorer.static_thresholds("max_prob", 6) == [0.99, 0.9, 0.8, 0.6]
    assert explorer.static_thresholds("patience", 6) == [5, 4, 3, 2]
    assert explorer.static_thresholds("patience", 3) == [2, 1]


def test_explorer_state_is_the_evaluation_at_that_threshold(analysis):
    fig = explorer.explorer_state(analysis, 0.9, "entropy", IMAGES, per_exit=2)
    hist = fig.axes[0]
    # tau = 0.9 (test_evaluation): exits [0, 1, 2, 0], accuracy 1, cost 0.575
    assert [p.get_height() for p in hist.patches] == pytest.approx([0.5, 0.25, 0.25])
    assert "τ = 0.90" in hist.get_title() and "accuracy 100.0% (final alone 50.0%)" in hist.get_title()
    assert "relative cost 0.57× plain" in hist.get_title()  # 0.575 rounds to even
    assert len(fig.axes) == 1 + 3 * 2
    shown = [int(ax.images[0].get_array()[0, 0, 0]) for ax in fig.axes[1:3] if ax.images]
    assert shown == [0, 3]  # the images leaving at exit_1
    patience = explorer.explorer_state(analysis, 2, "patience")
    assert len(patience.axes) == 1 and patience.axes[0].get_title().startswith("patience: p = 2\n")
    assert [p.get_height() for p in patience.axes[0].patches] == pytest.approx([0.0, 0.25, 0.75])
    with pytest.raises(ValueError, match="3 images"):
        explorer.explorer_state(analysis, 0.9, "entropy", IMAGES[:3])


def test_static_fallback(analysis):
    fig = explorer.threshold_explorer(analysis, IMAGES, policies=("patience", "entropy"), interactive=False)
    assert isinstance(fig, Figure)
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["p = 2", "p = 1"]
    default = explorer.threshold_explorer(analysis)  # under pytest: static, first policy = entropy
    assert isinstance(default, Figure) and len(default.axes) == 4
    assert default.axes[0].get_title().startswith("τ = 0.10")
    with pytest.raises(ValueError, match="at least one policy"):
        explorer.threshold_explorer(analysis, policies=())


def test_widget_ui_builds_and_reacts(analysis, monkeypatch):
    widgets = pytest.importorskip("ipywidgets")
    rendered = []
    real_state = explorer.explorer_state

    def spy(*args, **kwargs):
        rendered.append(args[1:3])
        return real_state(*args, **kwargs)

    monkeypatch.setattr(explorer, "explorer_state", spy)
    ui = explorer.threshold_explorer(analysis, IMAGES, interactive=True)
    assert isinstance(ui, widgets.VBox)
    controls, out = ui.children
    selector, slider_box = controls.children
    assert list(selector.options) == ["entropy", "max_prob", "patience"]
    assert slider_box.children[0].value == pytest.approx(0.9)  # the operating tau*
    assert rendered == [(0.9, "entropy")]
    slider_box.children[0].value = 0.5
    selector.value = "patience"
    patience_slider = slider_box.children[0]
    assert isinstance(patience_slider, widgets.IntSlider) and patience_slider.max == 3
    patience_slider.value = 3
    # patience starts at its operating p: p = 1 (accuracy 0.5 = the final exit's, cost 0.3)
    assert analysis.operating_threshold("patience") == 1
    assert rendered[1:] == [(0.5, "entropy"), (1, "patience"), (3, "patience")]
