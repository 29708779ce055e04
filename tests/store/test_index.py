"""EmbeddingIndex: exact search against brute force, FAISS recall, atomic save, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import harken.store.index as index_module
from harken.errors import ConfigError, DataError, HarkenError
from harken.store.index import EmbeddingIndex, exact_search, faiss_module

needs_faiss = pytest.mark.skipif(faiss_module() is None, reason="faiss-cpu is not installed")


@pytest.fixture(scope="module", autouse=True)
def _single_threaded_faiss():
    """One FAISS thread: a graph built twice is the same, and no oversubscription."""
    faiss = faiss_module()
    if faiss is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _files(n: int) -> list[str]:
    return [f"/data/clips/clip-{i:05d}.flac" for i in range(n)]


def _brute_force(emb: np.ndarray, queries: np.ndarray, k: int):
    scores = queries @ emb.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, axis=1), order


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True)]
    return sum(hits) / truth.size


@pytest.fixture
def small() -> EmbeddingIndex:
    rng = np.random.default_rng(0)
    return EmbeddingIndex.build(
        _unit(rng, 300, 16), _files(300), {"encoder": {"name": "test/unit"}}, backend="exact"
    )


def _queries(seed: int = 1, n: int = 7, d: int = 16) -> np.ndarray:
    return _unit(np.random.default_rng(seed), n, d)


# --- exact search -----------------------------------------------------------------------------


def test_exact_search_matches_brute_force(small):
    q = _queries()
    scores, indices = small.search(q, top_k=10)
    want_scores, want_indices = _brute_force(small.embeddings, q, 10)
    assert scores.shape == indices.shape == (7, 10)
    assert scores.dtype == np.float32 and indices.dtype == np.int64
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_allclose(scores, want_scores, rtol=1e-6)


def test_exact_search_in_many_chunks_gives_the_same_result(small, monkeypatch):
    q = _queries(n=50)
    whole = small.search(q, top_k=5)
    monkeypatch.setattr(index_module, "_CHUNK_BYTES", 4 * 300 * 3)  # 3 queries per chunk
    chunked = small.search(q, top_k=5)
    # BLAS may round a 3-row product differently from a 50-row one (last float32 bit); the
    # rows found and their order must not change
    np.testing.assert_array_equal(whole[1], chunked[1])
    np.testing.assert_allclose(whole[0], chunked[0], rtol=1e-6, atol=0)


def test_equal_scores_are_ordered_by_row_index_even_at_the_cut_off():
    emb = np.array([[1.0], [3.0], [3.0], [2.0], [3.0], [3.0], [0.0]])
    index = EmbeddingIndex.build(emb, _files(7), backend="exact")
    for k, want in [(1, [1]), (3, [1, 2, 4]), (5, [1, 2, 4, 5, 3]), (7, [1, 2, 4, 5, 3, 0, 6])]:
        scores, indices = index.search(np.array([[1.0]]), top_k=k)
        assert indices[0].tolist() == want, k
        assert scores[0].tolist() == sorted(emb[want, 0].tolist(), reverse=True)
    # many rows tied at the cut-off, in several rows of queries at once
    flat = np.ones((50, 1), dtype=np.float32)
    _, indices = exact_search(flat, np.ones((4, 1), dtype=np.float32), 6)
    np.testing.assert_array_equal(indices, np.tile(np.arange(6), (4, 1)))


def test_top_k_beyond_the_collection_and_a_single_query(small):
    scores, indices = small.search(_queries(n=1)[0], top_k=1000)
    assert scores.shape == indices.shape == (1, 300)
    assert sorted(indices[0].tolist()) == list(range(300))
    assert np.all(np.diff(scores[0]) <= 0)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ConfigError, match="top_k must be a positive integer"):
            small.search(_queries(), top_k=bad)


def test_search_files_gives_file_and_score_best_first(small):
    q = _queries(n=2)
    results = small.search_files(q, top_k=3)
    scores, indices = small.search(q, top_k=3)
    assert len(results) == 2 and all(len(r) == 3 for r in results)
    assert results[1][0] == {"file": small.files[indices[1, 0]], "score": float(scores[1, 0])}
    assert all(type(hit["score"]) is float for r in results for hit in r)
    assert [h["score"] for h in results[0]] == sorted(
        (h["score"] for h in results[0]), reverse=True
    )


# --- input validation -------------------------------------------------------------------------


def test_query_dimension_mismatch_names_both_dimensions(small):
    with pytest.raises(DataError, match="queries have dimension 8 but the index has dimension 16"):
        small.search(np.ones((2, 8), dtype=np.float32))
    with pytest.raises(DataError, match="query 1 contains NaN or inf"):
        small.search(np.stack([np.ones(16), np.full(16, np.inf)]))


@pytest.mark.parametrize(
    ("embeddings", "files", "message"),
    [
        (np.zeros((0, 4)), [], "collection is empty"),
        (np.ones(4), ["a"], "2-D"),
        (np.ones((3, 0)), _files(3), "dimension 0"),
        (np.array([[1.0, 0.0], [np.nan, 1.0], [0.0, np.inf]]), _files(3), "row 1 contains NaN"),
        (np.ones((3, 2)), _files(2), "2 files for 3 embedding rows"),
        (np.ones((1, 2)), "/one/path.wav", "not one path"),
        (np.ones((2, 2)), ["/a.wav", 3], r"files\[1\] is int"),
    ],
)
def test_bad_collections_are_rejected(embeddings, files, message):
    with pytest.raises(DataError, match=message):
        EmbeddingIndex.build(embeddings, files, backend="exact")


def test_bad_arguments_are_rejected():
    emb, files = np.ones((2, 2)), _files(2)
    with pytest.raises(ConfigError, match="unknown index backend 'annoy'"):
        EmbeddingIndex.build(emb, files, backend="annoy")
    with pytest.raises(ConfigError, match="JSON-serialisable"):
        EmbeddingIndex.build(emb, files, meta={"model": object()})
    with pytest.raises(ConfigError, match="ef_search"):
        EmbeddingIndex.build(emb, files, ef_search=0)


# --- persistence ------------------------------------------------------------------------------


def test_save_load_round_trip_is_identical(small, tmp_path):
    folder = small.save(tmp_path / "idx")
    assert sorted(p.name for p in folder.iterdir()) == [
        "embeddings.npy",
        "files.json",
        "index.json",
    ]
    header = json.loads((folder / "index.json").read_text())
    assert header["format_version"] == index_module.FORMAT_VERSION
    assert (header["backend"], header["dim"], header["count"]) == ("exact", 16, 300)
    assert header["meta"] == {"encoder": {"name": "test/unit"}}
    loaded = EmbeddingIndex.load(folder)
    assert (loaded.backend, loaded.files, loaded.meta) == (small.backend, small.files, small.meta)
    np.testing.assert_array_equal(loaded.embeddings, small.embeddings)
    for a, b in zip(loaded.search(_queries(), 10), small.search(_queries(), 10), strict=True):
        np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]  # no temp folders left


def test_save_replaces_an_index_but_never_another_folder(small, tmp_path):
    folder = tmp_path / "idx"
    EmbeddingIndex.build(np.ones((2, 16)), _files(2), backend="exact").save(folder)
    small.save(folder)
    assert EmbeddingIndex.load(folder).count == 300
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
    (tmp_path / "empty").mkdir()
    small.save(tmp_path / "empty")  # an empty folder is fine
    other = tmp_path / "photos"
    other.mkdir()
    (other / "cat.jpg").write_bytes(b"\xff")
    with pytest.raises(ConfigError, match="photos exists and is not a harken index"):
        small.save(other)
    assert (other / "cat.jpg").read_bytes() == b"\xff"


def _tree(folder) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_folder_with_a_foreign_index_json_is_never_replaced(small, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "index.json").write_text('{"pages": [1, 2, 3]}')  # some other tool's index
    (folder / "thesis.tex").write_text("years of work")
    before = _tree(folder)
    with pytest.raises(ConfigError, match="mine exists and is not a harken index"):
        small.save(folder)
    assert _tree(folder) == before
    (folder / "index.json").write_text("not even json")
    with pytest.raises(ConfigError, match="not a harken index"):
        EmbeddingIndex.check_target(folder)


def test_a_harken_index_holding_other_files_is_never_replaced(small, tmp_path):
    folder = small.save(tmp_path / "idx")
    (folder / "notes.md").write_text("my notes on this index")
    before = _tree(folder)
    with pytest.raises(ConfigError, match=r"holds files a harken index does not \(notes\.md\)"):
        small.save(folder)
    assert _tree(folder) == before
    (folder / "notes.md").unlink()
    small.save(folder)  # only harken's own files: replaced
    assert EmbeddingIndex.load(folder).count == 300


def test_index_refuses_a_foreign_folder_before_any_work(tmp_path, monkeypatch):
    from harken import api

    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "index.json").write_text("{}")

    def no_work(*args, **kwargs):
        raise AssertionError("work started before the --out check")

    monkeypatch.setattr(api, "joint_space", no_work)
    monkeypatch.setattr(api, "_index_clips", no_work)
    with pytest.raises(ConfigError, match="not a harken index"):
        api.index(["clips/"], folder)
    assert _tree(folder) == {"index.json": b"{}"}


def test_an_interrupted_save_leaves_the_old_index_untouched(small, tmp_path, monkeypatch):
    folder = tmp_path / "idx"
    old = EmbeddingIndex.build(np.eye(16)[:5], _files(5), {"v": "old"}, backend="exact")
    old.save(folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}

    def crash(*args, **kwargs):
        assert any(p.name.endswith(".tmp") for p in tmp_path.iterdir())  # mid-save
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        small.save(folder)
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
    assert EmbeddingIndex.load(folder).meta == {"v": "old"}
    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(OSError):  # a first save that fails leaves no index at all
        small.save(tmp_path / "new")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def _saved(small, tmp_path):
    return small.save(tmp_path / "idx")


def test_missing_folder_or_header_says_what_to_do(small, tmp_path):
    with pytest.raises(DataError, match=r"nowhere: no index folder here .*`harken index`"):
        EmbeddingIndex.load(tmp_path / "nowhere")
    (tmp_path / "plain").mkdir()
    with pytest.raises(
        DataError,
        match=r"plain is not a harken index: index.json missing — build one with `harken index`",
    ):
        EmbeddingIndex.load(tmp_path / "plain")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: (f / "index.json").write_text("{not json"), "index.json is unreadable"),
        (lambda f: (f / "index.json").write_text("[]"), "not a harken index header"),
        (lambda f: (f / "embeddings.npy").unlink(), "embeddings.npy missing"),
        (lambda f: (f / "files.json").unlink(), "files.json missing"),
        (lambda f: (f / "embeddings.npy").write_bytes(b"garbage"), "embeddings.npy is corrupt"),
        (lambda f: np.save(f / "embeddings.npy", np.ones((3, 16), np.float32)), r"\(3, 16\)"),
        (lambda f: np.save(f / "embeddings.npy", np.ones((300, 16))), "float64"),
        (lambda f: (f / "files.json").write_text('["/x.wav"]\n'), "files.json does not match"),
    ],
)
def test_corrupt_index_files_give_clear_errors(small, tmp_path, damage, message):
    folder = _saved(small, tmp_path)
    damage(folder)
    with pytest.raises(DataError, match=message) as info:
        EmbeddingIndex.load(folder)
    assert "idx" in str(info.value)


def test_changed_embeddings_fail_the_hash_unless_verify_is_off(small, tmp_path):
    folder = _saved(small, tmp_path)
    changed = small.embeddings.copy()
    changed[0, 0] += 1
    np.save(folder / "embeddings.npy", changed)
    with pytest.raises(DataError, match=r"embeddings\.npy does not match its sha256"):
        EmbeddingIndex.load(folder)
    assert EmbeddingIndex.load(folder, verify=False).embeddings[0, 0] == changed[0, 0]


def test_format_version_is_checked(small, tmp_path):
    folder = _saved(small, tmp_path)
    header = json.loads((folder / "index.json").read_text())
    header["format_version"] = index_module.FORMAT_VERSION + 1
    (folder / "index.json").write_text(json.dumps(header))
    with pytest.raises(DataError, match="upgrade harken"):
        EmbeddingIndex.load(folder)
    del header["dim"]
    header["format_version"] = index_module.FORMAT_VERSION
    (folder / "index.json").write_text(json.dumps(header))
    with pytest.raises(DataError, match=r"lacks \['dim'\]"):
        EmbeddingIndex.load(folder)


def test_errors_are_harken_errors():
    assert issubclass(DataError, HarkenError) and issubclass(ConfigError, HarkenError)


# --- without FAISS ----------------------------------------------------------------------------


def test_without_faiss_auto_falls_back_to_exact_and_says_so(monkeypatch, tmp_path):
    monkeypatch.setattr(index_module, "faiss_module", lambda: None)
    emb, files = _unit(np.random.default_rng(0), 40, 8), _files(40)
    index = EmbeddingIndex.build(emb, files, backend="auto", faiss_threshold=10)
    assert index.backend == "exact" and "faiss is not installed" in index.backend_note
    assert EmbeddingIndex.build(emb, files, faiss_threshold=100).backend_note is None
    with pytest.raises(ConfigError, match=r"pip install harken\[faiss\]"):
        EmbeddingIndex.build(emb, files, backend="faiss")
    # an index saved with the faiss backend loads as exact, with a warning
    folder = index.save(tmp_path / "idx")
    header = json.loads((folder / "index.json").read_text())
    header["backend"] = "faiss"
    (folder / "index.json").write_text(json.dumps(header))
    with pytest.warns(RuntimeWarning, match="faiss, which is not installed: exact search"):
        loaded = EmbeddingIndex.load(folder)
    assert loaded.backend == "exact"
    np.testing.assert_array_equal(loaded.search(emb[:3], 5)[1], index.search(emb[:3], 5)[1])


# --- FAISS ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def faiss_case():
    """5k seeded random unit vectors in 64-d, an HNSW index on them, and 200 queries."""
    if faiss_module() is None:
        pytest.skip("faiss-cpu is not installed")
    rng = np.random.default_rng(42)
    emb, queries = _unit(rng, 5000, 64), _unit(rng, 200, 64)
    index = EmbeddingIndex.build(emb, _files(5000), {"k": 1}, backend="auto", faiss_threshold=5000)
    return index, queries


@needs_faiss
def test_auto_picks_faiss_from_the_threshold_on(faiss_case):
    index, _ = faiss_case
    assert (index.backend, index.requested_backend, index.backend_note) == ("faiss", "auto", None)
    emb = index.embeddings[:4999]
    assert EmbeddingIndex.build(emb, index.files[:4999], faiss_threshold=5000).backend == "exact"


@needs_faiss
def test_faiss_recall_at_10_against_exact(faiss_case):
    index, queries = faiss_case
    _, approx = index.search(queries, 10)
    _, exact = exact_search(index.embeddings, queries, 10)
    assert _recall(approx, exact) >= 0.95


@needs_faiss
def test_faiss_save_load_round_trip_is_identical(faiss_case, tmp_path):
    index, queries = faiss_case
    folder = index.save(tmp_path / "idx")
    assert (folder / "faiss.index").is_file()
    header = json.loads((folder / "index.json").read_text())
    assert header["faiss"]["M"] == 32 and header["faiss"]["ef_search"] == 128
    loaded = EmbeddingIndex.load(folder)
    assert loaded.backend == "faiss"
    for a, b in zip(loaded.search(queries, 10), index.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)
    assert EmbeddingIndex.load(folder, ef_search=300).ef_search == 300


@needs_faiss
@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_lost_faiss_graph_is_rebuilt_with_a_warning(tmp_path, damage):
    rng = np.random.default_rng(3)
    emb, queries = _unit(rng, 1000, 16), _unit(rng, 20, 16)
    index = EmbeddingIndex.build(emb, _files(1000), backend="faiss")
    folder = index.save(tmp_path / "idx")
    if damage == "missing":
        (folder / "faiss.index").unlink()
    else:
        (folder / "faiss.index").write_bytes(b"\x00" * 64)
    with pytest.warns(RuntimeWarning, match="rebuilding the HNSW graph"):
        loaded = EmbeddingIndex.load(folder)
    assert loaded.backend == "faiss"
    # built single-threaded, the graph is rebuilt exactly as it was
    for a, b in zip(loaded.search(queries, 10), index.search(queries, 10), strict=True):
        np.testing.assert_array_equal(a, b)


@needs_faiss
def test_faiss_top_k_beyond_the_collection_is_filled_exactly():
    emb = _unit(np.random.default_rng(5), 30, 8)
    index = EmbeddingIndex.build(emb, _files(30), backend="faiss")
    _, indices = index.search(emb[:2], top_k=100)
    assert indices.shape == (2, 30)
    assert (indices >= 0).all() and all(sorted(r) == list(range(30)) for r in indices.tolist())


@needs_faiss
def test_queries_hnsw_answers_short_are_answered_exactly(monkeypatch):
    emb = _unit(np.random.default_rng(6), 50, 8)
    index = EmbeddingIndex.build(emb, _files(50), backend="faiss")
    real = index._faiss_index.search

    def short_second_row(q, k, params=None):
        scores, indices = real(q, k, params=params)
        scores[1, -1], indices[1, -1] = -np.inf, -1
        return scores, indices

    monkeypatch.setattr(index._faiss_index, "search", short_second_row)
    scores, indices = index.search(emb[:3], top_k=5)
    want_scores, want_indices = exact_search(index.embeddings, emb[1:2], 5)
    np.testing.assert_array_equal(indices[1], want_indices[0])
    np.testing.assert_array_equal(scores[1], want_scores[0])


def test_build_copies_the_callers_array():
    emb = np.eye(3, dtype=np.float32)
    index = EmbeddingIndex.build(emb, _files(3), backend="exact")
    emb[0, 0] = 5.0  # the caller's array stays writable and the index does not change
    assert index.embeddings[0, 0] == 1.0
    with pytest.raises(ValueError):
        index.embeddings[0, 0] = 2.0
