"""MS-CLAP 2023 backends through a tiny random-weight network of the released architecture,
saved as a released-format checkpoint (``{"model": state_dict}`` with GPT-2's legacy mask
buffers) next to a tiny byte-level BPE GPT-2 tokenizer built offline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import soundfile as sf

from harken.data.audio import load_audio
from harken.data.manifest import Clip
from harken.encoders.base import available_encoders, get_encoder
from harken.encoders.msclap import (
    ARCH_FILE,
    EOT,
    WEIGHTS_FILE,
    MsClapArch,
    MsClapAudioEncoder,
    MsClapTextEncoder,
    build_msclap,
)
from harken.errors import ModelUnavailableError
from harken.store.features import encode_clips

from .conftest import WORDS, kitchen_clip

SR = 44100
TEXTS = ["a dog barking", "water boiling in a pan", "the blender whirring!", "knife chopping"]
TINY = {  # 128² spectrogram image (16 mel bins folded 8×), two 8-d/16-d Swin stages
    "spec_size": 128,
    "mel_bins": 16,
    "n_fft": 512,
    "embed_dim": 8,
    "depths": [2, 2],
    "num_heads": [1, 2],
    "num_classes": 5,
    "d_proj": 12,
    "text": {
        "n_embd": 16,
        "n_layer": 1,
        "n_head": 2,
        "vocab_size": 300,
        "n_positions": 80,
        "bos_token_id": 0,
        "eos_token_id": 0,
    },
}


def _gpt2_tokenizer(folder: Path):
    """A byte-level BPE GPT-2 tokenizer with ``<|endoftext|>``, trained on a few words."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Tokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([WORDS] * 3, vocab_size=300, special_tokens=[EOT], show_progress=False)
    bpe.save_model(str(folder))
    lines = (folder / "merges.txt").read_text().splitlines()
    merges = [tuple(line.split()) for line in lines if line and not line.startswith("#")]
    (folder / "merges.txt").unlink()
    (folder / "vocab.json").unlink()
    return GPT2Tokenizer(vocab=bpe.get_vocab(), merges=merges)


def _state(seed: int) -> dict:
    """A tiny network's state dict as a transformers < 4.31 save holds it."""
    import torch

    torch.manual_seed(seed)
    net = build_msclap(MsClapArch.from_dict(TINY))
    with torch.no_grad():
        net.logit_scale.fill_(math.log(25.0))
        for module in net.modules():  # non-trivial BatchNorm statistics
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    state = dict(net.state_dict())
    state["caption_encoder.base.h.0.attn.bias"] = torch.tril(torch.ones(1, 1, 80, 80))
    state["caption_encoder.base.h.0.attn.masked_bias"] = torch.tensor(-1e4)
    return state


def _save_folder(folder: Path, seed: int = 0) -> Path:
    import torch

    torch.save({"model": _state(seed), "epoch": 1}, folder / WEIGHTS_FILE)
    (folder / ARCH_FILE).write_text(json.dumps(TINY))
    _gpt2_tokenizer(folder).save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def msclap_dir(tmp_path_factory) -> Path:
    return _save_folder(tmp_path_factory.mktemp("tiny_msclap"))


@pytest.fixture(scope="module")
def audio(msclap_dir):
    return get_encoder(f"msclap:{msclap_dir}")


@pytest.fixture(scope="module")
def text(msclap_dir):
    return get_encoder(f"msclap-text:{msclap_dir}")


@pytest.fixture(scope="module")
def waves():
    """Four real 5 s Kitchen20 clips resampled to 44.1 kHz."""
    return [load_audio(kitchen_clip(i), SR)[0] for i in range(0, 16, 4)]


def _unit(emb: np.ndarray) -> bool:
    return np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)


def test_registered_names_shapes_and_config(audio, text, msclap_dir, waves):
    assert {"msclap", "msclap-text"} <= set(available_encoders())
    emb = audio.embed(waves[:2])
    assert emb.shape == (2, 12) and emb.dtype == np.float32 and _unit(emb)
    assert audio.name == f"msclap:{msclap_dir}" and text.name == f"msclap-text:{msclap_dir}"
    assert audio.sample_rate == SR and text.sample_rate is None and audio.dim == text.dim == 12
    cfg = audio.config()
    assert cfg["arch"]["depths"] == (2, 2) and len(cfg["weights_sha256"]) == 16
    assert cfg["policy"]["max_seconds"] == 7.0 and cfg["revision"] is None
    assert text.config()["tokenizer"] == str(msclap_dir.resolve())
    assert audio.model() is text.model()  # one network per process for both towers
    assert audio.logit_scale == pytest.approx(25.0) and text.logit_scale == audio.logit_scale


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


