"""Helpers for the early-exit lessons: data, models, losses, inference, cost, plots.

Import the submodules you need, for example ``from helpers import data, models``.
Nothing runs on import.
"""

__version__ = "0.1.0"
