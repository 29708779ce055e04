"""``harken.classify``: the classifier that stays loaded, every input kind it takes (files,
folders, lists, numpy arrays), array == file rankings on real Kitchen20 audio, shape refusals,
``top_k``, ``score_kind`` and the results' conversions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from harken import api
from harken.classify import (
    Classifier,
    LabelScore,
    Prediction,
    Predictions,
    as_inputs,
    check_device,
    device_block,
    mono,
    score_kind,
)
from harken.data.audio import resample
from harken.errors import AudioError, ConfigError, DataError
from harken.methods.joint import BridgeSpace

LABELS = ["blender", "chopping", "water flowing", "sweep"]


@pytest.fixture(scope="module")
def k20(shared_data) -> Path:
    return shared_data / "kitchen20" / "audio"


@pytest.fixture(scope="module")
def blender(k20) -> Path:
    return k20 / "blender" / "0-158737-A-0.flac"


@pytest.fixture(scope="module")
def clf() -> Classifier:
    return Classifier(LABELS)


def _ranking(p: Prediction) -> list[tuple[str, float]]:
    return [(r.label, r.score) for r in p.ranking]


# --- input kinds --------------------------------------------------------------------------------


def test_a_single_path_gives_one_result_and_a_list_gives_a_list(clf, blender, k20):
    one = clf(str(blender))
    assert isinstance(one, Prediction)
    assert one.file == str(blender) and one.label == "blender"
    assert one.ranking[0].label == "blender" and len(one.ranking) == len(LABELS)
    assert clf(blender) == one  # a Path is the same input
    water = sorted((k20 / "water-flowing").glob("*.flac"))[0]
    both = clf([blender, water])
    assert isinstance(both, Predictions) and both.skipped == []
    assert [p.file for p in both] == [str(blender), str(water)]
    assert [p.index for p in both] == [0, 1]
    assert _ranking(both[0]) == _ranking(one)  # batching changes no result
    assert both[1].label == "water flowing"


def test_a_folder_is_expanded_like_the_cli(clf, k20):
    folder = k20 / "blender"
    found = clf(folder)
    files = api.expand_inputs([folder])
    assert isinstance(found, Predictions)
    assert [p.file for p in found] == files and len(files) > 10
    assert sum(p.label == "blender" for p in found) > len(found) / 2


def test_an_array_ranks_as_the_same_audio_written_to_a_file(clf, blender, tmp_path):
    wave, rate = sf.read(blender, dtype="float32")
    # stereo at 48 kHz: the array and the file both go through downmix and resampling
    high = resample(wave, rate, 48000)
    stereo = np.stack([high, 0.5 * high])  # [channels, samples]
    path = tmp_path / "stereo48k.wav"
    sf.write(path, stereo.T, 48000, subtype="FLOAT")  # soundfile takes [samples, channels]
    from_file = clf(path)
    from_array = clf(stereo, sample_rate=48000)
    assert from_array.file is None
    assert [r.label for r in from_array.ranking] == [r.label for r in from_file.ranking]
    np.testing.assert_allclose(
        [r.score for r in from_array.ranking], [r.score for r in from_file.ranking], rtol=1e-6
    )
    # mono at the file's own rate equals the original file
    np.testing.assert_allclose(
        [r.score for r in clf(wave, sample_rate=rate).ranking],
        [r.score for r in clf(blender).ranking],
        rtol=1e-6,
    )


def test_a_list_of_arrays_and_files_keeps_input_order(clf, blender, k20):
    water_file = sorted((k20 / "water-flowing").glob("*.flac"))[0]
    water, rate = sf.read(water_file, dtype="float32")
    found = clf([water, blender], sample_rate=rate)
    assert [p.file for p in found] == [None, str(blender)]
    assert [p.index for p in found] == [0, 1]
    assert [p.label for p in found] == ["water flowing", "blender"]
    np.testing.assert_allclose(found[0].score, clf(water_file).score, rtol=1e-6)


def test_integer_pcm_is_scaled_to_full_scale():
    pcm = np.array([0, 16384, -32768], np.int16)
    np.testing.assert_array_equal(mono(pcm), np.array([0.0, 0.5, -1.0], np.float32))
    u8 = np.array([128, 255, 0], np.uint8)
    np.testing.assert_allclose(mono(u8), [0.0, 127 / 128, -1.0])


@pytest.mark.parametrize(
    ("wave", "message"),
    [
        (np.zeros((16000, 2), np.float32), r"looks like \[samples, channels\].*pass wave\.T"),
        (np.zeros((4, 4), np.float32), r"shape \(4, 4\) is ambiguous"),
        (np.zeros((2, 3, 100), np.float32), r"one clip is \[samples\] or \[channels, samples\]"),
        (np.zeros(100, complex), "are not audio"),
    ],
)
def test_shapes_that_are_not_one_clip_are_refused(clf, wave, message):
    with pytest.raises(ConfigError, match=message):
        clf(wave, sample_rate=16000)


def test_sample_rate_is_required_for_arrays_and_refused_for_files(clf, blender):
    with pytest.raises(ConfigError, match="need their sample rate"):
        clf(np.ones(16000, np.float32))
    with pytest.raises(ConfigError, match="applies to numpy array inputs only"):
        clf(blender, sample_rate=16000)
    for bad in (0, -8000, 16000.5, "16k", True):
        with pytest.raises(ConfigError, match="sample_rate must be"):
            clf(np.ones(16000, np.float32), sample_rate=bad)


def test_other_input_types_are_refused_by_name():
    with pytest.raises(ConfigError, match="not int"):
        as_inputs(3)
    with pytest.raises(ConfigError, match="input 1 is a dict"):
        as_inputs(["a.wav", {}])
    with pytest.raises(ConfigError, match="no inputs given"):
        as_inputs([])


def test_unusable_inputs_are_skipped_and_listed_or_stop_with_strict(clf, blender, tmp_path):
    missing = tmp_path / "missing.wav"
    silent = np.zeros(16000, np.float32)
    wave, rate = sf.read(blender, dtype="float32")
    found = clf([missing, blender])
    assert [p.file for p in found] == [str(blender)] and found[0].index == 1
    assert [(s.index, s.file) for s in found.skipped] == [(0, str(missing))]
    assert "missing.wav: file not found" in found.skipped[0].reason
    assert "--data-dir" not in found.skipped[0].reason
    arrays = clf([silent, wave], sample_rate=rate)
    assert [p.index for p in arrays] == [1]
    assert arrays.skipped[0].file is None and "entirely silent" in arrays.skipped[0].reason
    strict = Classifier(LABELS, strict=True)
    with pytest.raises(AudioError, match="entirely silent"):
        strict([wave, silent], sample_rate=rate)
    with pytest.raises(AudioError, match=r"missing\.wav: file not found"):
        clf(missing)  # a single input that cannot be used is its own error
    with pytest.raises(DataError, match="none of the 2 inputs could be used"):
        clf([missing, silent], sample_rate=rate)


# --- what comes out -----------------------------------------------------------------------------


def test_top_k_keeps_the_best_labels_in_order(blender, clf):
    top2 = Classifier(LABELS, top_k=2)(blender)
    assert _ranking(top2) == _ranking(clf(blender))[:2]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ConfigError, match="--top-k must be an integer of at least 1"):
            Classifier(LABELS, top_k=bad)


def test_the_score_kind_follows_the_space_s_logit_scale(clf, blender):
    assert clf.score_kind == ("compatibility" if clf.space.logit_scale is None else "probability")
    assert clf(blender).score_kind == clf.score_kind

    class Space:
        spec = "test"

        def __init__(self, scale, independent=False):
            self.logit_scale = scale
            self.independent_logits = independent

    assert score_kind(Space(None), False) == "compatibility"
    assert score_kind(Space(100.0), False) == "probability"
    assert score_kind(Space(100.0, independent=True), True) == "probability (independent)"
    with pytest.raises(ConfigError, match=r"need a backend with learnt logits \(clap"):
        score_kind(Space(None), True)
    # a softmax temperature (the calibrated bridge) gives no independent probabilities
    with pytest.raises(ConfigError, match="calibrated for a softmax over the candidates only"):
        score_kind(Space(2.0), True)


def test_multi_label_on_the_calibrated_default_bridge_is_refused(clf):
    if clf.space.logit_scale is None:
        pytest.skip("the default bridge has no fitted temperature here")
    with pytest.raises(ConfigError, match="softmax over the candidates only"):
        Classifier(LABELS, multi_label=True)


class Uncalibrated(BridgeSpace):
    """A bridge space whose scores are not logits (no logit scale)."""

    logit_scale = None


def test_multi_label_on_a_space_without_logit_scale_is_refused(monkeypatch):
    monkeypatch.setattr(api, "joint_space", lambda spec, **options: Uncalibrated(**options))
    with pytest.raises(ConfigError, match="'bridge' backend's scores are compatibilities"):
        Classifier(LABELS, multi_label=True)


def test_compatibilities_are_not_probabilities_and_say_so(monkeypatch, blender):
    space = Uncalibrated()
    monkeypatch.setattr(api, "joint_space", lambda spec, **options: space)
    found = Classifier(LABELS)(blender)
    assert found.score_kind == "compatibility"
    assert all(r.logit is None for r in found.ranking)
    scores = [r.score for r in found.ranking]
    assert scores == sorted(scores, reverse=True)


def test_device_is_checked_before_anything_loads(monkeypatch):
    monkeypatch.setattr(api, "joint_space", None)  # nothing may be built for a bad device
    monkeypatch.setattr(api, "get_joint_space", None)
    for bad in ("gpu", "cuda:x", "cpu:0", "tpu", ""):
        with pytest.raises(ConfigError, match="is not one of cpu, cuda, cuda:<n>, mps, auto"):
            Classifier(LABELS, device=bad)
    assert [check_device(d) for d in (None, "cpu", "CUDA:1", "mps", "auto")] == [
        None,
        "cpu",
        "cuda:1",
        "mps",
        "auto",
    ]
    with device_block("cpu"):  # the CPU is always there (no torch import needed)
        pass


def test_results_convert_to_dicts_json_and_pandas(clf, blender, k20):
    water = sorted((k20 / "water-flowing").glob("*.flac"))[0]
    found = Classifier(LABELS, top_k=3)([blender, water])
    item = found.to_dicts()[0]
    assert item == json.loads(json.dumps(item))  # JSON-serialisable as it is
    assert set(item) == {"file", "index", "ranking", "score_kind"}
    assert set(item["ranking"][0]) <= {"label", "score", "logit"}
    frame = found.to_pandas()
    assert list(frame.columns) == ["file", "index", "rank", "label", "score", "score_kind", "logit"]
    assert len(frame) == 6 and frame["rank"].tolist() == [1, 2, 3, 1, 2, 3]
    assert frame["label"].tolist()[:3] == [r.label for r in found[0].ranking]
    assert frame["file"].tolist() == [str(blender)] * 3 + [str(water)] * 3


def test_label_scores_carry_a_logit_only_behind_a_probability():
    assert LabelScore("a", 0.5).to_dict() == {"label": "a", "score": 0.5}
    assert LabelScore("a", 0.5, 1.25).to_dict() == {"label": "a", "score": 0.5, "logit": 1.25}


def test_the_labels_are_embedded_once(monkeypatch, blender):
    clf = Classifier(LABELS)
    calls = []
    encoder = clf.space.text_encoder
    original = encoder.embed
    monkeypatch.setattr(encoder, "embed", lambda texts: calls.append(texts) or original(texts))
    clf(blender)
    clf([blender, blender])
    assert calls == []
