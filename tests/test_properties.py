"""Property tests (hypothesis) of the exit rule, the threshold sweep and the early-exit engine."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from helpers.evaluation import evaluate_threshold
from helpers.inference import EarlyExitEngine
from helpers.policies import entropy_from_logits, first_exit, leave_mask, normalized_entropy

finite = st.floats(-30, 30, allow_nan=False, allow_infinity=False, width=32)
probability_rows = arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(2, 12)),
                          elements=st.floats(0, 1, allow_nan=False))


@st.composite
def exit_logits(draw):
    """Logits ``(N, E, K)`` of a multi-exit model and labels ``(N,)``."""
    n, e, k = draw(st.integers(1, 12)), draw(st.integers(1, 5)), draw(st.integers(2, 6))
    logits = draw(arrays(np.float32, (n, e, k), elements=finite))
    labels = draw(arrays(np.int64, (n,), elements=st.integers(0, k - 1)))
    return logits, labels


@settings(max_examples=60, deadline=None)
@given(probability_rows)
def test_normalised_entropy_lies_in_unit_interval(raw):
    raw = raw + 1e-12 * (raw.sum(axis=1, keepdims=True) == 0)  # avoid all-zero rows
    p = raw / raw.sum(axis=1, keepdims=True)
    h = np.asarray(normalized_entropy(p))
    assert np.all((h >= 0) & (h <= 1))
    one_hot = p.max(axis=1) == 1
    np.testing.assert_allclose(h[one_hot], 0, atol=1e-6)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 200))
def test_normalised_entropy_is_one_exactly_for_uniform(k):
    assert float(normalized_entropy(np.full((1, k), 1.0 / k))[0]) == 1.0
    assert float(entropy_from_logits(np.zeros((1, k)))[0]) == 1.0


@settings(max_examples=60, deadline=None)
@given(exit_logits(), st.floats(0, 1), st.floats(0, 1))
def test_raising_the_threshold_never_moves_a_sample_later(data, t1, t2):
    logits, _ = data
    low, high = sorted((t1, t2))
    exit_low = first_exit(leave_mask(logits, low))
    exit_high = first_exit(leave_mask(logits, high))
    assert np.all(exit_high <= exit_low)


@settings(max_examples=60, deadline=None)
@given(exit_logits(), st.lists(st.floats(0, 1), min_size=2, max_size=6))
def test_mean_cost_is_monotone_in_the_threshold(data, thresholds):
    logits, labels = data
    e = logits.shape[1]
    costs = np.cumsum(np.linspace(0.2, 1.0, e))  # reaching a later exit always costs more
    means = [evaluate_threshold(logits, labels, costs, t)["relative_cost"] for t in sorted(thresholds)]
    assert all(b <= a + 1e-12 for a, b in zip(means, means[1:], strict=False))


@pytest.fixture(scope="module")
def engine_and_model(spread_model):
    model = spread_model(num_classes=3)
    return EarlyExitEngine(model), model


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 40), st.floats(0, 1), st.integers(0, 2**31 - 1))
def test_engine_agrees_with_evaluate_all_then_pick(engine_and_model, n, threshold, seed):
    engine, model = engine_and_model
    rng = np.random.default_rng(seed)
    # half noise, half flat colours: the exits disagree about both
    images = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    images[: n // 2] = rng.integers(0, 256, size=(n // 2, 1, 1, 3), dtype=np.uint8)
    # the reference evaluates every exit of the network the engine runs (batch norms folded)
    logits = np.stack([np.asarray(o) for o in engine.model(images, training=False)], axis=1)
    expected = first_exit(leave_mask(logits, threshold))
    got = engine.predict(images, threshold)
    np.testing.assert_array_equal(got["exit"], expected + 1)  # the engine's exits are 1-based
    np.testing.assert_array_equal(got["label"], logits[np.arange(n), expected].argmax(-1))
