"""Fixtures of the report tests: small real datasets (Kitchen20, av-mini) and a page check."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import pytest

CLASSES = ("blender", "chopping", "cutlery", "drawer", "microwave", "water-flowing", "fridge")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def k20_csv(shared_data, tmp_path_factory):
    """10 clips of each of 7 Kitchen20 classes, taken round-robin over their Freesound sources
    (so GZSL can hold out whole recording groups)."""
    out = tmp_path_factory.mktemp("k20") / "k20.csv"
    labels = Path(shared_data / "kitchen20" / "labels.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(labels.splitlines()))
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "label", "group"])
        for c in CLASSES:
            by_source: dict[str, list] = {}
            for r in rows:
                if r["label"] == c:
                    by_source.setdefault(r["source_id"], []).append(r)
            picked, queues = [], list(by_source.values())
            while len(picked) < 10 and any(queues):
                for q in queues:
                    if q and len(picked) < 10:
                        picked.append(q.pop(0))
            for r in picked:
                w.writerow([shared_data / "kitchen20" / r["path"], c, r["source_id"]])
    return out


# The tri-modal av-mini CSV and MC3 test settings are the protocol tests' own (one copy).
from protocols.conftest import FAST, avmini_trimodal  # noqa: E402, F401

PLOTLY_BUNDLE = "plotly.js v"  # the banner of the inlined plotly.min.js


def external_urls(page: str) -> list[str]:
    """http(s) URLs outside comments, data: URIs and inline scripts (what the page's markup
    would fetch or link), plus any script loaded from elsewhere (``<script src=...>``)."""
    page = re.sub(r"<!--.*?-->", "", page, flags=re.S)
    page = re.sub(r"data:[a-z/+.-]+;base64,[A-Za-z0-9+/=]+", "", page)
    loaded = re.findall(r"<script[^>]*\bsrc=[^>]*>", page)
    page = re.sub(r"<script[^>]*>.*?</script>", "", page, flags=re.S)
    return loaded + re.findall(r"https?://[^\s'\"<>]+", page)


def inline_scripts(page: str) -> list[str]:
    return re.findall(r"<script[^>]*>(.*?)</script>", page, flags=re.S)


@pytest.fixture
def check_page():
    """``check_page(html file, figure names)``: no external URL or script, every figure a PNG
    beside the page and inlined in it; returns the page text."""

    def check(page_path: Path, figures: list[str]) -> str:
        page = page_path.read_text(encoding="utf-8")
        assert external_urls(page) == []
        # the only code is plotly's bundle (inlined once) and the call that draws the map;
        # the bundle names URLs (map tiles, fonts) that a scatter plot never requests
        scripts = inline_scripts(page)
        assert sum(PLOTLY_BUNDLE in s for s in scripts) == (1 if scripts else 0)
        for s in scripts:
            if PLOTLY_BUNDLE not in s:
                assert not re.findall(r"https?://", s), s[:200]
        folder = page_path.parent / page_path.stem
        for name in figures:
            png = (folder / f"{name}.png").read_bytes()
            assert png.startswith(PNG)
            # the same image is inlined in the page
            assert f"{folder.name}/{name}.png" in page
        assert page.count("src='data:image/png;base64,") == len(list(folder.glob("*.png")))
        return page

    return check
