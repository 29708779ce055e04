"""Prompt-ensemble descriptions: each class name is put into a set of sentence templates.

This is the CLIP/CLAP-style "prompt ensemble" (Radford et al., 2021, §3.1.4; used for audio by
ClipClap-GZSL's audio templates, "a {} can be heard."): every template filled with the class name
is one description, and the class embedding is the (normalised) mean of their embeddings — see
:func:`harken.knowledge.classes.class_embeddings`.

Templates are ``str.format`` strings: ``{}`` is the humanized label (:func:`humanize`) and
``{gerund}`` the label with its first word in the -ing form (:func:`gerund`), for verb and action
labels ("put down" → "putting down").
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from harken.errors import ConfigError, DataError
from harken.knowledge.base import GENERATORS, check_items

# Any label: nouns ("blender"), verbs ("put down"), actions ("cut onion"), sound events.
HARKEN_SOUND_TEMPLATES = (
    "the sound of {}.",
    "a recording of {}.",
    "{} can be heard.",
    "the noise of {}.",
    "an audio clip of {}.",
)
# Verb or verb-noun labels ("wash", "put down", "cut onion"): the action as something done.
HARKEN_ACTION_TEMPLATES = (
    "the sound of someone {gerund}.",
    "a recording of someone {gerund}.",
    "a person {gerund} can be heard.",
    "the sound of {gerund} in a kitchen.",
    "the noise of {gerund}.",
)
# ClipClap-GZSL's prompt ensembles (Kurzendörfer et al. 2024, supplementary A.1/A.2; MIT-licensed
# code at github.com/dkurzend/ClipClap-GZSL, get_clip_embeddings_<dataset>.py): CLIP ("video")
# templates for w^v and CLAP ("audio") templates for w^a. UCF and ActivityNet share one pair.
CLIPCLAP_ACTION_VIDEO_TEMPLATES = tuple(
    f"a {kind} of {article} person {prep}{{}}."
    for prep in ("", "using ", "doing ", "during ", "performing ", "practicing ")
    for article in ("a", "the")
    for kind in ("photo", "video", "example", "demonstration")
)
CLIPCLAP_ACTION_AUDIO_TEMPLATES = (
    "a person {} can be heard.",
    "a example of a person {} can be heard.",
    "a demonstration of a person {} can be heard.",
    "the person {} can be heard.",
    "a example of the person {} can be heard.",
    "a demonstration of the person {} can be heard.",
    *(
        template
        for prep in ("using", "doing")
        for template in (
            f"a person {prep} {{}} can be heard.",
            f"a example of a person {prep} {{}} can be heard.",
            f"a demonstration of a person {prep} {{}} can be heard.",
            f"a example of the person {prep} {{}} can be heard.",
            f"a demonstration of the person {prep} {{}} can be heard.",
        )
    ),
    "a example of a person during {} can be heard.",
    "a demonstration of a person during {} can be heard.",
    "a example of the person during {} can be heard.",
    "a demonstration of the person during {} can be heard.",
    *(
        template
        for prep in ("performing", "practicing")
        for template in (
            f"a person {prep} {{}} can be heard.",
            f"a example of a person {prep} {{}} can be heard.",
            f"a demonstration of a person {prep} {{}} can be heard.",
            f"a example of the person {prep} {{}} can be heard.",
            f"a demonstration of the person {prep} {{}} can be heard.",
        )
    ),
)
CLIPCLAP_VGGSOUND_VIDEO_TEMPLATES = (
    "a photo of {}.",
    "a video of {}.",
    "a example of {}.",
    "a demonstration of {}.",
    "a photo of the person {}.",
    "a video of the {}.",
    "a example of the {}.",
    "a demonstration of the {}.",
)
CLIPCLAP_VGGSOUND_AUDIO_TEMPLATES = (
    "a {} can be heard.",
    "a example of a {} can be heard.",
    "a demonstration of a {} can be heard.",
    "the {} can be heard.",
    "a example of the {} can be heard.",
    "a demonstration of the {} can be heard.",
    "{} can be heard.",
    "a example of {} can be heard.",
    "a demonstration of {} can be heard.",
)

TEMPLATE_SETS: dict[str, tuple[str, ...]] = {
    # Both ensembles together: the label as a sound source and as an action being done
    # (the offline default class knowledge of `harken demo` / `harken predict`).
    "harken": HARKEN_SOUND_TEMPLATES + HARKEN_ACTION_TEMPLATES,
    "harken-sound": HARKEN_SOUND_TEMPLATES,
    "harken-action": HARKEN_ACTION_TEMPLATES,
    "clip-single": ("a photo of a {}.",),
    # ClipClap's ensembles (the published prompts, spelling included)
    "clipclap-ucf-video": CLIPCLAP_ACTION_VIDEO_TEMPLATES,
    "clipclap-ucf-audio": CLIPCLAP_ACTION_AUDIO_TEMPLATES,
    "clipclap-activitynet-video": CLIPCLAP_ACTION_VIDEO_TEMPLATES,
    "clipclap-activitynet-audio": CLIPCLAP_ACTION_AUDIO_TEMPLATES,
    "clipclap-vggsound-video": CLIPCLAP_VGGSOUND_VIDEO_TEMPLATES,
    "clipclap-vggsound-audio": CLIPCLAP_VGGSOUND_AUDIO_TEMPLATES,
    "sound-single": ("the sound of {}.",),
}

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_VOWELS = "aeiou"


def humanize(label: str) -> str:
    """Turn a dataset label into plain words.

    Rules, in order:

    1. Colon-separated parts are reversed and joined by spaces: EPIC-KITCHENS writes the head
       noun first and its modifiers after it, so ``"water:tap"`` → ``"tap water"``,
       ``"board:chopping"`` → ``"chopping board"``.
    2. Hyphens and underscores become spaces: ``"stove-fan"`` → ``"stove fan"``,
       ``"put-down"`` → ``"put down"``, ``"clean_dishes"`` → ``"clean dishes"``.
    3. A CamelCase word is split and lower-cased (all-capital words are kept):
       ``"ApplyEyeMakeup"`` → ``"apply eye makeup"``, ``"BMX"`` → ``"BMX"``.
    4. Runs of whitespace collapse to one space; the ends are stripped.

    Other text (case, punctuation, free-text narrations) is left as it is.

    Args:
        label: A class label or narration.

    Returns:
        The label in plain words.

    Raises:
        ConfigError: If the label is not a string or has no text.
    """
    if not isinstance(label, str) or not label.strip():
        raise ConfigError(f"cannot humanize the label {label!r}: expected a non-empty string")
    parts = [p for p in label.split(":") if p.strip()][::-1]
    words = " ".join(parts).replace("-", " ").replace("_", " ").split()
    out = []
    for word in words:
        pieces = _CAMEL.split(word)
        if len(pieces) > 1:
            out.extend(p if p.isupper() and len(p) > 1 else p.lower() for p in pieces)
        else:
            out.append(word)
    if not out:
        raise ConfigError(f"cannot humanize the label {label!r}: it has no words")
    return " ".join(out)


def _ing(verb: str) -> str:
    """English -ing form of one verb (regular spelling rules; irregular stress not handled)."""
    low = verb.lower()
    if low.endswith("ing") or len(low) < 2:
        return verb
    if low.endswith("ie"):
        return verb[:-2] + "ying"
    if low.endswith("e") and not low.endswith(("ee", "ye", "oe")) and len(low) > 2:
        return verb[:-1] + "ing"
    syllables = re.findall(r"[aeiouy]+", low)
    cvc = (
        len(low) >= 3
        and low[-1] not in _VOWELS + "wxy"
        and low[-2] in _VOWELS
        and low[-3] not in _VOWELS
    )
    if cvc and len(syllables) == 1:
        return verb + verb[-1] + "ing"  # put → putting, stir → stirring
    return verb + "ing"


def gerund(label: str) -> str:
    """The humanized label with its first word in the -ing form.

    ``"put-down"`` → ``"putting down"``, ``"cut onion"`` → ``"cutting onion"``,
    ``"shake"`` → ``"shaking"``, ``"open"`` → ``"opening"``. Meant for verb and verb-noun labels;
    a noun label gets a meaningless form (``"blender"`` → ``"blendering"``), so use
    :data:`HARKEN_SOUND_TEMPLATES` for those.
    """
    return _gerund_words(humanize(label))


def _gerund_words(words: str) -> str:
    first, _, rest = words.partition(" ")
    return f"{_ing(first)} {rest}".strip()


def load_templates(path: str | Path, key: str | None = None) -> tuple[str, ...]:
    """Read a template ensemble from a JSON file.

    The file holds a list of template strings, or an object of named lists, such as
    ClipClap-GZSL's ``prompt_templates.json``, whose keys look like
    ``"get_clip_embeddings_vggsound.py:vggsound_audio_templates"``; ``key`` may be the full key or
    the part after the last colon (``"vggsound_audio_templates"``).

    Args:
        path: The JSON file.
        key: Which list to use when the file holds several.

    Returns:
        The templates.

    Raises:
        DataError: If the file is missing, is not JSON, or holds no such list of strings.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(f"template file {path} does not exist") from e
    except json.JSONDecodeError as e:
        raise DataError(f"template file {path} is not valid JSON: {e}") from e
    if isinstance(data, dict):
        matches = [k for k in data if key is not None and (k == key or k.split(":")[-1] == key)]
        if key is None and len(data) == 1:
            matches = list(data)
        if len(matches) != 1:
            names = ", ".join(k.split(":")[-1] for k in data)
            got = f" (got {key!r})" if key else ""
            raise DataError(f"template file {path}: pass key= one of: {names}{got}")
        data = data[matches[0]]
    if not isinstance(data, list) or not data or not all(isinstance(t, str) for t in data):
        raise DataError(f"template file {path}: expected a non-empty list of template strings")
    return tuple(data)


