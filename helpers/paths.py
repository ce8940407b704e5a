"""Where things live: the project folders, and the quick mode switch.

The notebooks use these instead of relative paths, so they work from any
working directory (Jupyter, Colab, nbval).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
QUICK_ENV = "EARLY_EXIT_QUICK"
RUNS_ENV = "EARLY_EXIT_RUNS_DIR"


def quick_mode() -> bool:
    """True when ``EARLY_EXIT_QUICK=1``: notebooks shrink data and epochs (for CI)."""
    return os.environ.get(QUICK_ENV) == "1"


def figures_dir() -> Path:
    """``figures/`` (``figures/quick/`` in quick mode, so CI never overwrites the real figures)."""
    return PROJECT_ROOT / "figures" / ("quick" if quick_mode() else "")


def runs_dir() -> Path:
    """Where training runs are written: ``$EARLY_EXIT_RUNS_DIR`` or ``runs/`` (``runs/quick/`` in quick mode)."""
    base = Path(os.environ.get(RUNS_ENV) or PROJECT_ROOT / "runs")
    return base / "quick" if quick_mode() else base
