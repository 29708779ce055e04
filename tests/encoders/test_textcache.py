"""The persistent text-embedding cache: hits and misses, bit-identical rows, keys, two writer
processes, damaged stores, opting out — on the tiny BERT and the real all-MiniLM-L6-v2."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harken.encoders.base import get_encoder
from harken.encoders.minilm import MinilmEncoder
from harken.encoders.sbert import SbertEncoder
from harken.encoders.textcache import (
    CACHE_FILE,
    CachedTextEncoder,
    TextEmbeddingCache,
    clear_text_cache,
    config_key,
)

SRC = Path(__file__).resolve().parents[2] / "src"
TEXTS = ["blender whirring", "a dog barking", "the kitchen", "water boiling pan sizzling"]
# Different token counts and one text sharing its count with another: every grouping case.
MINILM_TEXTS = [
    "blender",
    "a kitchen blender whirring",
    "a dog barking",
    "water boiling in a pan",
    "the sound of someone chopping an onion on a wooden board",
    "speech",
    "frying",
]


def cached(encoder, path: Path) -> CachedTextEncoder:
    return CachedTextEncoder(encoder, TextEmbeddingCache(path))


@pytest.fixture
def store(tmp_path) -> Path:
    return tmp_path / CACHE_FILE


def test_miss_then_hit_without_loading_the_model(tiny_sbert_dir, store):
    first = cached(SbertEncoder(str(tiny_sbert_dir)), store)
    expected = first.embed(TEXTS)
    assert (first.misses, first.hits) == (4, 0)

    fresh = SbertEncoder(str(tiny_sbert_dir))
    again = cached(fresh, store)
    got = again.embed(TEXTS + TEXTS[:1])
    assert fresh._model is None  # answered from the store: the model was never loaded
    assert (again.misses, again.hits) == (0, 5)
    assert got.dtype == np.float32 and np.array_equal(got, np.concatenate([expected, expected[:1]]))
    assert len(TextEmbeddingCache(store)) == 4


def test_only_new_texts_reach_the_model(tiny_sbert_dir, store):
    cached(SbertEncoder(str(tiny_sbert_dir)), store).embed(TEXTS[:2])
    calls: list[list[str]] = []
    inner = SbertEncoder(str(tiny_sbert_dir))
    original = inner.embed
    inner.embed = lambda batch: calls.append(list(batch)) or original(batch)
    cached(inner, store).embed(TEXTS)
    assert calls == [TEXTS[2:]]  # sbert is batch-invariant: the misses go in one call


def test_wrapper_keeps_name_dim_config_without_loading(tiny_sbert_dir, store):
    inner = MinilmEncoder()
    wrapped = cached(inner, store)
    assert (wrapped.name, wrapped.modality, wrapped.dim) == ("minilm", "text", 384)
    assert wrapped.sample_rate is None and wrapped.config() == inner.config()
    assert wrapped.model_id == inner.model_id  # other attributes are the wrapped encoder's
    assert inner._model is None


def test_get_encoder_wraps_text_encoders_only():
    text = get_encoder("minilm")
    assert isinstance(text, CachedTextEncoder) and text.config() == MinilmEncoder().config()
    assert not isinstance(get_encoder("yamnet"), CachedTextEncoder)


def test_bit_identical_to_the_uncached_minilm(store):
    raw = MinilmEncoder()
    expected = raw.embed(MINILM_TEXTS)
    alone = np.concatenate([raw.embed([t]) for t in MINILM_TEXTS])
    assert np.array_equal(alone, expected)  # a text's row does not depend on its batch

    cold = cached(MinilmEncoder(), store)
    assert np.array_equal(cold.embed(MINILM_TEXTS), expected)
    warm = cached(MinilmEncoder(), store)
    assert np.array_equal(warm.embed(MINILM_TEXTS[::-1]), expected[::-1])
    assert warm.misses == 0


def test_result_does_not_depend_on_what_was_cached_before(tmp_path):
    orders = {
        "all at once": [MINILM_TEXTS],
        "a few first": [MINILM_TEXTS[:2], MINILM_TEXTS[4:5], MINILM_TEXTS],
        "one by one, reversed": [[t] for t in reversed(MINILM_TEXTS)] + [MINILM_TEXTS],
    }
    results = {}
    for name, calls in orders.items():
        encoder = cached(MinilmEncoder(), tmp_path / name / CACHE_FILE)
        for texts in calls:
            results[name] = encoder.embed(texts)
    reference = results.pop("all at once")
    for name, got in results.items():
        assert np.array_equal(got, reference), name


def test_key_includes_the_encoder_config(tiny_sbert_dir, store):
    unit = cached(SbertEncoder(str(tiny_sbert_dir)), store).embed(TEXTS)
    raw_encoder = SbertEncoder(str(tiny_sbert_dir), normalize=False)
    raw = cached(raw_encoder, store).embed(TEXTS)
    assert not np.allclose(raw, unit)  # not served the normalised rows
    assert np.array_equal(raw, raw_encoder.embed(TEXTS))
    with sqlite3.connect(store) as con:
        keys = {k for (k,) in con.execute("SELECT DISTINCT config FROM embeddings")}
    assert keys == {
        config_key(SbertEncoder(str(tiny_sbert_dir)).config()),
        config_key(raw_encoder.config()),
    }


WRITER = textwrap.dedent(
    """
    import sys
    import numpy as np
    from harken.encoders.textcache import TextEmbeddingCache
    path, who = sys.argv[1], int(sys.argv[2])
    cache = TextEmbeddingCache(path)
    for batch in range(40):
        texts = [f"text {i}" for i in range(batch * 5, batch * 5 + 10)]  # overlapping batches
        rows = {t: np.full(8, int(t.split()[1]), np.float32) for t in texts}
        cache.put_many("key", "writer", {"writer": who}, rows)
        assert set(cache.get_many("key", texts, 8)) == set(texts)
    """
)


def test_two_processes_writing_at_once(store):
    env = {"PYTHONPATH": str(SRC), "PYTHONWARNINGS": "error"}  # a warning fails the writer
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(store), str(i)], env=env)
        for i in (1, 2)
    ]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    texts = [f"text {i}" for i in range(205)]
    got = TextEmbeddingCache(store).get_many("key", texts, 8)
    assert set(got) == set(texts)
    assert all(np.array_equal(got[t], np.full(8, int(t.split()[1]))) for t in texts)


def test_a_damaged_store_is_set_aside_and_rebuilt(tiny_sbert_dir, store):
    expected = cached(SbertEncoder(str(tiny_sbert_dir)), store).embed(TEXTS)
    store.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.warns(UserWarning, match="is damaged .* moved aside"):
        got = cached(SbertEncoder(str(tiny_sbert_dir)), store).embed(TEXTS)
    assert np.array_equal(got, expected)
    assert list(store.parent.glob(f"{CACHE_FILE}.corrupt-*"))
    fresh = SbertEncoder(str(tiny_sbert_dir))
    assert np.array_equal(cached(fresh, store).embed(TEXTS), expected)
    assert fresh._model is None  # the rebuilt store holds the rows again


def test_a_damaged_row_is_recomputed(tiny_sbert_dir, store):
    expected = cached(SbertEncoder(str(tiny_sbert_dir)), store).embed(TEXTS)
    with sqlite3.connect(store) as con:  # same size, other bytes: only the checksum tells
        con.execute("UPDATE embeddings SET vec = zeroblob(length(vec)) WHERE text = ?", (TEXTS[1],))
    again = cached(SbertEncoder(str(tiny_sbert_dir)), store)
    assert np.array_equal(again.embed(TEXTS), expected)
    assert (again.misses, again.hits) == (1, 3)


def test_an_unusable_store_warns_and_the_run_goes_on(tiny_sbert_dir, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.warns(UserWarning, match="continuing without it"):
        got = cached(SbertEncoder(str(tiny_sbert_dir)), blocker / CACHE_FILE).embed(TEXTS)
    assert np.array_equal(got, SbertEncoder(str(tiny_sbert_dir)).embed(TEXTS))


def test_opt_out_and_clear(monkeypatch, tmp_path):
    monkeypatch.setenv("HARKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HARKEN_TEXT_CACHE", "0")
    assert isinstance(get_encoder("minilm"), MinilmEncoder)
    monkeypatch.setenv("HARKEN_TEXT_CACHE", "1")
    encoder = get_encoder("minilm")
    assert isinstance(encoder, CachedTextEncoder)
    encoder.embed(["blender"])
    assert (tmp_path / CACHE_FILE).is_file()
    assert tmp_path / CACHE_FILE in clear_text_cache()
    assert not (tmp_path / CACHE_FILE).exists()
