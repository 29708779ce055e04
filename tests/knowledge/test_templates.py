import json
from pathlib import Path

import pytest

from harken.errors import ConfigError, DataError
from harken.knowledge import get_generator
from harken.knowledge.templates import (
    HARKEN_SOUND_TEMPLATES,
    TEMPLATE_SETS,
    TemplateGenerator,
    gerund,
    humanize,
    load_templates,
)

CLIPCLAP = (
    Path(__file__).parents[3] / "shared" / "data" / "clipclap-prompts" / "prompt_templates.json"
)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("stove-fan", "stove fan"),
        ("put-down", "put down"),
        ("clean-dishes", "clean dishes"),
        ("clean_dishes", "clean dishes"),
        ("water:tap", "tap water"),
        ("board:chopping", "chopping board"),
        ("turn-on", "turn on"),
        ("ApplyEyeMakeup", "apply eye makeup"),
        ("BMX", "BMX"),
        ("  playing   bass guitar ", "playing bass guitar"),
        ("add banana to jug", "add banana to jug"),
    ],
)
def test_humanize(label, expected):
    assert humanize(label) == expected


@pytest.mark.parametrize("label", ["", "   ", ":", "-", None])
def test_humanize_rejects_empty_labels(label):
    with pytest.raises(ConfigError):
        humanize(label)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("put-down", "putting down"),
        ("cut onion", "cutting onion"),
        ("stir", "stirring"),
        ("shake", "shaking"),
        ("open", "opening"),
        ("peel", "peeling"),
        ("mix", "mixing"),
        ("pour", "pouring"),
        ("turn-on", "turning on"),
        ("squeeze", "squeezing"),
        ("tie", "tying"),
        ("wash", "washing"),
    ],
)
def test_gerund(label, expected):
    assert gerund(label) == expected


def test_template_generator_fills_every_template():
    gen = TemplateGenerator()
    out = gen.describe(["stove-fan", "water:tap"])
    assert out[0] == [t.format("stove fan") for t in HARKEN_SOUND_TEMPLATES]
    assert out[1][0] == "the sound of tap water."
    assert gen.name == "template"
    assert gen.config()["templates"] == list(HARKEN_SOUND_TEMPLATES)


def test_action_templates_use_the_gerund():
    out = TemplateGenerator("harken-action").describe(["put-down"])[0]
    assert out[0] == "the sound of someone putting down."
    assert TemplateGenerator(["{} / {gerund}"]).describe(["cut onion"]) == [
        ["cut onion / cutting onion"]
    ]


def test_custom_templates_without_humanize():
    gen = TemplateGenerator(["the sound of {}"], humanize_labels=False)
    assert gen.describe(["stove-fan"]) == [["the sound of stove-fan"]]


@pytest.mark.skipif(not CLIPCLAP.exists(), reason="shared data not available")
def test_clipclap_audio_templates_from_the_real_file():
    templates = load_templates(CLIPCLAP, "vggsound_audio_templates")
    assert templates[0] == "a {} can be heard."
    gen = get_generator(f"template:{CLIPCLAP}#vggsound_audio_templates")
    assert gen.describe(["dog barking"])[0][0] == "a dog barking can be heard."
    assert gen.config()["source"] == "prompt_templates.json#vggsound_audio_templates"
    with pytest.raises(DataError, match="vggsound_audio_templates"):
        load_templates(CLIPCLAP)  # several lists: a key is required
    with pytest.raises(DataError, match="nope"):
        load_templates(CLIPCLAP, "nope")


def test_template_file_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_templates(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_templates(bad)
    plain = tmp_path / "list.json"
    plain.write_text('["a {} sound."]')
    assert load_templates(plain) == ("a {} sound.",)


def test_bad_template_sets_and_inputs():
    with pytest.raises(ConfigError, match="unknown template set"):
        TemplateGenerator("nope")
    with pytest.raises(ConfigError, match="placeholders"):
        TemplateGenerator(["the sound of {thing}"])
    gen = TemplateGenerator()
    with pytest.raises(ConfigError, match="single string"):
        gen.describe("blender")
    with pytest.raises(ConfigError, match="empty"):
        gen.describe(["blender", " "])
    assert gen.describe([]) == []


@pytest.mark.parametrize("dataset", ["ucf", "activitynet", "vggsound"])
def test_clipclap_sets_are_the_published_prompts(dataset):
    published = json.loads(CLIPCLAP.read_text())
    script = f"get_clip_embeddings_{dataset}.py"
    assert TEMPLATE_SETS[f"clipclap-{dataset}-video"] == tuple(
        published[f"{script}:{dataset}_templates"]
    )
    assert TEMPLATE_SETS[f"clipclap-{dataset}-audio"] == tuple(
        published[f"{script}:{dataset}_audio_templates"]
    )
