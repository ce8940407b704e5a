"""Tests of helpers.policies: normalised entropy and the entropy exit rule."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers import policies


def _entropy_reference(p: np.ndarray) -> np.ndarray:
    """NumPy normalised entropy with 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64)
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(-1) / math.log(p.shape[-1])


# --------------------------------------------------------------------------- normalized_entropy


@pytest.mark.parametrize("k", [2, 3, 5, 10, 100])
def test_uniform_has_entropy_one(k):
    h = np.asarray(policies.normalized_entropy(np.full((2, k), 1.0 / k)))
    assert h.dtype == np.float32 and h.shape == (2,)
    np.testing.assert_allclose(h, 1.0, atol=1e-6)


@pytest.mark.parametrize("k", [2, 5, 10])
def test_one_hot_has_entropy_zero(k):
    p = np.eye(k)
    np.testing.assert_array_equal(np.asarray(policies.normalized_entropy(p)), np.zeros(k))


def test_half_of_the_classes_gives_one_half():
    # -(2 * 0.5 log 0.5) / log 4 = log 2 / log 4 = 1/2; the zeros contribute 0 (not NaN).
    h = policies.normalized_entropy([[0.5, 0.5, 0.0, 0.0]])
    assert float(h[0]) == pytest.approx(0.5, abs=1e-7)


def test_general_vectors_match_numpy(rng):
    p = rng.dirichlet(np.ones(7) * 0.5, size=50)
    p[:5, :3] = 0.0  # exact zeros
    p /= p.sum(-1, keepdims=True)
    h = np.asarray(policies.normalized_entropy(p))
    assert not np.isnan(h).any()
    np.testing.assert_allclose(h, _entropy_reference(p), atol=1e-6)
    # Hand value: p = (0.7, 0.2, 0.1) -> -(0.7 ln 0.7 + 0.2 ln 0.2 + 0.1 ln 0.1) / ln 3.
    hand = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    assert float(policies.normalized_entropy([0.7, 0.2, 0.1])) == pytest.approx(hand, abs=1e-6)


def test_entropy_keeps_leading_dimensions():
    h = policies.normalized_entropy(np.full((2, 3, 4), 0.25))
    assert tuple(h.shape) == (2, 3)


def test_entropy_needs_two_classes():
    with pytest.raises(ValueError, match="at least 2 classes"):
        policies.normalized_entropy([[1.0]])


# --------------------------------------------------------------------------- entropy_from_logits


def test_entropy_from_logits_matches_softmax(rng):
    z = rng.normal(0, 3, size=(20, 5)).astype(np.float32)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(np.asarray(policies.entropy_from_logits(z)), _entropy_reference(p), atol=1e-6)


def test_entropy_from_logits_non_finite_rows_get_one():
    z = np.array(
        [
            [np.nan, 0.0, 0.0],
            [np.inf, 0.0, 0.0],
            [-np.inf, 0.0, 0.0],
            [50.0, 0.0, 0.0],  # finite and confident
        ],
        dtype=np.float32,
    )
    h = np.asarray(policies.entropy_from_logits(z))
    np.testing.assert_array_equal(h[:3], [1.0, 1.0, 1.0])
    assert 0.0 <= h[3] < 1e-6


# --------------------------------------------------------------------------- entropy_exit


def _mixed_logits():
    return np.array(
        [
            [0.0, 0.0, 0.0],  # uniform: entropy 1
            [20.0, 0.0, 0.0],  # confident: entropy ~ 0
            [2.0, 1.0, 0.0],  # in between
            [np.nan, 1.0, 0.0],  # broken: entropy 1
        ],
        dtype=np.float32,
    )


def test_threshold_zero_lets_nobody_leave():
    assert not np.asarray(policies.entropy_exit(_mixed_logits(), 0.0)).any()


def test_threshold_one_lets_everybody_leave():
    assert np.asarray(policies.entropy_exit(_mixed_logits(), 1.0)).all()  # the uniform row too


def test_intermediate_threshold_is_a_strict_inequality():
    z = _mixed_logits()[2:3]
    h = np.float32(policies.entropy_from_logits(z)[0])
    assert 0.1 < h < 0.9
    assert not bool(policies.entropy_exit(z, float(h))[0])  # H == tau: stays
    assert bool(policies.entropy_exit(z, float(np.nextafter(h, np.float32(1))))[0])  # H < tau: leaves
    np.testing.assert_array_equal(np.asarray(policies.entropy_exit(_mixed_logits(), 0.5)), [False, True, False, False])


@pytest.mark.parametrize("bad", [-0.1, 1.1, float("nan"), float("inf")])
def test_check_threshold_rejects(bad):
    with pytest.raises(ValueError, match=r"threshold must be a number in \[0, 1\]"):
        policies.check_threshold(bad)


@pytest.mark.parametrize("good", [0, 0.0, 0.25, 1, 1.0, np.float32(0.5)])
def test_check_threshold_accepts(good):
    value = policies.check_threshold(good)
    assert isinstance(value, float) and value == float(good)


# --------------------------------------------------------------------------- leave_mask, first_exit, get_policy


def test_leave_mask_forces_the_last_exit():
    # (N=2, E=3, K=2): every exit uniform, so nobody leaves at tau = 0.5 except at the last exit.
    logits = np.zeros((2, 3, 2), dtype=np.float32)
    logits[1, 1] = [30.0, 0.0]  # sample 1 is confident at exit 2
    mask = policies.leave_mask(logits, 0.5)
    np.testing.assert_array_equal(mask, [[False, False, True], [False, True, True]])
    np.testing.assert_array_equal(policies.leave_mask(logits, 0.0)[:, -1], [True, True])


def test_leave_mask_with_a_custom_rule():
    def max_logit_rule(logits, threshold):
        return np.asarray(logits).max(-1) > threshold

    logits = np.array([[[0.2, 0.1], [0.9, 0.0], [0.0, 0.0]]])
    np.testing.assert_array_equal(policies.leave_mask(logits, 0.5, max_logit_rule), [[False, True, True]])


def test_first_exit():
    mask = np.array([[True, True, True], [False, True, True], [False, False, True], [True, False, True]])
    np.testing.assert_array_equal(policies.first_exit(mask), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="last exit must accept every sample"):
        policies.first_exit(np.array([[True, False], [False, False]]))


def test_get_policy():
    assert policies.get_policy("entropy") is policies.entropy_exit
    with pytest.raises(ValueError, match=r"unknown exit policy 'margin'; choose one of \['entropy', 'max_prob', 'patience'\]"):
        policies.get_policy("margin")
