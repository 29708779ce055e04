import json
import threading

import pytest

from harken.knowledge.cache import (
    CachedGenerator,
    DescriptionCache,
    cache_dir,
    description_key,
)

from .fakes import CountingGenerator


def test_nothing_is_generated_twice(tmp_path):
    path = tmp_path / "descriptions.jsonl"
    items = ["open door", "cut onion", "open door", "wash plate"]
    first = CountingGenerator()
    out1 = CachedGenerator(first, path).describe(items)
    assert first.calls == 1
    assert first.items == ["open door", "cut onion", "wash plate"]  # distinct misses only
    assert out1[0] == out1[2] == ["open door sounds #0"]

    second = CountingGenerator()  # a new process would start like this
    cached = CachedGenerator(second, DescriptionCache(path))
    assert cached.describe(items) == out1
    assert second.calls == 0
    assert cached.hits == 4 and cached.misses == 0

    cached.describe(["open door", "stir pot"])  # only the new item is generated
    assert second.items == ["stir pot"]


def test_key_covers_the_generator_config(tmp_path):
    path = tmp_path / "c.jsonl"
    CachedGenerator(CountingGenerator(tag="v1"), path).describe(["open door"])
    other = CountingGenerator(tag="v2")
    CachedGenerator(other, path).describe(["open door"])
    assert other.calls == 1
    a = description_key({"generator": "x", "prompt": "p"}, "open door")
    assert a == description_key({"prompt": "p", "generator": "x"}, "open door")
    assert a != description_key({"generator": "x", "prompt": "q"}, "open door")
    assert len(a) == 64


def test_truncated_line_is_skipped_and_file_stays_readable(tmp_path):
    path = tmp_path / "c.jsonl"
    CachedGenerator(CountingGenerator(), path).describe(["a", "b"])
    with open(path, "a") as f:
        f.write('{"key": "deadbeef", "descrip')  # a writer crashed mid-line
    gen = CountingGenerator()
    cached = CachedGenerator(gen, path)
    assert cached.describe(["a", "b", "c"])[2] == ["c sounds #0"]
    assert gen.items == ["c"]
    lines = path.read_text().splitlines()
    assert lines[-1].startswith('{"key"') and json.loads(lines[-1])["item"] == "c"
    with pytest.warns(UserWarning, match="malformed"):
        fresh = DescriptionCache(path)
    assert len(fresh) == 3


def test_concurrent_writers_do_not_interleave(tmp_path):
    path = tmp_path / "c.jsonl"

    def work(worker: int) -> None:
        cache = DescriptionCache(path)
        for i in range(50):
            cache.put_many([(f"{worker}-{i}", "g", f"item {i}", [f"text {worker} {i}" * 20])])

    threads = [threading.Thread(target=work, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(records) == 200
    assert len(DescriptionCache(path)) == 200


def test_cache_dir_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("HARKEN_CACHE_DIR", str(tmp_path / "hc"))
    assert cache_dir() == tmp_path / "hc"
    assert cache_dir().is_dir()
    assert DescriptionCache().path == tmp_path / "hc" / "descriptions.jsonl"
