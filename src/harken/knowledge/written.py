"""Descriptions read from a file: ``descriptions:<file.csv | file.json | shipped set>``.

For class knowledge written ahead of time — by an LLM run elsewhere (KDA's published
descriptions), by a person, or exported from an earlier run (``descriptions.csv``). A CSV has
columns ``class,text`` (one row per description) or ``name,description_1,...`` (KDA's layout);
a JSON file maps each class to a list of texts. Shipped sets (``harken/knowledge/data/``):

* ``kitchen20`` — two sound descriptions per Kitchen20 class in the style of Gebhard et al.'s
  LLM descriptions (Table 2: what the action sounds like), written by harken's developer
  assistant (an LLM) from the 20 class names alone, in one pass, never edited after an
  evaluation. They were tried *after* template knowledge had been evaluated on the Kitchen20
  folds, so Kitchen20 scores with them are not a clean held-out figure.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from harken.errors import ConfigError, DataError
from harken.knowledge.base import GENERATORS, check_items
from harken.knowledge.classes import read_descriptions

DATA = Path(__file__).parent / "data"
SHIPPED = {"kitchen20": DATA / "kitchen20-descriptions.csv"}


def load_description_file(path: str | Path) -> dict[str, list[str]]:
    """``{class: [text, ...]}`` from a CSV (see :func:`read_descriptions`) or JSON file."""
    path = Path(path)
    if path.suffix.lower() != ".json":
        return read_descriptions(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise DataError(f"description file {path} does not exist") from e
    except json.JSONDecodeError as e:
        raise DataError(f"description file {path} is not valid JSON: {e}") from e
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and v and all(isinstance(t, str) and t.strip() for t in v)
        for v in data.values()
    ):
        raise DataError(f"{path}: expected an object mapping each class to a list of texts")
    return {str(k): list(v) for k, v in data.items()}


class FileDescriptions:
    """Looks each item up in a description file (exact class name, then case/space-folded).

    Args:
        spec: A shipped set name (``kitchen20``) or a CSV/JSON file path.
    """

    def __init__(self, spec: str | None = None, path: str | None = None) -> None:
        source = spec or path
        if not source:
            raise ConfigError(
                "give a description file: descriptions:<file.csv|file.json> or "
                f"descriptions:<{'|'.join(SHIPPED)}>"
            )
        self.path = SHIPPED.get(source, Path(source).expanduser())
        self.texts = load_description_file(self.path)
        self._folded = {_fold(k): k for k in self.texts}
        self.name = f"descriptions:{source}"
        self.sha256 = hashlib.sha256(Path(self.path).read_bytes()).hexdigest()

    def config(self) -> dict:
        return {"generator": "descriptions", "file": Path(self.path).name, "sha256": self.sha256}

    def describe(self, items: Sequence[str]) -> list[list[str]]:
        items = check_items(items, "class name")
        keys = [item if item in self.texts else self._folded.get(_fold(item)) for item in items]
        missing = [item for item, key in zip(items, keys, strict=True) if key is None]
        if missing:
            raise DataError(
                f"{self.path}: no descriptions for {missing[:5]}"
                f"{' ...' if len(missing) > 5 else ''}; add rows for them or use another "
                "generator (e.g. template)"
            )
        return [list(self.texts[key]) for key in keys]


def _fold(name: str) -> str:
    return " ".join(name.replace("-", " ").replace("_", " ").lower().split())


@GENERATORS.register("descriptions")
def _descriptions(**kwargs) -> FileDescriptions:
    return FileDescriptions(**kwargs)
