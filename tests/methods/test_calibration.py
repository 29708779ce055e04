"""Temperature scaling: exact small cases, the packaged bridge calibration."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from harken.errors import ConfigError
from harken.methods.calibration import (
    BRIDGE_CALIBRATION,
    expected_calibration_error,
    fit_temperature,
    fitted_logit_scale,
    negative_log_likelihood,
    softmax_probabilities,
)
from harken.methods.joint import BridgeSpace


def test_fit_recovers_the_temperature_the_labels_were_drawn_with():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(20000, 5))
    true_t = 0.4
    p = softmax_probabilities(scores, 1 / true_t)
    targets = np.array([rng.choice(5, p=row) for row in p])
    assert fit_temperature(scores, targets) == pytest.approx(true_t, rel=0.03)


def test_fit_is_the_nll_minimum_on_a_two_class_case():
    # Three rows s = (1, 0), targets 0, 1, 0: N·L(β) = 3 log(1 + e^β) − 2β, so
    # L'(β) = 0 at σ(β) = 2/3 → β = log 2, T = 1 / log 2.
    scores = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    targets = [0, 1, 0]
    t = fit_temperature(scores, targets)
    assert t == pytest.approx(1 / math.log(2), rel=1e-8)
    best = negative_log_likelihood(scores, targets, 1 / t)
    for beta in (0.5 / t, 2 / t):
        assert negative_log_likelihood(scores, targets, beta) > best


def test_masked_candidates_are_left_out():
    scores = np.array([[2.0, 0.0, 100.0], [0.0, 1.0, -5.0]])
    mask = np.array([[True, True, False], [True, True, True]])
    p = softmax_probabilities(scores, 1.0, mask)
    np.testing.assert_allclose(p[0], [math.e**2 / (math.e**2 + 1), 1 / (math.e**2 + 1), 0.0])
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    with pytest.raises(ConfigError, match="candidates"):
        negative_log_likelihood(scores, [2, 0], 1.0, mask)


def test_perfectly_separated_scores_have_no_temperature():
    with pytest.raises(ConfigError, match="separate perfectly"):
        fit_temperature(np.array([[1.0, 0.0], [0.0, 1.0]]), [0, 1])
    with pytest.raises(ConfigError, match="do not vary"):
        fit_temperature(np.zeros((2, 3)), [0, 1])


def test_ece_against_a_hand_computation():
    # Confidences 0.9 (right), 0.8 (wrong), 0.4 (right), 0.35 (wrong); 2 bins (0, .5], (.5, 1]:
    # high bin: acc 1/2, conf 0.85 → |0.5 − 0.85| = 0.35; low bin: acc 1/2, conf 0.375 → 0.125.
    # ECE = 2/4 · 0.35 + 2/4 · 0.125 = 0.2375.
    probs = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.0], [0.3, 0.3, 0.4], [0.35, 0.33, 0.32]])
    targets = [0, 1, 2, 1]
    assert expected_calibration_error(probs, targets, n_bins=2) == pytest.approx(0.2375)
    assert expected_calibration_error(np.array([[1.0, 0.0]]), [0], n_bins=10) == 0.0


def test_logit_scale_only_for_the_fitted_configuration(tmp_path):
    key = {"space": "bridge", "top_t": 50}
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"space": key, "temperature": 0.05}))
    assert fitted_logit_scale(key, path) == pytest.approx(20.0)
    assert fitted_logit_scale({**key, "top_t": 10}, path) is None
    assert fitted_logit_scale(key, tmp_path / "missing.json") is None


def _predict_options() -> dict:
    from harken.api import _model_settings

    return _model_settings(None)["space_options"]


def test_packaged_calibration_matches_predicts_bridge():
    fitted = json.loads(BRIDGE_CALIBRATION.read_text())
    space = BridgeSpace(**_predict_options())
    assert fitted["space"] == space.calibration_key()
    assert space.logit_scale == pytest.approx(1 / fitted["temperature"])
    assert space.config()["logit_scale"] == space.logit_scale
    for field in ("data", "date", "nll", "ece", "av_mini"):
        assert field in fitted
    assert fitted["nll"]["after"] <= fitted["nll"]["before"]


@pytest.mark.parametrize(
    "options",
    [{"top_t": 10}, {"sim_threshold": 0.3}, {"sim_power": 1.0}, {"text": "use"}],
)
def test_other_bridge_configurations_are_not_calibrated(options):
    assert BridgeSpace(**{**_predict_options(), **options}).logit_scale is None
    assert BridgeSpace().logit_scale is None  # the plain-name bridge of index/search
