"""``mc3``: Eq. 1–4 on hand-computed cases, the Table-2 stage plans, and training."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import harken.methods.mc3 as mc3_module
from harken.errors import ConfigError
from harken.methods.base import Batch, Classes, get_method
from harken.methods.mc3 import (
    MC3,
    VARIANTS,
    Stage,
    all_pairs,
    consensus,
    consensus_loss,
    contrastive_loss,
    info_nce,
    ordered_pairs,
    plan_stages,
    scale,
    unscale,
)

from .conftest import ua, with_features

S75 = math.sqrt(0.75)


def _lse(*xs: float) -> float:
    return math.log(sum(math.exp(x) for x in xs))


# --- Eq. 1: InfoNCE, and the sum over ordered pairs ---------------------------------------


def test_info_nce_matches_a_hand_computation():
    e_i = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    e_j = torch.tensor([[0.6, 0.8], [1.0, 0.0]])
    # τ = 0.5: row 0 of e_i·e_jᵀ/τ = [1.2, 2.0] (positive 1.2); row 1 = [1.6, 0.0] (positive 0.0)
    want = -((1.2 - _lse(1.2, 2.0)) + (0.0 - _lse(1.6, 0.0))) / 2
    assert math.isclose(float(info_nce(e_i, e_j, 0.5)), want, rel_tol=1e-6)
    # L_ji normalises over the other modality: columns of the same matrix
    # column 0 = [1.2, 1.6] (positive 1.2), column 1 = [2.0, 0.0] (positive 0.0)
    want_ji = -((1.2 - _lse(1.2, 1.6)) + (0.0 - _lse(2.0, 0.0))) / 2
    assert math.isclose(float(info_nce(e_j, e_i, 0.5)), want_ji, rel_tol=1e-6)


def test_six_ordered_pairs_for_three_modalities():
    pairs = all_pairs(("audio", "video", "text"))
    assert len(pairs) == 6 and len(set(pairs)) == 6
    assert all(i != j for i, j in pairs)
    unordered = (("audio", "video"), ("audio", "text"), ("video", "text"))
    assert sorted(ordered_pairs(unordered)) == sorted(pairs)
    assert ordered_pairs((("audio", "text"),)) == [("audio", "text"), ("text", "audio")]


def test_contrastive_loss_sums_every_ordered_pair():
    g = torch.Generator().manual_seed(0)
    emb = {m: F.normalize(torch.randn(5, 4, generator=g), dim=1) for m in ("a", "v", "l")}
    want = sum(
        float(info_nce(emb[i], emb[j], 0.1))
        for i, j in [("a", "v"), ("v", "a"), ("a", "l"), ("l", "a"), ("v", "l"), ("l", "v")]
    )
    assert math.isclose(float(contrastive_loss(emb, tau=0.1)), want, rel_tol=1e-5)
    two = contrastive_loss(emb, [("a", "l"), ("l", "a")], tau=0.1)
    want_two = float(info_nce(emb["a"], emb["l"], 0.1) + info_nce(emb["l"], emb["a"], 0.1))
    assert math.isclose(float(two), want_two, rel_tol=1e-6)


# --- Eq. 2: scaling and the consensus ------------------------------------------------------


def test_scaling_values_and_inverse():
    x = torch.tensor([-1.0, 0.0, 0.6])
    torch.testing.assert_close(scale(x, 1.0), torch.tensor([0.0, 0.5, 0.8]))
    torch.testing.assert_close(scale(x, 0.5), torch.tensor([0.0, math.sqrt(0.5), math.sqrt(0.8)]))
    torch.testing.assert_close(scale(x, 2.0), torch.tensor([0.0, 0.25, 0.64]))
    torch.testing.assert_close(unscale(torch.tensor([0.5, 0.8]), 0.5), torch.tensor([-0.5, 0.28]))
    grid = torch.linspace(-1, 1, 21)
    for alpha in (0.5, 1.0, 2.0):
        torch.testing.assert_close(unscale(scale(grid, alpha), alpha), grid, atol=1e-5, rtol=0)


def _emb_3x3() -> dict[str, torch.Tensor]:
    """3 samples; anchor = x-axis; cos(text, audio) = [0.6, 0.8, −0.28],
    cos(video, audio) = [0.5, −0.6, 0.0]."""
    audio = torch.tensor([[1.0, 0.0, 0.0]] * 3)
    text = torch.tensor([[0.6, 0.8, 0.0], [0.8, 0.6, 0.0], [-0.28, 0.96, 0.0]])
    video = torch.tensor([[0.5, 0.0, S75], [-0.6, 0.0, 0.8], [0.0, 0.0, 1.0]])
    return {"audio": audio, "text": text, "video": video}


def test_consensus_on_a_hand_computed_3x3_case():
    # K_text(x) = (x+1)/2, K_video(x) = ((x+1)/2)^0.5:
    # sample 0: K_t(0.6) = 0.8,    K_v(0.5) = √0.75 ≈ 0.866 → min text  → c = 0.6
    #           (video's cosine is lower, but α_v = 0.5 lifts its scaled score above text's)
    # sample 1: K_t(0.8) = 0.9,    K_v(−0.6) = √0.2 ≈ 0.447 → min video → c = 2·0.2 − 1 = −0.6
    #           (inverting with text's α would give 2·0.447 − 1 ≈ −0.106)
    # sample 2: K_t(−0.28) = 0.36, K_v(0) = √0.5 ≈ 0.707  → min text  → c = −0.28
    c = consensus(_emb_3x3(), "audio", {"text": 1.0, "video": 0.5})
    torch.testing.assert_close(c, torch.tensor([0.6, -0.6, -0.28]), atol=1e-6, rtol=0)


def test_consensus_is_the_minimum_over_non_anchor_modalities():
    emb = _emb_3x3()
    # equal α: the plain minimum of the anchor cosines
    same = consensus(emb, "audio", {"text": 1.0, "video": 1.0})
    torch.testing.assert_close(same, torch.tensor([0.5, -0.6, -0.28]), atol=1e-6, rtol=0)
    # one non-anchor modality: its own cosine
    only_text = consensus({"audio": emb["audio"], "text": emb["text"]}, "audio", {"text": 0.3})
    torch.testing.assert_close(only_text, torch.tensor([0.6, 0.8, -0.28]), atol=1e-6, rtol=0)
    # another anchor: text, with α_audio = α_video = 1 → min(cos(a, t), cos(v, t))
    # cos(v, t) = [0.3, −0.48, 0.0]
    by_text = consensus(emb, "text", {"audio": 1.0, "video": 1.0})
    torch.testing.assert_close(by_text, torch.tensor([0.3, -0.48, -0.28]), atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="no scaling parameter"):
        consensus(emb, "audio", {"text": 1.0})


def test_consensus_loss_by_hand_and_the_target_takes_no_gradient():
    emb = {m: e.clone().requires_grad_(True) for m, e in _emb_3x3().items()}
    # Σ_i |cos_i − c|: sample 0: 0 + |0.5 − 0.6| = 0.1; sample 1: |0.8 + 0.6| + 0 = 1.4;
    # sample 2: 0 + |0 + 0.28| = 0.28 → mean 1.78 / 3
    loss = consensus_loss(emb, "audio", {"text": 1.0, "video": 0.5})
    assert math.isclose(float(loss.detach()), 1.78 / 3, rel_tol=1e-5)
    assert not consensus(emb, "audio", {"text": 1.0, "video": 0.5}).requires_grad
    loss.backward()
    # the most disagreeing modality of a sample sets the target and is not pulled towards
    # the others: sample 1's video (argmin) and samples 0/2's text get no gradient
    assert torch.all(emb["video"].grad[1] == 0) and torch.any(emb["text"].grad[1] != 0)
    assert torch.all(emb["text"].grad[0] == 0) and torch.any(emb["video"].grad[0] != 0)
    without_stop = consensus(emb, "audio", {"text": 1.0, "video": 0.5}, detach=False)
    assert without_stop.requires_grad


def test_refine_moves_disagreeing_pairs_apart_and_keeps_agreeing_ones():
    """Samples 0–3: A, V, L agree (both cosines 0.7); samples 4–7: V disagrees with A (−0.2).
    Refine steps with the consensus loss (the refine stage of mc3-no-contrastive) pull A·L of
    the disagreeing samples down towards their consensus A·V and leave the agreeing ones."""
    g = torch.Generator().manual_seed(0)
    n, d = 8, 16
    audio = F.normalize(torch.randn(n, d, generator=g), dim=1)

    def at_cosine(cos: torch.Tensor) -> torch.Tensor:
        r = torch.randn(n, d, generator=g)
        r = F.normalize(r - (r * audio).sum(1, keepdim=True) * audio, dim=1)
        return cos[:, None] * audio + (1 - cos[:, None] ** 2).sqrt() * r

    disagree = torch.arange(n) >= 4
    start = {
        "audio": audio,
        "video": at_cosine(torch.where(disagree, -0.2, 0.7)),
        "text": at_cosine(torch.full((n,), 0.7)),
    }
    method = MC3(variant="mc3-no-contrastive")
    refine = method.stages[1]
    assert refine.consensus and not refine.pairs
    params = {m: torch.nn.Parameter(e.clone()) for m, e in start.items()}
    opt = torch.optim.SGD(params.values(), lr=0.05)
    for _ in range(50):
        loss = method.stage_loss(refine, {m: F.normalize(p, dim=1) for m, p in params.items()})
        opt.zero_grad()
        loss.backward()
        opt.step()
    end = {m: F.normalize(p.detach(), dim=1) for m, p in params.items()}

    def cos(e, a, b):
        return (e[a] * e[b]).sum(1)

    al0, al1 = cos(start, "audio", "text"), cos(end, "audio", "text")
    av1 = cos(end, "audio", "video")
    assert torch.all(al1[disagree] < al0[disagree] - 0.3)  # pushed apart towards consensus
    gap0 = (al0 - cos(start, "audio", "video"))[disagree].abs()
    assert torch.all((al1 - av1)[disagree].abs() < 0.6 * gap0)
    # agreeing samples are at consensus already: they stay (within rounding)
    torch.testing.assert_close(al1[~disagree], al0[~disagree], atol=0.02, rtol=0)
    torch.testing.assert_close(av1[~disagree], torch.full((4,), 0.7), atol=0.02, rtol=0)


# --- variants: stage plans ------------------------------------------------------------------


AVL = {"audio", "video", "text"}


def _summary(stages: tuple[Stage, ...]) -> list[tuple]:
    return [
        (sorted("".join(m[0] for m in p) for p in s.pairs), s.consensus, s.frozen, s.epoch_factor)
        for s in stages
    ]


ALL = ["at", "av", "vt"]
PLANS = {
    "mc3": [(ALL, False, (), 1), (ALL, True, (), 1)],
    "clap-style": [(["at"], False, (), 2)],
    "cm-acc-style": [(["av"], False, (), 2)],
    "cmc": [(ALL, False, (), 2)],
    "imagebind-style": [(["vt"], False, (), 1), (["av"], False, ("video",), 1)],
    "mc3-no-consensus": [(ALL, False, (), 1), (ALL, False, (), 1)],
    "mc3-no-contrastive": [(ALL, False, (), 1), ([], True, (), 1)],
    "mc3-no-align": [(ALL, True, (), 2)],
}


@pytest.mark.parametrize("variant", sorted(PLANS))
def test_each_variant_trains_its_pairs_and_stages(variant):
    assert _summary(plan_stages(variant, AVL)) == PLANS[variant]
    method = get_method(variant)
    assert method.config()["variant"] == variant and method.name == variant
    assert _summary(method.stages) == PLANS[variant]
    assert sum(s["epochs"] for s in method.config()["stages"]) == 2 * method.epochs


def test_every_variant_is_registered_and_documented():
    assert set(VARIANTS) == set(PLANS)
    for variant in VARIANTS:  # the docstring's table has a row per variant
        assert f"\n{variant} " in mc3_module.__doc__
    a, b = get_method("cmc").config(), get_method("mc3", variant="cmc").config()
    assert a == b
    with pytest.raises(ConfigError, match="unknown option 'variant'"):
        get_method("cmc", variant="mc3")
    with pytest.raises(ConfigError, match="variant"):
        get_method("mc3", variant="nope")
    with pytest.raises(ConfigError, match="tau"):
        get_method("mc3", tau=0.0)


def test_without_video_pairs_with_video_are_dropped_where_a_pair_is_left():
    at = [(["at"], False, (), 1), (["at"], True, (), 1)]
    assert _summary(plan_stages("mc3", {"audio", "text"})) == at
    assert _summary(plan_stages("mc3-no-contrastive", {"audio", "text"}))[1] == ([], True, (), 1)
    assert get_method("cmc", video=None).features == ("aisfx",)
    for variant in ("cm-acc-style", "imagebind-style"):
        with pytest.raises(ConfigError, match=f"'{variant}' needs video"):
            get_method(variant, video=None)


def test_a_variant_needing_video_refuses_data_without_it(problem):
    method = get_method("imagebind-style", audio="feat", video="frames", epochs=1)
    with pytest.raises(ConfigError, match=r"'imagebind-style' needs video.*no 'frames' feature"):
        method.fit(problem.train, problem.train_classes, None, None, 0)
    # mc3 trains on what is there: audio + class-embedding language
    mc3 = get_method("mc3", audio="feat", video="frames", epochs=1, batch_size=32)
    log = mc3.fit(problem.train, problem.train_classes, None, None, 0)
    assert log["modalities"] == ["audio", "text"]
    assert [s["pairs"] for s in log["stages"]] == [["audio-text"], ["audio-text"]]


# --- training ---------------------------------------------------------------------------


FAST = {"lr": 1e-2, "batch_size": 32, "dim": 16}


def test_mc3_fit_and_score_beat_chance_on_a_separable_problem(av):
    method = get_method("mc3", audio="audio", video="video", epochs=10, **FAST)
    log = method.fit(av.train, av.train_classes, av.dev, av.dev_classes, 0)
    assert [s["name"] for s in log["stages"]] == ["align", "refine"]
    assert [len(s["loss"]) for s in log["stages"]] == [10, 10]
    assert len(log["epoch_seconds"]) == 20 and all(t > 0 for t in log["epoch_seconds"])
    assert log["stages"][0]["loss"][-1] < log["stages"][0]["loss"][0]
    scores = method.score(av.test, av.test_classes)
    assert scores.shape == (len(av.test), len(av.test_classes.names))
    assert ua(method, av.test, av.test_classes) > 0.5  # 8 unseen classes: chance 0.125
    emb = method.embed(av.test)
    assert set(emb) == {"audio", "video"}  # no narration in the batch → no text rows
    for e in emb.values():
        np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1.0, rtol=1e-5)
    # the score is cos(E_a, E_l) / τ
    text = method.model.embed("text", torch.from_numpy(av.test_classes.embeddings)).detach()
    np.testing.assert_allclose(scores, emb["audio"] @ text.numpy().T / 0.05, rtol=1e-4, atol=1e-4)


def test_imagebind_keeps_the_video_head_frozen_in_stage_two(av, monkeypatch):
    options = {"audio": "audio", "video": "video", "epochs": 3, **FAST}
    both = get_method("imagebind-style", **options)
    log = both.fit(av.train, av.train_classes, None, None, 0)
    assert log["stages"][0]["trained"] == ["video", "text"]
    assert log["stages"][1]["trained"] == ["audio"] and log["stages"][1]["frozen"] == ["video"]

    # the same run with no epochs in stage 2 (or in any stage): heads after stage 1 / at init
    def fitted(skip: set[str]) -> MC3:
        train_stage = MC3._train_stage

        def stage_or_skip(self, stage, inputs, gen):
            if stage.name in skip:
                stage = dataclasses.replace(stage, epoch_factor=0)
            return train_stage(self, stage, inputs, gen)

        with monkeypatch.context() as patch:
            patch.setattr(MC3, "_train_stage", stage_or_skip)
            method = get_method("imagebind-style", **options)
            method.fit(av.train, av.train_classes, None, None, 0)
        return method

    after1 = fitted({"audio-vision"}).model.proj
    init = fitted({"vision-language", "audio-vision"}).model.proj
    after2 = both.model.proj
    for part in ("weight", "bias"):
        torch.testing.assert_close(  # video: unchanged by stage 2
            getattr(after2["video"], part), getattr(after1["video"], part), rtol=0, atol=0
        )
        torch.testing.assert_close(  # text: not in stage 2 either
            getattr(after2["text"], part), getattr(after1["text"], part), rtol=0, atol=0
        )
    assert not torch.equal(after1["audio"].weight, after2["audio"].weight)  # trained in 2
    torch.testing.assert_close(after1["audio"].weight, init["audio"].weight, rtol=0, atol=0)
    assert not torch.equal(init["video"].weight, after1["video"].weight)  # trained in 1


def test_same_seed_same_embeddings_and_callers_state_kept(av):
    def trained(seed: int) -> dict[str, np.ndarray]:
        m = get_method("mc3", audio="audio", video="video", epochs=2, **FAST)
        m.fit(av.train, av.train_classes, None, None, seed)
        return m.embed(av.test)

    torch.manual_seed(5)
    before = torch.random.get_rng_state().clone(), torch.get_num_threads()
    a = trained(3)
    assert torch.equal(torch.random.get_rng_state(), before[0])
    assert torch.get_num_threads() == before[1]
    b, c = trained(3), trained(4)
    for m in a:
        np.testing.assert_array_equal(a[m], b[m])
    assert not np.allclose(a["audio"], c["audio"])


def test_without_narration_the_language_is_the_class_embedding_of_each_label(problem):
    rows = [problem.train_classes.names.index(y) for y in problem.train.labels]
    narrated = with_features(problem.train, narration=problem.train_classes.embeddings[rows])
    options = {"audio": "feat", "video": None, "epochs": 3, **FAST}
    plain, told = get_method("clap-style", **options), get_method("clap-style", **options)
    assert plain.fit(problem.train, problem.train_classes, None, None, 1)["language"] == (
        "class embeddings"
    )
    assert told.fit(narrated, problem.train_classes, None, None, 1)["language"] == "narration"
    np.testing.assert_array_equal(
        plain.score(problem.test, problem.test_classes),
        told.score(problem.test, problem.test_classes),
    )
    # narrations that differ from the class embeddings train something else
    other = with_features(problem.train, narration=np.roll(narrated.features["narration"], 1, 0))
    moved = get_method("clap-style", **options)
    moved.fit(other, problem.train_classes, None, None, 1)
    assert not np.allclose(
        moved.score(problem.test, problem.test_classes),
        plain.score(problem.test, problem.test_classes),
    )
    # embed gives text rows for a batch with narrations
    assert set(told.embed(narrated)) == {"audio", "text"}


def test_score_needs_a_language_head(av):
    method = get_method("cm-acc-style", audio="audio", video="video", epochs=1, **FAST)
    method.fit(av.train, av.train_classes, None, None, 0)
    assert set(method.embed(av.test)) == {"audio", "video"}
    with pytest.raises(ConfigError, match="'cm-acc-style' has no language head"):
        method.score(av.test, av.test_classes)
    with pytest.raises(RuntimeError, match="fit"):
        get_method("mc3").score(av.test, av.test_classes)


def test_config_lists_every_setting():
    config = get_method("mc3-no-align", epochs=4).config()
    assert config["variant"] == "mc3-no-align" and config["tau"] == 0.05
    assert config["lr"] == 3e-5 and config["batch_size"] == 256 and config["dim"] == 256
    assert config["alpha_video"] == 0.5 and config["alpha_text"] == 1.0
    assert config["anchor"] == "audio" and config["consensus_weight"] == 1.0
    assert config["stages"] == [
        {
            "name": "refine",
            "pairs": ["audio-video", "audio-text", "video-text"],
            "consensus": True,
            "frozen": [],
            "epochs": 8,
        }
    ]


def test_tiny_batch_classes_object_is_respected():
    # labels are carried as names: reordering the candidate classes reorders the columns
    rng = np.random.default_rng(0)
    train = Batch({"a": rng.normal(size=(12, 4)).astype(np.float32)}, ["x", "y", "z"] * 4)
    classes = Classes(["x", "y", "z"], rng.normal(size=(3, 5)).astype(np.float32))
    m = get_method("clap-style", audio="a", video=None, epochs=1, batch_size=4, dim=4)
    m.fit(train, classes, None, None, 0)
    s = m.score(train, classes)
    s2 = m.score(train, classes.subset(["z", "x", "y"]))
    np.testing.assert_allclose(s2, s[:, [2, 0, 1]], rtol=1e-6)
