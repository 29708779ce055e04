import csv
from pathlib import Path

import numpy as np
import pytest

from harken.errors import ConfigError, DataError, ModelUnavailableError
from harken.knowledge import (
    CachedGenerator,
    class_embeddings,
    class_texts,
    export_descriptions,
    get_generator,
    humanize,
    read_descriptions,
)

from .fakes import CountingGenerator, HashTextEncoder

KDA_UCF = Path(__file__).parents[3] / "shared" / "data" / "kda-descriptions" / "UCF.csv"

# Two classes, five clips; "open door" is narrated on two clips of class "open".
NARRATIONS = [
    ("open", "open door"),
    ("open", "open door"),
    ("open", "open fridge"),
    ("cut", "cut onion"),
    ("cut", "slice onion"),
]


def test_class_names_are_humanized_and_described():
    gen = CountingGenerator()
    texts = class_texts(gen, ["stove-fan", "water:tap"])
    assert list(texts) == ["stove-fan", "water:tap"]
    assert texts["water:tap"] == ["tap water sounds #0"]
    assert gen.items == ["stove fan", "tap water"]


def test_each_distinct_narration_is_described_once_and_multiplicity_kept():
    gen = CountingGenerator()
    texts = class_texts(gen, ["open", "cut"], NARRATIONS)
    assert gen.calls == 1
    assert gen.items == ["open door", "open fridge", "cut onion", "slice onion"]
    assert texts["open"] == ["open door sounds #0", "open door sounds #0", "open fridge sounds #0"]
    assert texts["cut"] == ["cut onion sounds #0", "slice onion sounds #0"]


def test_class_embeddings_match_a_hand_computation():
    enc = HashTextEncoder(dim=6)
    texts = {"a": ["x", "x", "y"], "b": ["z"]}
    raw = class_embeddings(texts, enc, ["b", "a"], normalize=False)
    vx, vy, vz = (enc.vector(t).astype(np.float64) for t in "xyz")
    np.testing.assert_allclose(raw[0], vz, rtol=1e-6)
    np.testing.assert_allclose(raw[1], (2 * vx + vy) / 3, rtol=1e-6)
    assert raw.dtype == np.float32 and raw.shape == (2, 6)
    assert enc.batches[0] == ["z", "x", "y"]  # every distinct text embedded once, in one batch

    unit = class_embeddings(texts, enc, ["b", "a"])  # CLAP/ClipClap ensemble rule
    ux, uy = vx / np.linalg.norm(vx), vy / np.linalg.norm(vy)
    mean = (2 * ux + uy) / 3
    np.testing.assert_allclose(unit[1], mean / np.linalg.norm(mean), rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, rtol=1e-6)


def test_class_knowledge_keeps_every_text_embedding_from_one_encoder_pass():
    from harken.knowledge.classes import class_knowledge

    enc = HashTextEncoder(dim=6)
    texts = {"a": ["x", "x", "y"], "b": ["z"]}
    means, members = class_knowledge(texts, enc, ["b", "a"])
    assert len(enc.batches) == 1
    vx, vy = (enc.vector(t).astype(np.float64) for t in "xy")
    ux, uy = vx / np.linalg.norm(vx), vy / np.linalg.norm(vy)
    np.testing.assert_allclose(members[1], np.stack([ux, ux, uy]), rtol=1e-6)
    assert members[0].shape == (1, 6) and members[1].dtype == np.float32
    np.testing.assert_array_equal(means, class_embeddings(texts, enc, ["b", "a"]))


def test_per_narration_embedding_is_the_mean_over_the_class_clips():
    """Gebhard et al. (2024) §3: one description per clip, SBERT-embedded, averaged per class."""
    gen, enc = CountingGenerator(), HashTextEncoder()
    texts = class_texts(gen, ["open", "cut"], NARRATIONS)
    emb = class_embeddings(texts, enc, ["open", "cut"], normalize=False)
    for row, cls in enumerate(["open", "cut"]):
        per_clip = [enc.vector(f"{n} sounds #0") for c, n in NARRATIONS if c == cls]
        np.testing.assert_allclose(emb[row], np.mean(per_clip, axis=0), rtol=1e-6)


def test_template_ensemble_embedding_is_the_normalised_mean():
    gen, enc = get_generator("template"), HashTextEncoder()
    texts = class_texts(gen, ["blender"])
    emb = class_embeddings(texts, enc, ["blender"])
    unit = [enc.vector(t) / np.linalg.norm(enc.vector(t)) for t in texts["blender"]]
    mean = np.mean(unit, axis=0)
    np.testing.assert_allclose(emb[0], mean / np.linalg.norm(mean), rtol=1e-5)