def test_long_clip_is_the_mean_of_its_windows_never_a_random_crop(audio, waves):
    long = np.concatenate(waves[:3])  # 15 s
    windows = audio.policy.windows(long, SR)
    assert [len(w) / SR for w in windows] == [7.0] * 4  # starts 0, 3.5, 7 and 8 s
    per_window = audio._embed_windows(windows)
    mean = per_window.mean(axis=0)
    (emb,) = audio.embed([long])  # a second pass over the same windows: no random crop
    np.testing.assert_allclose(emb, mean / np.linalg.norm(mean), rtol=0, atol=1e-6)
    assert not np.allclose(emb, per_window[0], atol=1e-4)


def test_short_clip_is_tiled_to_7_seconds(audio, waves):
    short = waves[0][: SR // 2]  # 0.5 s: tiled 14 times, as the released code does
    (emb,) = audio.embed([short])
    assert _unit(emb[None])
    np.testing.assert_allclose(emb, audio.embed([np.tile(short, 14)])[0], rtol=0, atol=1e-6)
    odd = waves[1][:30000]  # ceil(308700 / 30000) = 11 copies, cut to 7 s
    tiled = np.tile(odd, 11)[: 7 * SR]
    np.testing.assert_allclose(audio.embed([odd]), audio.embed([tiled]), rtol=0, atol=1e-6)


def test_text_pools_at_the_appended_endoftext(text):
    emb = text.embed(TEXTS)
    assert emb.shape == (4, 12) and emb.dtype == np.float32 and _unit(emb)
    np.testing.assert_allclose(text.embed([TEXTS[2]])[0], emb[2], rtol=0, atol=1e-6)
    assert np.array_equal(text.embed(TEXTS), emb)
    tok = text.model().tokenizer
    ids, mask, last = text.tokenize(TEXTS)
    eot = tok.convert_tokens_to_ids(EOT)
    assert ids.shape == (4, 77) and (ids[range(4), last] == eot).all()
    assert (mask.sum(dim=1) == last + 1).all()
    # GPT-2 is causal: the padded length cannot change the pooled state
    short = MsClapTextEncoder(text.spec, max_tokens=20)
    np.testing.assert_allclose(short.embed(TEXTS), emb, rtol=0, atol=1e-5)


def test_long_text_is_truncated_before_the_endoftext(text):
    long = " ".join([WORDS] * 10)
    ids, _, last = text.tokenize([long])
    assert int(last[0]) == 76 and int(ids[0, 76]) == text.model().tokenizer.convert_tokens_to_ids(
        EOT
    )
    assert _unit(text.embed([long]))


def test_config_differs_between_weights(audio, tmp_path):
    other = get_encoder(f"msclap:{_save_folder(tmp_path, seed=1)}")
    assert other.config()["weights_sha256"] != audio.config()["weights_sha256"]
    assert not np.allclose(
        other.embed([np.ones(SR, np.float32)]), audio.embed([np.ones(SR, np.float32)])
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.pop("audio_encoder.projection.linear1.weight"), r"missing keys.*linear1"),
        (lambda s: s.update(extra=s["logit_scale"]), r"unexpected keys.*extra"),
    ],
)
def test_weights_that_do_not_match_raise(tmp_path, edit, message):
    import torch

    state = _state(0)
    edit(state)
    torch.save({"model": state}, tmp_path / "weights.pth")
    encoder = MsClapAudioEncoder(str(tmp_path / "weights.pth"), arch=TINY)
    with pytest.raises(ModelUnavailableError, match=message):
        encoder.embed([np.ones(SR, np.float32)])


def test_missing_weights_raise(tmp_path):
    for spec in (str(tmp_path / "nope.pth"), str(tmp_path / "nope")):
        with pytest.raises(ModelUnavailableError, match="not found"):
            get_encoder(f"msclap:{spec}").embed([np.ones(SR, np.float32)])
        with pytest.raises(ModelUnavailableError, match="not found"):
            get_encoder(f"msclap-text:{spec}").embed(["a dog"])


def test_default_release_and_offline_error(monkeypatch):
    encoder, text = MsClapAudioEncoder(), MsClapTextEncoder()
    assert (encoder.name, text.name) == ("msclap", "msclap-text")
    assert encoder.dim == text.dim == 1024 and encoder.sample_rate == SR
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelUnavailableError, match="microsoft/msclap"):
        encoder.embed([np.ones(SR, np.float32)])
