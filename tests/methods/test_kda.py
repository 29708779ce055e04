"""``kda``: Chen et al. (2024) Eq. 2–9 on worked examples; the model on a synthetic task."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from harken.errors import ConfigError
from harken.methods.base import Classes, get_method
from harken.methods.kda import (
    KDA,
    adaptive_margins,
    alignment_loss,
    class_moments,
    kaml_loss,
    psd_sqrt,
    w2_gaussian_approx,
    w2_gaussian_exact,
)

from .conftest import reordered, ua, with_features


def _t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def _rotation(deg: float) -> torch.Tensor:
    r = math.radians(deg)
    return _t([math.cos(r), -math.sin(r)], [math.sin(r), math.cos(r)])


# --- the 2-Wasserstein distance (Eq. 2–4) ------------------------------------------------


def test_diagonal_gaussians_the_approximation_is_exact():
    # ‖μ₁ − μ₂‖² = 3² + 4² = 25; ‖δ₁^½ − δ₂^½‖² = (1 − 2)² + (2 − 3)² = 2
    mu1, var1, mu2, var2 = _t(0, 0), _t(1, 4), _t(3, 4), _t(4, 9)
    assert float(w2_gaussian_approx(mu1, var1, mu2, var2)) == pytest.approx(math.sqrt(27))
    assert w2_gaussian_exact(mu1, var1, mu2, var2) == pytest.approx(math.sqrt(27))
    # the same Gaussians with their covariances as matrices
    full = w2_gaussian_approx(mu1, torch.diag(var1), mu2, torch.diag(var2))
    assert float(full) == pytest.approx(math.sqrt(27))


def test_commuting_covariances_the_approximation_is_exact():
    # Σ₁ = R diag(1, 4) Rᵀ, Σ₂ = R diag(9, 16) Rᵀ share eigenvectors: Σ^½ = R diag(√λ) Rᵀ,
    # ‖Σ₁^½ − Σ₂^½‖_F² = (1 − 3)² + (2 − 4)² = 8, equal means
    r = _rotation(30)
    c1, c2 = r @ torch.diag(_t(1, 4)) @ r.T, r @ torch.diag(_t(9, 16)) @ r.T
    mu = _t(1, -1)
    assert float(w2_gaussian_approx(mu, c1, mu, c2)) == pytest.approx(math.sqrt(8))
    assert w2_gaussian_exact(mu, c1, mu, c2) == pytest.approx(math.sqrt(8))


def test_non_commuting_covariances_the_approximation_bounds_the_exact_distance():
    # Σ₁ = projection onto x, Σ₂ = projection onto (1, 1)/√2: each is its own square root.
    # Approximation: ‖P₁ − P₂‖_F² = 4 × ½² = 1.
    # Exact: P₁P₂P₁ = ½P₁, so tr(P₁ + P₂ − 2(½P₁)^½) = 2 − 2/√2 = 2 − √2.
    p1, p2 = _t([1, 0], [0, 0]), _t([0.5, 0.5], [0.5, 0.5])
    mu = _t(0, 0)
    approx = float(w2_gaussian_approx(mu, p1, mu, p2))
    exact = w2_gaussian_exact(mu, p1, mu, p2)
    assert approx == pytest.approx(1.0)
    assert exact == pytest.approx(math.sqrt(2 - math.sqrt(2)))
    assert approx >= exact >= 0
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.normal(size=(2, 4, 4))
        c1, c2 = a @ a.T, b @ b.T
        m1, m2 = rng.normal(size=(2, 4))
        approx = float(w2_gaussian_approx(*(torch.from_numpy(v) for v in (m1, c1, m2, c2))))
        exact = w2_gaussian_exact(m1, c1, m2, c2)
        assert approx >= exact - 1e-9 and exact >= 0


def test_identical_gaussians_are_at_distance_zero():
    mu, cov = _t(1, 2), _t([2, 1], [1, 3])
    assert float(w2_gaussian_approx(mu, cov, mu, cov)) == pytest.approx(0, abs=1e-7)
    assert w2_gaussian_exact(mu, cov, mu, cov) == pytest.approx(0, abs=1e-7)
    assert float(w2_gaussian_approx(mu, _t(1, 2), mu, _t(1, 2))) == 0.0


def test_exact_distance_agrees_with_scipy_sqrtm():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 3, 3))
    c1, c2 = a @ a.T + np.eye(3), b @ b.T + np.eye(3)
    r1 = np.real(scipy.linalg.sqrtm(c1))
    expected = np.trace(c1 + c2 - 2 * np.real(scipy.linalg.sqrtm(r1 @ c2 @ r1)))
    assert w2_gaussian_exact(np.zeros(3), c1, np.zeros(3), c2) == pytest.approx(math.sqrt(expected))


def test_matrix_square_root_and_its_gradient():
    a = _t([4, 1, 0], [1, 3, 0.5], [0, 0.5, 2])
    root = psd_sqrt(a)
    torch.testing.assert_close(root @ root, a)
    torch.testing.assert_close(root, torch.from_numpy(np.real(scipy.linalg.sqrtm(a.numpy()))))
    assert torch.autograd.gradcheck(psd_sqrt, (a.clone().requires_grad_(),))
    # negative eigenvalues (round-off of a PSD matrix) are clamped at 0
    torch.testing.assert_close(psd_sqrt(_t([1, 0], [0, -1e-9])), _t([1, 0], [0, 0]))


# --- the alignment loss (Eq. 4 on batch moments) -----------------------------------------


def test_alignment_loss_on_a_hand_example():
    # ρ_av: mean (1, 0), biased variances (1, 0); ρ_t: one point (1, 1), no spread.
    # ‖Δμ‖² = 1, ‖Σ_av^½ − 0‖_F² = 1 ⇒ √2 (full and diagonal alike: Σ_av is diagonal)
    rho_av = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    rho_t = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
    for covariance in ("full", "diagonal"):
        assert float(alignment_loss(rho_av, rho_t, covariance)) == pytest.approx(math.sqrt(2))
        assert float(alignment_loss(rho_av, rho_av, covariance)) == 0.0
    with pytest.raises(ConfigError):
        alignment_loss(rho_av, rho_t, "spherical")


def test_alignment_loss_has_finite_gradients_on_degenerate_batches():
    # a batch of 8 clips of 2 classes: the ρ_t covariance has rank 1 in 4 dimensions
    torch.manual_seed(0)
    rho_av = torch.randn(8, 4, requires_grad=True)
    rho_t = torch.randn(2, 4)[torch.tensor([0, 1] * 4)].requires_grad_()
    for covariance in ("full", "diagonal"):
        loss = alignment_loss(rho_av, rho_t, covariance)
        g_av, g_t = torch.autograd.grad(loss, (rho_av, rho_t))
        assert torch.isfinite(g_av).all() and torch.isfinite(g_t).all()
        assert g_av.abs().sum() > 0 and g_t.abs().sum() > 0
    # one class only, identical rows: zero covariance on one side
    same = torch.ones(4, 3, requires_grad=True)
    g = torch.autograd.grad(alignment_loss(torch.randn(4, 3), same), same)[0]
    assert torch.isfinite(g).all()


def test_alignment_gradient_matches_finite_differences():
    torch.manual_seed(1)
    rho_av = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    rho_t = torch.randn(6, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(alignment_loss, (rho_av, rho_t))


# --- adaptive margins (Eq. 6) and the margin loss (Eq. 7) --------------------------------


def test_adaptive_margins_on_three_classes():
    mu = _t([0, 0], [3, 4], [0, 1])
    var = _t([1, 1], [4, 1], [1, 1])
    # 0–1: ‖Δμ‖² = 25, ‖Δδ^½‖² = (1 − 2)² = 1 ⇒ √26
    # 0–2: 1 + 0 ⇒ 1;  1–2: 9 + 9 + (2 − 1)² = 19 ⇒ √19
    m = adaptive_margins(mu, var, alpha=2.0, beta=0.5)
    expected = [
        [0.5, 2 * math.sqrt(26) + 0.5, 2.5],
        [2 * math.sqrt(26) + 0.5, 0.5, 2 * math.sqrt(19) + 0.5],
        [2.5, 2 * math.sqrt(19) + 0.5, 0.5],
    ]
    np.testing.assert_allclose(m.numpy(), expected, rtol=1e-6)
    # each margin is α·W2 + β between the classes' diagonal Gaussians
    w2 = w2_gaussian_exact(mu[0], var[0], mu[1], var[1])
    assert float(m[0, 1]) == pytest.approx(2 * w2 + 0.5)


def test_margin_loss_without_margins_is_cross_entropy():
    torch.manual_seed(0)
    logits, y = torch.randn(5, 4), torch.tensor([0, 3, 1, 1, 2])
    torch.testing.assert_close(kaml_loss(logits, y, torch.zeros(4, 4)), F.cross_entropy(logits, y))


def test_margin_loss_on_a_two_class_example():
    logits, y = torch.tensor([[2.0, 1.0]]), torch.tensor([0])
    margins = torch.tensor([[7.0, 0.5], [0.5, 7.0]])  # the diagonal is never used
    # −log(e² / (e² + e^{1 + 0.5})) = log(1 + e^{−0.5})
    assert float(kaml_loss(logits, y, margins)) == pytest.approx(math.log(1 + math.exp(-0.5)))
    losses = [
        float(kaml_loss(logits, y, torch.tensor([[0.0, m], [m, 0.0]]))) for m in (0, 0.5, 1, 2)
    ]
    assert losses == sorted(losses) and losses[0] < losses[-1]
    assert losses[0] == pytest.approx(math.log(1 + math.exp(-1)))


def test_margin_rows_belong_to_the_true_class():
    logits = torch.zeros(2, 3)
    y = torch.tensor([0, 2])
    margins = torch.tensor([[0.0, 1.0, 1.0], [5.0, 0.0, 5.0], [2.0, 2.0, 0.0]])
    # row 0: −log(1/(1 + 2e)), row 2: −log(1/(1 + 2e²))
    expected = (math.log(1 + 2 * math.e) + math.log(1 + 2 * math.e**2)) / 2
    assert float(kaml_loss(logits, y, margins)) == pytest.approx(expected)


def test_class_moments():
    rho = torch.tensor([[0.0, 2.0], [2.0, 2.0], [5.0, 1.0]])
    mu, var = class_moments(rho, torch.tensor([0, 0, 1]), 2)
    torch.testing.assert_close(mu, torch.tensor([[1.0, 2.0], [5.0, 1.0]]))
    torch.testing.assert_close(var, torch.tensor([[1.0, 0.0], [0.0, 0.0]]))


# --- the method --------------------------------------------------------------------------


def _kda(**kwargs) -> KDA:
    options = {
        "audio": ("audio",),
        "video": ("video",),
        "d_model": 32,
        "dim": 16,
        "heads": 2,
        "epochs": 10,
        "lr": 1e-2,
        "batch_size": 32,
    }
    return KDA(**{**options, **kwargs})


@pytest.fixture(scope="module")
def fitted(av):
    model = _kda()
    log = model.fit(av.train, av.train_classes, av.dev, av.dev_classes, seed=0)
    return model, log


def test_learns_seen_classes_and_transfers_to_unseen_ones(fitted, av):
    model, log = fitted
    assert log["distribution"].startswith("members['llm']")
    assert log["dev_score"] == pytest.approx(ua(model, av.dev, av.dev_classes))
    assert ua(model, av.train, av.train_classes) > 0.7
    assert ua(model, av.test, av.test_classes) > 0.4  # 8 unseen classes: chance 0.125


def test_scores_are_negative_distances_in_the_common_space(fitted, av):
    model, _ = fitted
    with torch.no_grad():
        rho_av = model.model.embed_clips(model._inputs(av.test)).numpy()
        rho_t = model.model.embed_knowledge(torch.from_numpy(av.test_classes.embeddings)).numpy()
    dist = np.linalg.norm(rho_av[:, None] - rho_t[None], axis=2)
    np.testing.assert_allclose(model.score(av.test, av.test_classes), -dist, rtol=1e-5, atol=1e-5)


def test_candidate_order_permutes_the_score_columns(fitted, av):
    model, _ = fitted
    base = model.score(av.test, av.test_classes)
    for seed in range(3):
        shuffled = reordered(av.test_classes, seed)
        index = [av.test_classes.names.index(n) for n in shuffled.names]
        np.testing.assert_allclose(model.score(av.test, shuffled), base[:, index], rtol=1e-5)


def test_fit_is_deterministic_for_a_seed(av):
    scores = []
    for seed in (0, 0, 1):
        model = _kda(epochs=2)
        model.fit(av.train, av.train_classes, None, None, seed=seed)
        scores.append(model.score(av.test, av.test_classes))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert not np.allclose(scores[0], scores[2])


def test_single_modalities_drop_the_cross_attention(av):
    zero = {k: np.zeros_like(v) for k, v in av.test.features.items()}
    for modality, unused in (("audio", "video"), ("video", "audio")):
        model = _kda(modality=modality, epochs=2)
        assert model.features == (modality,)
        model.fit(av.train, av.train_classes, None, None)
        assert not model.model.cross and not hasattr(model.model, "a_from_v")
        assert model.model.e_av.in_features == 32
        blank = with_features(av.test, **{unused: zero[unused]})
        np.testing.assert_array_equal(
            model.score(blank, av.test_classes), model.score(av.test, av.test_classes)
        )


def test_both_modalities_attend_across(fitted):
    model, _ = fitted
    net = model.model
    assert model.features == ("video", "audio")
    assert net.cross and net.e_av.in_features == 64
    assert isinstance(net.a_from_v, torch.nn.MultiheadAttention)


def test_margins_come_from_the_description_distributions_and_are_detached(fitted, av):
    model, _ = fitted
    t = model._knowledge(av.train_classes)
    rows, owner, source = model._distribution(av.train_classes, t.shape[1])
    assert rows.shape == (3 * 40, 7) and source.startswith("members['llm']")
    margins = model._margins(model.model, t, rows, owner)
    assert margins.shape == (40, 40) and not margins.requires_grad
    single = Classes(av.train_classes.names, av.train_classes.embeddings)
    assert model._distribution(single, 7)[0] is None
    point = model._margins(model.model, t, None, None)
    with torch.no_grad():
        rho_t = model.model.embed_knowledge(t)
    np.testing.assert_allclose(
        point.numpy(),
        torch.cdist(rho_t, rho_t, compute_mode="donot_use_mm_for_euclid_dist").numpy(),
        atol=1e-4,
    )


def test_knowledge_without_descriptions_trains_on_point_distributions(av):
    plain = Classes(av.train_classes.names, av.train_classes.embeddings)
    log = _kda(epochs=1, covariance="diagonal").fit(av.train, plain, None, None)
    assert log["distribution"].startswith("single point")
    with pytest.raises(ConfigError, match="clip"):
        _kda(knowledge="clip", epochs=1).fit(av.train, plain, None, None)


def test_a_knowledge_view_replaces_the_default_embeddings(av):
    model = _kda(knowledge="clip", epochs=1)
    log = model.fit(av.train, av.train_classes, None, None)
    assert log["knowledge"] == "clip" and log["distribution"].startswith("single point")
    assert model.model.e_t.in_features == 6
    assert model.score(av.test, av.test_classes).shape == (48, 8)


def test_replay_and_defaults():
    model = get_method("kda")
    assert isinstance(model, KDA) and model.trainable
    c = model.config()
    assert (c["lr"], c["betas"], c["batch_size"], c["plateau_patience"]) == (
        1e-3,
        [0.5, 0.999],
        2048,
        3,
    )
    assert (c["enc_dropout"], c["proj_dropout"], c["align_weight"]) == (0.2, 0.3, 1.0)
    assert (c["dim"], c["covariance"], c["alpha"], c["beta"]) == (300, "full", 1.0, 0.0)
    model.replay({"best_epoch": 4, "lr_drops": [2, 9]})
    assert (model.train_config.epochs, model.train_config.lr_drops) == (4, (2,))
    with pytest.raises(ConfigError, match="covariance"):
        KDA(covariance="spherical")


def test_score_before_fit_raises(av):
    with pytest.raises(RuntimeError, match="fit"):
        _kda().score(av.test, av.test_classes)