def _resolve(templates: str | Sequence[str]) -> tuple[str, tuple[str, ...]]:
    """(source name, templates) from a set name, ``file.json#key``, or a list of templates."""
    if not isinstance(templates, str):
        return "custom", tuple(templates)
    if templates in TEMPLATE_SETS:
        return templates, TEMPLATE_SETS[templates]
    if "{" in templates:  # one literal template, e.g. "this is a sound of {}."
        return "custom", (templates,)
    if templates.endswith(".txt"):
        try:
            lines = Path(templates).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError as e:
            raise DataError(f"template file {templates} does not exist") from e
        return Path(templates).name, tuple(t.strip() for t in lines if t.strip())
    file, _, key = templates.partition("#")
    if file.endswith(".json"):
        return f"{Path(file).name}#{key}" if key else Path(file).name, load_templates(
            file, key or None
        )
    raise ConfigError(
        f"unknown template set {templates!r}; choose one of: {', '.join(TEMPLATE_SETS)}, "
        "a JSON file as 'path/to/templates.json#key', a .txt file with one template per line, "
        "or one template with {} for the label"
    )


class TemplateGenerator:
    """Describes each label by filling a template ensemble.

    Args:
        templates: A set name from :data:`TEMPLATE_SETS`, a JSON file as
            ``"path/to/prompt_templates.json#key"`` (see :func:`load_templates`), a ``.txt`` file
            with one template per line, one literal template holding ``{}``, or a list of
            templates.
        humanize_labels: Run :func:`humanize` on each item before filling it in.
        spec: Registry spec (``"template:<templates>"``); overrides ``templates``.
    """

    def __init__(
        self,
        templates: str | Sequence[str] = "harken-sound",
        humanize_labels: bool = True,
        spec: str | None = None,
    ) -> None:
        self.source, self.templates = _resolve(spec or templates)
        if not self.templates:
            raise ConfigError("a template ensemble needs at least one template")
        for t in self.templates:
            try:
                t.format("x", gerund="x")
            except (IndexError, KeyError, ValueError) as e:
                raise ConfigError(
                    f"template {t!r} must use only {{}} and {{gerund}} placeholders ({e!r})"
                ) from e
        self.humanize_labels = humanize_labels
        self.name = "template" if self.source == "harken-sound" else f"template:{self.source}"

    def config(self) -> dict:
        return {
            "generator": "template",
            "source": self.source,
            "templates": list(self.templates),
            "humanize": self.humanize_labels,
        }

    def describe(self, items: Sequence[str]) -> list[list[str]]:
        out = []
        for item in check_items(items):
            label = humanize(item) if self.humanize_labels else " ".join(item.split())
            out.append([t.format(label, gerund=_gerund_words(label)) for t in self.templates])
        return out


@GENERATORS.register("template")
def _template_factory(**kwargs) -> TemplateGenerator:
    return TemplateGenerator(**kwargs)
