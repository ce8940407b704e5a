"""One rule for "does this number meet its limit?", shared by every check in the project.

Costs and accuracies are means of floats, so a value that is exactly at a limit on
paper can miss it by a rounding error (a saving of ``1 - 0.8`` falls short of ``0.2``
in floating point). Every comparison of a measured value with a target, a budget or a
tolerance goes through these two functions, with the same slack, so the README's
targets table, threshold selection and the budget search agree on the edge cases.
Both work elementwise on NumPy arrays and pandas Series.
"""

from __future__ import annotations

SLACK = 1e-9
"""How far past a limit still counts as meeting it (far below any measured difference:
one image of a 10 000-image test set is 1e-4)."""


def at_most(value, limit):
    """Whether ``value <= limit`` (up to ``SLACK``): a cost within a budget, a drop within a tolerance."""
    return value <= limit + SLACK


def at_least(value, limit):
    """Whether ``value >= limit`` (up to ``SLACK``): an accuracy reaching a target."""
    return value >= limit - SLACK
