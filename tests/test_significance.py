"""Tests of evaluation.accuracy_interval (Wilson) and evaluation.paired_test (exact McNemar)."""

from __future__ import annotations

from math import comb

import numpy as np
import pytest

from helpers import evaluation


def _hits(right: int, n: int) -> np.ndarray:
    return np.arange(n) < right


def test_wilson_interval_of_8_in_10_by_hand():
    # p = 0.8, n = 10, z = 1.959964: centre (0.8 + z²/20) / (1 + z²/10) = 0.71674,
    # half-width z/(1 + z²/10) * sqrt(0.016 + z²/400) = 0.22653.
    low, high = evaluation.accuracy_interval(_hits(8, 10))
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)


def test_wilson_interval_at_the_edges_stays_in_0_1():
    z2 = 1.959964**2
    low, high = evaluation.accuracy_interval(np.zeros(10, bool))
    assert low == 0.0 and high == pytest.approx(z2 / (10 + z2), abs=1e-6)  # 0.2775
    low, high = evaluation.accuracy_interval(np.ones(10, bool))
    assert high == 1.0 and low == pytest.approx(10 / (10 + z2), abs=1e-6)


def test_wilson_interval_narrows_with_more_images_and_less_confidence():
    def width(n):
        low, high = evaluation.accuracy_interval(_hits(4 * n // 5, n))
        return high - low

    assert width(50) > width(500) > width(5000) > 0
    low90, high90 = evaluation.accuracy_interval(_hits(40, 50), confidence=0.90)
    low95, high95 = evaluation.accuracy_interval(_hits(40, 50))
    assert low95 < low90 < 0.8 < high90 < high95


def test_wilson_interval_covers_the_true_accuracy_about_as_often_as_promised():
    # Exact coverage for n = 60 images at a true accuracy of 0.84: the binomial
    # probability of every count whose interval contains 0.84.
    n, p = 60, 0.84
    coverage = sum(
        comb(n, k) * p**k * (1 - p) ** (n - k)
        for k in range(n + 1)
        if (lambda lo_hi: lo_hi[0] <= p <= lo_hi[1])(evaluation.accuracy_interval(_hits(k, n)))
    )
    assert 0.92 < coverage < 0.98


def test_paired_test_by_hand():
    # 10 disagreements, 9 in B's favour: p = 2 * (C(10,0) + C(10,1)) / 2^10 = 22/1024.
    a = np.array([1] * 20 + [1] + [0] * 9, bool)
    b = np.array([1] * 20 + [0] + [1] * 9, bool)
    r = evaluation.paired_test(a, b)
    assert (r["a_only"], r["b_only"]) == (1, 9)
    assert r["p_value"] == pytest.approx(22 / 1024)
    assert r["difference"] == pytest.approx(-8 / 30)
    swapped = evaluation.paired_test(b, a)
    assert (swapped["a_only"], swapped["b_only"]) == (9, 1)
    assert swapped["p_value"] == r["p_value"] and swapped["difference"] == -r["difference"]


def test_paired_test_of_an_even_split_and_of_no_disagreement_is_1():
    assert evaluation.paired_test([1, 0, 1, 1], [0, 1, 1, 1])["p_value"] == 1.0
    same = evaluation.paired_test([1, 0, 1], [1, 0, 1])
    assert same == {"a_only": 0, "b_only": 0, "difference": 0.0, "p_value": 1.0}


def test_paired_test_ignores_the_images_both_get_right_or_wrong():
    base = evaluation.paired_test([1, 1, 1, 0], [0, 0, 0, 1])
    padded = evaluation.paired_test([1, 1, 1, 0] + [1] * 50 + [0] * 50, [0, 0, 0, 1] + [1] * 50 + [0] * 50)
    assert padded["p_value"] == base["p_value"] == pytest.approx(2 * 5 / 16)


@pytest.mark.parametrize("args, match", [
    (([], ), "at least one image"),
    (([0, 2, 1], ), "booleans or 0/1"),
    (([1, 0], 1.0), "strictly between 0 and 1"),
])
def test_accuracy_interval_rejects_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        evaluation.accuracy_interval(*args)


def test_paired_test_rejects_arrays_over_different_images():
    with pytest.raises(ValueError, match="same images"):
        evaluation.paired_test([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="booleans or 0/1"):
        evaluation.paired_test([1, 0, 3], [1, 0, 1])


def test_paired_test_matches_the_binomial_sum_and_stays_fast_for_many_disagreements():
    # 3000 disagreements, 1450 one way: the two-sided tail 2 * sum_{i <= 1450} C(3000, i) / 2^3000
    a = np.r_[np.ones(1450, bool), np.zeros(1550, bool)]
    r = evaluation.paired_test(a, ~a)
    expected = 2 * sum(comb(3000, i) for i in range(1451)) / 2**3000
    assert r["p_value"] == pytest.approx(expected, rel=1e-12)
    assert 0.05 < r["p_value"] < 0.1  # a 48/52 split of 3000 is borderline
