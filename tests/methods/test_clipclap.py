"""``clipclap``: Kurzendörfer et al. (2024) §3 — widths, Eq. 3–7 by hand, options, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from harken.errors import ConfigError
from harken.methods.base import Classes, get_method
from harken.methods.clipclap import ClipClap, ClipClapNet, clipclap_losses

from .conftest import reordered, ua, with_features


def _clipclap(**kwargs) -> ClipClap:
    options = {
        "audio": ("audio",),
        "video": ("video",),
        "d_model": 32,
        "d_hidden": 32,
        "d_out": 16,
        "epochs": 12,
        "lr": 1e-2,
        "batch_size": 32,
    }
    return ClipClap(**{**options, **kwargs})


@pytest.fixture(scope="module")
def fitted(av):
    model = _clipclap()
    log = model.fit(av.train, av.train_classes, av.dev, av.dev_classes, seed=0)
    return model, log


# --- architecture ------------------------------------------------------------------------


def _linears(module: torch.nn.Module) -> list[tuple[int, int]]:
    return [
        (m.in_features, m.out_features) for m in module.modules() if isinstance(m, torch.nn.Linear)
    ]


def test_widths_and_parameter_count_match_the_paper():
    # §4.1: d_in_v = 512 (CLIP), d_in_a = 1024 (CLAP), both text embeddings (512 + 1024),
    # d_model = d_hidden = 512, d_out = 64.
    net = ClipClapNet(512 + 1024, 512 + 1024)
    assert _linears(net.o_enc) == [(1536, 512)]
    assert _linears(net.o_proj) == [(512, 512), (512, 64)]
    assert _linears(net.w_enc) == [(1536, 512)]
    assert _linears(net.w_proj) == [(512, 64)]
    assert _linears(net.d_o) == [(64, 512), (512, 512)]
    assert _linears(net.d_w) == [(64, 512)]
    # every layer: Linear → BatchNorm → ReLU → Dropout(0.1)
    for block in [net.o_enc, *net.o_proj, net.w_enc, net.w_proj, *net.d_o, net.d_w]:
        kinds = [type(m).__name__ for m in block]
        assert kinds == ["Linear", "BatchNorm1d", "ReLU", "Dropout"]
        assert block[3].p == 0.1
    n = sum(p.numel() for p in net.parameters())
    # 2 × (787,968 + 263,680 + 32,960 + 34,304): the paper reports "around 2.2 million"
    assert n == 2_237_824
    assert 2.1e6 < n < 2.3e6


# --- the loss (Eq. 4–7) ------------------------------------------------------------------


def test_loss_terms_match_a_hand_computation():
    # With every network the identity: θ_o = ρ_o = x, w = θ_w = text, ρ_w = text.
    net = ClipClapNet(2, 2, 2, 2, 2)
    for name in ("o_enc", "o_proj", "w_enc", "w_proj", "d_o", "d_w"):
        setattr(net, name, torch.nn.Identity())
    x = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    text = torch.eye(2)
    y = torch.tensor([0, 1])
    got = clipclap_losses(net, x, y, text)
    # logits θ_o θ_wᵀ = [[1, 0], [0, 2]]
    ce = -((1 - math.log(math.e + 1)) + (2 - math.log(1 + math.e**2))) / 2
    # ρ_o − w = [[0, 0], [0, 1]]: mean over samples and dims = 1/4; ρ_w − w = 0
    assert float(got["ce"]) == pytest.approx(ce)
    assert float(got["rec"]) == pytest.approx(0.25)
    assert float(got["reg"]) == pytest.approx(0.25)
    assert float(got["total"]) == pytest.approx(ce + 0.5)


def test_loss_terms_match_the_equations_on_a_real_network():
    torch.manual_seed(0)
    net = ClipClapNet(5, 4, d_model=6, d_hidden=7, d_out=3, dropout=0.0).eval()
    x, text = torch.randn(6, 5), torch.randn(3, 4)
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    with torch.no_grad():
        got = clipclap_losses(net, x, y, text)
        theta_o = net.o_proj(net.o_enc(x))
        w = net.w_enc(text)
        theta_w = net.w_proj(w)
        s = theta_o @ theta_w.T
        ce = np.mean([float(torch.logsumexp(s[i], 0) - s[i, y[i]]) for i in range(6)])
        rho_o, rho_w = net.d_o(theta_o), net.d_w(theta_w[y])
        rec = float(((rho_o - w[y]) ** 2).sum() + ((rho_w - w[y]) ** 2).sum()) / (6 * 6)
        reg = float(((theta_o - theta_w[y]) ** 2).sum()) / (6 * 3)
    assert float(got["ce"]) == pytest.approx(ce, rel=1e-5)
    assert float(got["rec"]) == pytest.approx(rec, rel=1e-5)
    assert float(got["reg"]) == pytest.approx(reg, rel=1e-5)


def test_regression_loss_trains_both_branches():
    torch.manual_seed(0)
    net = ClipClapNet(5, 4, d_model=6, d_hidden=7, d_out=3, dropout=0.0)
    loss = clipclap_losses(net, torch.randn(8, 5), torch.tensor([0, 1] * 4), torch.randn(2, 4))
    loss["reg"].backward()
    assert net.o_enc[0].weight.grad.abs().sum() > 0
    assert net.w_enc[0].weight.grad.abs().sum() > 0  # θ_w_i is not a detached target


# --- scoring -----------------------------------------------------------------------------


def test_scores_are_negative_distances_to_the_class_embeddings(fitted, av):
    model, _ = fitted
    scores = model.score(av.test, av.test_classes)
    assert scores.shape == (len(av.test), len(av.test_classes.names))
    with torch.no_grad():
        theta_o = model.model.embed_clips(model._inputs(av.test)).numpy()
        text = np.concatenate([av.test_classes.view("clip"), av.test_classes.view("clap")], 1)
        theta_w = model.model.embed_classes(torch.from_numpy(text))[1].numpy()
    dist = np.linalg.norm(theta_o[:, None] - theta_w[None], axis=2)
    np.testing.assert_allclose(scores, -dist, rtol=1e-5, atol=1e-5)
    predicted = [av.test_classes.names[i] for i in dist.argmin(axis=1)]
    assert model.predict(av.test, av.test_classes) == predicted


def test_learns_seen_classes_and_transfers_to_unseen_ones(fitted, av):
    model, log = fitted
    assert log["text"] == "both" and "text_fallback" not in log
    assert 1 <= log["best_epoch"] <= 12
    assert log["dev_score"] == pytest.approx(ua(model, av.dev, av.dev_classes))
    assert ua(model, av.train, av.train_classes) > 0.8
    assert ua(model, av.test, av.test_classes) > 0.4  # 8 unseen classes: chance 0.125


def test_candidate_order_permutes_the_score_columns(fitted, av):
    model, _ = fitted
    base = model.score(av.test, av.test_classes)
    for seed in range(3):
        shuffled = reordered(av.test_classes, seed)
        index = [av.test_classes.names.index(n) for n in shuffled.names]
        np.testing.assert_allclose(model.score(av.test, shuffled), base[:, index], rtol=1e-5)


def test_scores_any_class_list(fitted, av):
    model, _ = fitted
    names = av.train_classes.names[:3] + av.test_classes.names
    union = Classes(
        names,
        np.concatenate([av.train_classes.embeddings[:3], av.test_classes.embeddings]),
        {
            v: np.concatenate([av.train_classes.view(v)[:3], av.test_classes.view(v)])
            for v in ("clip", "clap")
        },
    )
    scores = model.score(av.test, union)
    assert scores.shape == (len(av.test), 11)
    np.testing.assert_allclose(scores[:, 3:], model.score(av.test, av.test_classes), rtol=1e-5)


# --- options -----------------------------------------------------------------------------


def test_text_options_choose_the_label_embeddings(av):
    widths = {}
    for text in ("clip", "clap", "both", "default"):
        model = _clipclap(text=text, epochs=1)
        log = model.fit(av.train, av.train_classes, None, None)
        assert log["text"] == text
        widths[text] = model.model.w_enc[0].in_features
        assert model.score(av.test, av.test_classes).shape == (48, 8)
    assert widths == {"clip": 6, "clap": 5, "both": 11, "default": 7}
    model = _clipclap(text="both", epochs=1)
    model.fit(av.train, av.train_classes, None, None)
    both = model._class_text(av.test_classes).numpy()
    # Eq. 2: concat(w^v, w^a) — CLIP first
    np.testing.assert_array_equal(both[:, :6], av.test_classes.view("clip"))
    np.testing.assert_array_equal(both[:, 6:], av.test_classes.view("clap"))


def test_auto_text_follows_the_modality_and_falls_back_to_the_default(av):
    for modality, expected in (("both", "both"), ("audio", "clap"), ("video", "clip")):
        assert _clipclap(modality=modality)._resolve_text(av.train_classes) == (expected, None)
    plain = Classes(av.train_classes.names, av.train_classes.embeddings)
    text, why = _clipclap()._resolve_text(plain)
    assert text == "default" and "clip" in why
    log = _clipclap(epochs=1).fit(av.train, plain, None, None)
    assert log["text"] == "default" and "text_fallback" in log
    with pytest.raises(ConfigError, match="clip"):
        _clipclap(text="clip", epochs=1).fit(av.train, plain, None, None)


def test_a_single_modality_ignores_the_other(av):
    zero_video = with_features(av.test, video=np.zeros_like(av.test.features["video"]))
    zero_audio = with_features(av.test, audio=np.zeros_like(av.test.features["audio"]))
    audio = _clipclap(modality="audio", epochs=2)
    assert audio.features == ("audio",)
    audio.fit(av.train, av.train_classes, None, None)
    assert audio.model.o_enc[0].in_features == 8 and audio.model.w_enc[0].in_features == 5
    np.testing.assert_array_equal(
        audio.score(zero_video, av.test_classes), audio.score(av.test, av.test_classes)
    )
    video = _clipclap(modality="video", epochs=2)
    assert video.features == ("video",)
    video.fit(av.train, av.train_classes, None, None)
    assert video.model.o_enc[0].in_features == 10 and video.model.w_enc[0].in_features == 6
    np.testing.assert_array_equal(
        video.score(zero_audio, av.test_classes), video.score(av.test, av.test_classes)
    )


def test_both_modalities_read_video_then_audio(fitted, av):
    model, _ = fitted
    assert model.features == ("video", "audio")
    zero_audio = with_features(av.test, audio=np.zeros_like(av.test.features["audio"]))
    assert not np.allclose(
        model.score(zero_audio, av.test_classes), model.score(av.test, av.test_classes)
    )


def test_inputs_are_raw_unless_standardised(fitted, av):
    model, _ = fitted
    x = np.concatenate([av.test.features["video"], av.test.features["audio"]], axis=1)
    np.testing.assert_array_equal(model._inputs(av.test).numpy(), x)
    scaled = _clipclap(standardize=True, epochs=1)
    scaled.fit(av.train, av.train_classes, None, None)
    train_x = np.concatenate([av.train.features["video"], av.train.features["audio"]], axis=1)
    np.testing.assert_allclose(scaled._mean, train_x.mean(axis=0), rtol=1e-5)


def test_invalid_options_are_refused():
    with pytest.raises(ConfigError, match="modality"):
        ClipClap(modality="speech")
    with pytest.raises(ConfigError, match="text"):
        ClipClap(text="w2v")
    with pytest.raises(ConfigError, match="audio"):
        ClipClap(modality="audio", audio=())


# --- the training contract ---------------------------------------------------------------


def test_fit_is_deterministic_for_a_seed(av):
    scores = []
    for seed in (0, 0, 1):
        model = _clipclap(epochs=2)
        model.fit(av.train, av.train_classes, None, None, seed=seed)
        scores.append(model.score(av.test, av.test_classes))
    np.testing.assert_array_equal(scores[0], scores[1])
    assert not np.allclose(scores[0], scores[2])


def test_a_protocol_criterion_ranks_the_epochs(av):
    model = _clipclap(epochs=3)
    calls = []

    def criterion(scores, labels, names):
        calls.append((scores.shape, tuple(names)))
        return -len(calls)

    model.criterion = criterion
    log = model.fit(av.train, av.train_classes, av.dev, av.dev_classes)
    assert log["best_epoch"] == 1 and log["dev_score"] == -1
    assert calls == [((len(av.dev), 16), tuple(av.dev_classes.names))] * 3


def test_replay_retrains_the_logged_schedule(av):
    model = _clipclap(epochs=20)
    model.replay({"best_epoch": 3, "lr_drops": [1, 5]})
    c = model.train_config
    assert (c.epochs, c.lr_drops, c.plateau_patience) == (3, (1,), None)
    log = model.fit(av.train, av.train_classes, None, None)
    assert log["best_epoch"] == 3 and log["lr_drops"] == [1] and log["dev_score"] is None


def test_defaults_are_the_papers_and_the_method_is_registered():
    model = get_method("clipclap")
    assert isinstance(model, ClipClap) and model.trainable
    c = model.config()
    assert (c["d_model"], c["d_hidden"], c["d_out"], c["dropout"]) == (512, 512, 64, 0.1)
    assert (c["lr"], c["weight_decay"], c["betas"], c["batch_size"]) == (
        7e-5,
        1e-5,
        [0.9, 0.999],
        64,
    )
    assert (c["epochs"], c["plateau_patience"]) == (20, 3)
    assert model.features == ("clip-image", "clap")


def test_score_before_fit_raises(av):
    with pytest.raises(RuntimeError, match="fit"):
        _clipclap().score(av.test, av.test_classes)
