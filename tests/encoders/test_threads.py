"""Thread counts set locally around encoding: limit(), measured defaults, the env override."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info, threadpool_limits

from harken.data.manifest import Clip
from harken.encoders import threads
from harken.encoders.base import get_encoder
from harken.encoders.stream import embed_audio_file
from harken.errors import ConfigError
from harken.store.features import encode_clips

from .conftest import kitchen_clip


def blas_threads() -> set[int]:
    """Thread counts of every loaded BLAS (OpenBLAS: numpy's, torch's)."""
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


@pytest.fixture
def two_threads():
    """A known starting state: BLAS and torch at two threads (restored afterwards)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    with threadpool_limits(limits=2):
        yield
    torch.set_num_threads(before)


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)


def test_limit_changes_and_restores_blas_and_torch(two_threads):
    assert blas_threads() == {2} and torch.get_num_threads() == 2
    assert threads.current() is None
    with threads.limit(1) as n:
        assert n == 1 and threads.current() == 1
        assert blas_threads() == {1} and torch.get_num_threads() == 1
        with threads.limit(2):  # nested blocks restore the outer one's counts
            assert blas_threads() == {2} and torch.get_num_threads() == 2
        assert blas_threads() == {1} and torch.get_num_threads() == 1
    assert blas_threads() == {2} and torch.get_num_threads() == 2
    assert threads.current() is None


def test_limit_restores_after_an_error(two_threads):
    with pytest.raises(RuntimeError), threads.limit(1):
        raise RuntimeError("boom")
    assert blas_threads() == {2} and torch.get_num_threads() == 2 and threads.current() is None


@pytest.mark.parametrize("bad", [0, -1, "two", 1.5])
def test_limit_rejects_non_positive_counts(bad):
    with pytest.raises(ConfigError, match="positive whole number"), threads.limit(bad):
        pass


def test_yamnet_session_is_built_with_the_blocks_count(no_override):
    encoder = get_encoder("yamnet")
    wave = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    encoder.embed([wave])  # outside any block: the measured default
    with threads.limit(2):
        encoder.embed([wave])
    counts = {n: s.get_session_options().intra_op_num_threads for n, s in encoder._sessions.items()}
    assert counts == {threads.default_threads("yamnet"): threads.default_threads("yamnet"), 2: 2}


@pytest.fixture(scope="module")
def real_clips() -> list[Clip]:
    return [Clip(f"k{i}", kitchen_clip(i)) for i in (0, 7, 13)]


@pytest.mark.parametrize("name", ["yamnet", "aisfx"])
def test_embeddings_are_bit_identical_at_one_and_two_threads(name, real_clips):
    encoder = get_encoder(name)
    with threads.limit(1, torch=True):
        one = encode_clips(encoder, real_clips)
    with threads.limit(2, torch=True):
        two = encode_clips(encoder, real_clips)
    assert one.shape == (3, encoder.dim)
    assert np.array_equal(one, two)


class Spy:
    """An audio encoder recording the thread counts in force when it embeds."""

    modality, dim, sample_rate, name = "audio", 2, 16000, "yamnet"

    def __init__(self) -> None:
        self.seen: list[tuple] = []

    def embed(self, batch):
        self.seen.append((threads.current(), blas_threads()))
        return np.zeros((len(batch), self.dim), np.float32)

    def config(self) -> dict:
        return {"name": self.name}


def test_store_encoding_and_streaming_run_at_the_default(two_threads, no_override, real_clips):
    spy = Spy()
    encode_clips(spy, real_clips[:2])
    embed_audio_file(spy, real_clips[0].audio_path)
    n = threads.default_threads("yamnet")
    assert spy.seen == [(n, {n}), (n, {n})]
    assert blas_threads() == {2}  # restored after the encoding


def test_env_override_and_an_outer_block_win(two_threads, monkeypatch, real_clips):
    spy = Spy()
    monkeypatch.setenv(threads.ENV, "2")
    assert threads.default_threads("yamnet") == 2
    encode_clips(spy, real_clips[:1])
    monkeypatch.setenv(threads.ENV, " ")  # empty: the measured default
    assert threads.default_threads("yamnet") == threads.MEASURED["yamnet"]
    with threads.limit(2):  # an executor's (or user's) block is kept
        encode_clips(spy, real_clips[:1])
    assert spy.seen == [(2, {2}), (2, {2})]


@pytest.mark.parametrize("value", ["abc", "0", "-3", "1.5"])
def test_bad_env_value_is_a_clear_error(monkeypatch, value, real_clips):
    monkeypatch.setenv(threads.ENV, value)
    with pytest.raises(ConfigError, match=f"HARKEN_THREADS='{value}'.*positive whole number"):
        encode_clips(Spy(), real_clips[:1])


def test_defaults_are_capped_by_cores_per_worker(no_override, monkeypatch):
    monkeypatch.setitem(threads.MEASURED, "big", 4)
    monkeypatch.setattr(threads, "cpu_count", lambda: 8)
    assert [threads.default_threads("big", w) for w in (1, 2, 4, 16)] == [4, 4, 2, 1]
    assert threads.default_threads("not-measured") == threads.FALLBACK
    with pytest.raises(ConfigError, match="workers=0"):
        threads.default_threads("big", 0)


def test_minilm_text_encoding_runs_at_its_default_and_is_thread_independent(
    no_override, monkeypatch
):
    monkeypatch.setenv("HARKEN_TEXT_CACHE", "0")
    encoder = get_encoder("minilm")
    texts = ["the sound of a blender", "water boiling in a kettle", "a knife chopping onions"]
    seen = []
    model = encoder._load()
    forward = model.encode
    monkeypatch.setattr(
        model, "encode", lambda *a, **k: seen.append(torch.get_num_threads()) or forward(*a, **k)
    )
    with threads.limit(2):  # an outer block is kept
        two = encoder.embed(texts)
    one = encoder.embed(texts)  # the measured default
    assert set(seen) == {2, threads.default_threads("minilm")}
    assert np.array_equal(one, two)


def test_efficientnet_differs_across_thread_counts_only_by_float_rounding():
    """Not bit-identical: torch's convolutions split their sums by thread (measured max
    difference 4e-6 on features of magnitude ~1); the store's key omits the thread count, so
    executors must use the same count (``default_threads`` gives every worker the same one)."""
    encoder = get_encoder("efficientnet-lite0")
    frames = np.random.default_rng(0).integers(0, 256, (2, 240, 320, 3), dtype=np.uint8)
    with threads.limit(1, torch=True):
        one = encoder.embed(frames)
    with threads.limit(2, torch=True):
        two = encoder.embed(frames)
    np.testing.assert_allclose(one, two, rtol=0, atol=1e-4)