def test_cached_generator_in_class_texts(tmp_path):
    gen = CountingGenerator()
    cached = CachedGenerator(gen, tmp_path / "c.jsonl")
    first = class_texts(cached, ["open", "cut"], NARRATIONS)
    second = class_texts(
        CachedGenerator(CountingGenerator(), tmp_path / "c.jsonl"), ["open", "cut"], NARRATIONS
    )
    assert first == second and gen.calls == 1


@pytest.mark.parametrize(
    ("classes", "match"),
    [([], "empty"), (["open", ""], "non-empty"), (["open", "open"], "twice"), ("open", "list")],
)
def test_bad_class_lists(classes, match):
    with pytest.raises(ConfigError, match=match):
        class_texts(CountingGenerator(), classes)
    with pytest.raises(ConfigError, match=match):
        class_embeddings({"open": ["x"]}, HashTextEncoder(), classes)


def test_bad_narrations():
    gen = CountingGenerator()
    with pytest.raises(DataError, match="row 1: class 'stir'"):
        class_texts(gen, ["open"], [("open", "open door"), ("stir", "stir pot")])
    with pytest.raises(DataError, match=r"row 0 .* empty narration"):
        class_texts(gen, ["open"], [("open", "  ")])
    with pytest.raises(DataError, match="no narration"):
        class_texts(gen, ["open", "cut"], [("open", "open door")])
    with pytest.raises(DataError, match="pair"):
        class_texts(gen, ["open"], ["open door"])


def test_missing_texts_and_bad_encoder_output():
    with pytest.raises(DataError, match="'cut' has no texts"):
        class_embeddings({"open": ["x"]}, HashTextEncoder(), ["open", "cut"])

    class Broken(HashTextEncoder):
        def embed(self, batch):
            return np.zeros((1, 3), np.float32)

    with pytest.raises(DataError, match="shape"):
        class_embeddings({"open": ["x", "y"]}, Broken(), ["open"])


def test_generator_without_description_is_reported():
    class Silent(CountingGenerator):
        def describe(self, items):
            return [[] for _ in items]

    with pytest.raises(DataError, match="no description"):
        class_texts(Silent(), ["open"])


def test_export_and_read_descriptions(tmp_path):
    texts = {"open": ['a, quoted "door"', 'a, quoted "door"', "b"], "cut": ["c"]}
    path = export_descriptions(texts, tmp_path)
    assert path == tmp_path / "descriptions.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows == [["class", "text"], ["open", 'a, quoted "door"'], ["open", "b"], ["cut", "c"]]
    assert [p.name for p in tmp_path.iterdir()] == ["descriptions.csv"]  # no temp file left
    assert read_descriptions(path) == {"open": ['a, quoted "door"', "b"], "cut": ["c"]}


@pytest.mark.skipif(not KDA_UCF.exists(), reason="shared data not available")
def test_read_kda_descriptions():
    texts = read_descriptions(KDA_UCF)
    assert len(texts) == 101
    assert all(len(v) == 3 for v in texts.values())
    assert texts["Apply Eye Makeup"][2].startswith("Quiet environment")


def test_read_descriptions_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_descriptions(tmp_path / "nope.csv")
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="expected columns"):
        read_descriptions(bad)


KITCHEN20 = Path(__file__).parents[3] / "shared" / "data" / "kitchen20" / "labels.csv"


@pytest.mark.slow
@pytest.mark.skipif(not KITCHEN20.exists(), reason="shared data not available")
def test_kitchen20_template_class_embeddings_with_minilm(tmp_path):
    """End to end on the real Kitchen20 classes: templates → MiniLM → 20 unit class vectors."""
    encoders = pytest.importorskip("harken.encoders.base")
    try:
        encoder = encoders.get_encoder("minilm")
    except ModelUnavailableError as e:
        pytest.skip(f"minilm encoder not available: {e}")
    with open(KITCHEN20, newline="") as f:
        classes = list(dict.fromkeys(row["label"] for row in csv.DictReader(f)))
    assert len(classes) == 20
    gen = CachedGenerator(get_generator("template"), tmp_path / "c.jsonl")
    texts = class_texts(gen, classes)
    emb = class_embeddings(texts, encoder, classes)
    assert emb.shape == (20, 384)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, rtol=1e-5)
    # Each class's own name is nearer its ensemble embedding than most other classes' are.
    names = encoder.embed([humanize(c) for c in classes])
    sims = names @ emb.T
    assert (sims.argmax(axis=1) == np.arange(20)).mean() >= 0.9
    assert export_descriptions(texts, tmp_path).stat().st_size > 0
