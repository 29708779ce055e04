"""LAION-CLAP backends through tiny random-weight ``ClapModel`` folders (unfused and fused) with
the real ``ClapFeatureExtractor`` and a tiny byte-level BPE RoBERTa tokenizer built offline."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import soundfile as sf

from harken.data.audio import load_audio
from harken.data.manifest import Clip
from harken.encoders.base import available_encoders, get_encoder
from harken.encoders.clap import (
    DEFAULT_MODEL,
    ClapAudioEncoder,
    ClapTextEncoder,
    load_clap,
)
from harken.errors import ModelUnavailableError
from harken.store.features import encode_clips
from tiny_models import save_tiny_clap

from .conftest import kitchen_clip

SR = 48000
TEXTS = ["a dog barking", "water boiling in a pan", "the blender whirring", "knife chopping"]


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory) -> Path:
    return save_tiny_clap(tmp_path_factory.mktemp("tiny_clap"), fused=False)


@pytest.fixture(scope="module")
def fused_dir(tmp_path_factory) -> Path:
    return save_tiny_clap(tmp_path_factory.mktemp("tiny_clap_fused"), fused=True, seed=1)


@pytest.fixture(scope="module")
def audio(clap_dir):
    return get_encoder(f"clap:{clap_dir}")


@pytest.fixture(scope="module")
def text(clap_dir):
    return get_encoder(f"clap-text:{clap_dir}")


@pytest.fixture(scope="module")
def waves():
    """Five real 5 s Kitchen20 clips resampled to 48 kHz."""
    return [load_audio(kitchen_clip(i), SR)[0] for i in range(0, 20, 4)]


def _unit(emb: np.ndarray) -> bool:
    return np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_registered_names_shapes_and_config(audio, text, clap_dir, waves):
    assert {"clap", "clap-text"} <= set(available_encoders())
    emb = audio.embed(waves[:2])
    assert emb.shape == (2, 12) and emb.dtype == np.float32 and _unit(emb)
    assert audio.name == f"clap:{clap_dir}" and text.name == f"clap-text:{clap_dir}"
    assert (audio.modality, text.modality) == ("audio", "text")
    assert audio.sample_rate == SR and text.sample_rate is None and audio.dim == text.dim == 12
    cfg = audio.config()
    assert cfg["truncation"] == "rand_trunc" and cfg["padding"] == "repeatpad"
    assert cfg["policy"]["max_seconds"] == 10.0 and cfg["revision"].startswith("folder-sha256:")
    assert text.config()["revision"] == cfg["revision"]
    # one model per process, shared by both towers
    assert audio.checkpoint() is text.checkpoint() is load_clap(str(clap_dir))


def test_logit_scale_is_the_one_of_logits_per_audio(audio, text, waves):
    import torch

    assert audio.logit_scale == pytest.approx(20.0) and text.logit_scale == pytest.approx(20.0)
    assert audio.logit_scale_text == pytest.approx(30.0)
    ckpt = audio.checkpoint()
    feats = ckpt.extractor(
        waves[:2],
        sampling_rate=SR,
        truncation="rand_trunc",
        padding="repeatpad",
        return_tensors="pt",
    )
    tokens = ckpt.tokenizer(TEXTS, padding="max_length", max_length=77, return_tensors="pt")
    with torch.no_grad():
        out = ckpt.model(
            input_ids=tokens["input_ids"],
            attention_mask=tokens["attention_mask"],
            input_features=feats["input_features"],
            is_longer=torch.zeros((2, 1), dtype=torch.bool),
        )
    ours = audio.logit_scale * audio.embed(waves[:2]) @ text.embed(TEXTS).T
    np.testing.assert_allclose(ours, out.logits_per_audio.numpy(), rtol=0, atol=1e-4)


def test_alone_equals_batched_and_repeatable(audio, waves):
    batched = audio.embed([waves[0], waves[1][: SR // 2], waves[2]])
    alone = audio.embed([waves[0]])
    np.testing.assert_allclose(alone[0], batched[0], rtol=0, atol=1e-6)
    assert np.array_equal(audio.embed([waves[0]]), alone)


def test_stereo_file_equals_its_mono_downmix(audio, tmp_path):
    left, sr = load_audio(kitchen_clip(0))
    right = load_audio(kitchen_clip(5))[0][: len(left)]
    left = left[: len(right)]
    sf.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), sr, subtype="FLOAT")
    sf.write(tmp_path / "mono.wav", (left + right) / 2, sr, subtype="FLOAT")
    clips = [Clip("stereo", tmp_path / "stereo.wav"), Clip("mono", tmp_path / "mono.wav")]
    stereo, mono = encode_clips(audio, clips)
    np.testing.assert_allclose(stereo, mono, rtol=0, atol=1e-6)
    assert not np.allclose(stereo, audio.embed([load_audio(kitchen_clip(0), SR)[0]])[0])


def test_long_clip_is_the_mean_of_its_windows_never_a_random_crop(audio, waves):
    long = np.concatenate(waves)  # 25 s
    windows = audio.policy.windows(long, SR)
    assert [len(w) / SR for w in windows] == [10.0] * 4
    per_window = audio._embed_windows(windows)
    mean = per_window.mean(axis=0)
    (emb,) = audio.embed([long])  # a second pass over the same windows: no random crop
    np.testing.assert_allclose(emb, mean / np.linalg.norm(mean), rtol=0, atol=1e-6)
    assert not np.allclose(emb, per_window[0], atol=1e-4)


def test_short_clip_is_repeat_padded(audio, waves):
    short = waves[0][: SR // 2]  # 0.5 s
    (emb,) = audio.embed([short])
    assert _unit(emb[None])
    np.testing.assert_allclose(emb, audio.embed([np.tile(short, 20)])[0], rtol=0, atol=1e-6)


def test_text_embeddings_unit_norm_and_deterministic(text):
    emb = text.embed(TEXTS)
    assert emb.shape == (4, 12) and emb.dtype == np.float32 and _unit(emb)
    np.testing.assert_allclose(text.embed([TEXTS[2]])[0], emb[2], rtol=0, atol=1e-6)
    assert np.array_equal(text.embed(TEXTS), emb)
    assert text.embed([]).shape == (0, 12)


def test_fused_checkpoint_is_deterministic_and_batch_independent(fused_dir, audio, waves):
    fused = ClapAudioEncoder(str(fused_dir))
    assert fused.config()["truncation"] == "fusion" and fused.config()["fused"] is True
    assert fused.config() != audio.config()
    alone = fused.embed([waves[0]])
    # the extractor flags one random item of such a batch as "longer"; harken never does
    for _ in range(2):
        batched = fused.embed([waves[1][: SR // 2], waves[0]])
        np.testing.assert_allclose(batched[1], alone[0], rtol=0, atol=1e-6)
    assert _unit(alone)


def test_missing_weight_raises(clap_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "preprocessor_config.json"):
        (broken / name).write_bytes((clap_dir / name).read_bytes())
    state = load_file(str(clap_dir / "model.safetensors"))
    del state["audio_projection.linear1.weight"]
    save_file(state, str(broken / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelUnavailableError, match=r"missing keys.*audio_projection\.linear1"):
        ClapAudioEncoder(str(broken)).embed([np.ones(SR, np.float32)])


def test_missing_folder_raises(tmp_path):
    with pytest.raises(ModelUnavailableError, match="not found"):
        get_encoder(f"clap:{tmp_path / 'nope'}").embed([np.ones(SR, np.float32)])
    with pytest.raises(ModelUnavailableError, match="not found"):
        get_encoder(f"clap-text:{tmp_path / 'nope'}").embed(["a dog"])


def test_default_checkpoint_and_offline_error(monkeypatch):
    encoder, text = ClapAudioEncoder(), ClapTextEncoder()
    assert (encoder.name, text.name) == ("clap", "clap-text")
    assert encoder.model_id == DEFAULT_MODEL and encoder.dim == 512 and encoder.sample_rate == SR
    assert encoder.policy.max_seconds == 10.0
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="clap-htsat-unfused"):
        encoder.embed([np.ones(SR, np.float32)])
