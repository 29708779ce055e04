"""`harken report` on detect, bench-detect and bench-zeroshot folders made by the real commands
on real Kitchen20 clips, and the report never replacing files harken did not write."""

from __future__ import annotations

import base64
import csv
import json
import math
import re
import shutil
from pathlib import Path

import pytest

from harken import api
from harken.errors import DataError
from harken.reports import kinds
from harken.reports.html import FIGURES_MARKER, GENERATOR, STYLE, write_report

CLIPS = ["audio/blender/0-158737-B-0.flac", "audio/water-flowing/0-155899-A-7.flac"]
LABELS = ["blender", "water-flowing", "chopping"]


@pytest.fixture(scope="module")
def detect_dir(shared_data, tmp_path_factory) -> Path:
    """``harken detect`` of two real clips into a folder."""
    out = tmp_path_factory.mktemp("detect") / "run"
    api.detect([str(shared_data / "kitchen20" / c) for c in CLIPS], LABELS, out=out)
    return out


@pytest.fixture(scope="module")
def bench_detect_dir(shared_data, tmp_path_factory) -> Path:
    """``harken bench detect`` with its smallest settings: one seed, and a Kitchen20 folder
    whose labels.csv keeps three classes (real clips, all folds), so one dev and one test
    soundscape are built and scored over the backend's whole grid."""
    root = tmp_path_factory.mktemp("k20") / "kitchen20"
    root.mkdir()
    with open(shared_data / "kitchen20" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            if r["label"] in LABELS:
                w.writerow({**r, "path": str(shared_data / "kitchen20" / r["path"])})
    out = tmp_path_factory.mktemp("bench-detect") / "run"
    api.bench_detect([0], out, data_dir=str(root.parent))
    return out


@pytest.fixture(scope="module")
def zeroshot_dir(shared_data, tmp_path_factory) -> Path:
    """``harken bench zeroshot`` over two small CSV datasets of real clips (3 and 2 classes)."""
    folder = tmp_path_factory.mktemp("zeroshot")
    with open(shared_data / "kitchen20" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    datasets = []
    for name, classes in (("three", LABELS), ("two", ["drawer", "microwave"])):
        path = folder / f"{name}.csv"
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "label"])
            for c in classes:
                for r in [r for r in rows if r["label"] == c][:4]:
                    w.writerow([shared_data / "kitchen20" / r["path"], c])
        datasets.append(str(path))
    out = folder / "bench"
    api.bench_zeroshot(datasets, out)
    return out


def _section(page: str, title: str) -> str:
    return page.split(f"<h2>{title}</h2>", 1)[1].split("</section>", 1)[0]


def _rows(html_text: str) -> list[list[str]]:
    body = html_text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return [re.findall(r"<td>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", body)]


def _inlined(page: str) -> list[bytes]:
    return [base64.b64decode(x) for x in re.findall(r"data:image/png;base64,([^']+)'", page)]


# --- the three kinds ---------------------------------------------------------------------------


def test_detect_report_shows_settings_segments_and_each_timeline(detect_dir, check_page):
    manifest = json.loads((detect_dir / "manifest.json").read_text())
    names = [f"timeline-{Path(f['timeline']).stem}" for f in manifest["files"]]
    page = check_page(write_report(detect_dir), names)
    assert GENERATOR in page and "detections — 2 files — 3 labels" in page
    segments = json.loads((detect_dir / "segments.json").read_text())
    assert segments  # the clips' own labels are found
    rows = _rows(_section(page, "Segments"))
    assert len(rows) == len(segments)
    for row, s in zip(rows, segments, strict=True):
        assert row[0].endswith(Path(s["file"]).name)
        assert (float(row[1]), float(row[2]), row[3]) == (s["start"], s["end"], s["label"])
    theta = manifest["config"]["thresholds"]["blender"]["threshold"]
    per_label = _rows(_section(page, "Settings").split("</table>", 1)[1])
    assert per_label[0] == ["blender", f"{theta:.4g}", "default"]
    # the timelines inlined are the very pictures detect wrote
    written = [(detect_dir / f["timeline"]).read_bytes() for f in manifest["files"]]
    assert _inlined(page) == written
    assert "href='segments.csv'" in page


def test_long_segment_tables_and_many_timelines_are_capped(detect_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(kinds, "MAX_SEGMENT_ROWS", 1)
    monkeypatch.setattr(kinds, "MAX_TIMELINES", 1)
    monkeypatch.setattr(kinds, "MAX_FILE_ROWS", 1)
    segments = json.loads((detect_dir / "segments.json").read_text())
    page_path = write_report(detect_dir, tmp_path / "capped.html")
    page = page_path.read_text()
    assert len(_rows(_section(page, "Segments"))) == 1
    assert f"the first 1 of {len(segments)} segments" in page
    assert len(_rows(_section(page, "Files"))) == 1
    assert "the first 1 of 2 files" in page
    assert len(_inlined(page)) == 1
    (linked,) = re.findall(r"<li><a href='([^']+)'>", page)
    assert linked.endswith(".png") and (tmp_path / linked).resolve().is_file()
    assert (tmp_path / linked).resolve().parent == (detect_dir / "timelines").resolve()


def test_bench_detect_report_has_table_dev_choices_and_test_timelines(bench_detect_dir, check_page):
    results = json.loads((bench_detect_dir / "results.json").read_text())
    scapes = sorted(p.stem for p in (bench_detect_dir / "timelines").glob("*.png"))
    assert scapes == ["test-s0-0"]
    page = check_page(
        write_report(bench_detect_dir), ["dev-settings", "per-class-f1", "timeline-test-s0-0"]
    )
    rows = _rows(_section(page, "Results"))
    assert len(rows) == len(results["table"]) == 6
    for row, r in zip(rows, results["table"], strict=True):
        assert row[:3] == [r["system"], r["split"], f"{r['event_F1']:.3f}"]
        assert row[5] == f"{r['PSDS1']:.3f}"
    chosen = results["chosen_on_dev"]
    dev = _section(page, "Chosen on dev")
    assert len(_rows(dev)) == len(results["tried_on_dev"]) == 10  # 2 windows × 5 medians
    assert f"median {chosen['smooth_s']:g} s, threshold {chosen['threshold']:.4g}" in dev
    thresholds = _rows(_section(page, "Per-label thresholds from the dev annotations"))
    for label, value in thresholds:
        got = results["per_label_thresholds_from_dev"][label]
        assert value == ("∞ (never fires)" if math.isinf(got) else f"{got:.4g}")
    md = (bench_detect_dir / "results.md").read_text()
    assert "[report.html](report.html)" in md and "(report/dev-settings.png)" in md


def test_bench_zeroshot_report_links_each_datasets_own_report(zeroshot_dir, check_page):
    bench = json.loads((zeroshot_dir / "bench.json").read_text())
    page = check_page(write_report(zeroshot_dir, maps=False), ["ua-vs-chance"])
    assert "zero-shot benchmark — backend bridge — 2 datasets" in page
    rows = _rows(_section(page, "Results"))
    assert [r[0] for r in rows] == [d["dataset"] for d in bench["datasets"]]
    for row, d in zip(rows, bench["datasets"], strict=True):
        ua, low, high = (
            float(x) for x in re.fullmatch(r"([\d.]+)  \[([\d.]+), ([\d.]+)\]", row[2]).groups()
        )
        assert ua == pytest.approx(d["UA"], abs=1e-3) and low <= ua <= high
        assert float(row[5]) == pytest.approx(1 / d["classes"], abs=1e-3)  # chance
        (href,) = re.findall(r"href='([^']+)'", row[-1])
        sub_page = zeroshot_dir / href
        assert sub_page == zeroshot_dir / d["run"] / "report.html"
        sub = sub_page.read_text()
        assert GENERATOR in sub and "all-classes" in sub and "per-class-recall" in sub
    assert "[report.html](report.html)" in (zeroshot_dir / "bench.md").read_text()


def test_a_folder_of_no_known_kind_is_refused_naming_it(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        write_report(empty)
    for expected in (str(empty), "results.json", "bench.json", "segments.json", "harken detect"):
        assert expected in str(e.value)
    other = tmp_path / "other"
    other.mkdir()
    (other / "results.json").write_text('{"accuracy": 1}')
    with pytest.raises(DataError, match="names no protocol"):
        write_report(other)
    (other / "results.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        write_report(other)


# --- never replacing files harken did not write ------------------------------------------------


def test_an_existing_page_that_is_no_harken_report_is_never_replaced(detect_dir, tmp_path):
    mine = tmp_path / "notes.html"
    mine.write_text("<html><body>my notes</body></html>")
    with pytest.raises(DataError, match="not a harken report"):
        write_report(detect_dir, mine)
    assert mine.read_text() == "<html><body>my notes</body></html>"
    assert not (tmp_path / "notes").exists()
    ours = write_report(detect_dir, tmp_path / "ours.html")
    assert write_report(detect_dir, ours) == ours  # a harken report is replaced


def test_a_figure_folder_with_other_files_is_never_written_into(detect_dir, tmp_path):
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "holiday.png").write_bytes(b"mine")
    with pytest.raises(DataError, match=r"holiday\.png"):
        write_report(detect_dir, tmp_path / "r.html")
    assert (tmp_path / "r" / "holiday.png").read_bytes() == b"mine"
    assert not (tmp_path / "r.html").exists()
    # the run folder's own timelines/ is no report's figure folder either
    before = sorted(p.name for p in (detect_dir / "timelines").iterdir())
    with pytest.raises(DataError, match="no harken report wrote"):
        write_report(detect_dir, detect_dir / "timelines.html")
    assert sorted(p.name for p in (detect_dir / "timelines").iterdir()) == before


def test_a_new_report_replaces_only_its_own_figures(detect_dir, bench_detect_dir, tmp_path):
    page = write_report(bench_detect_dir, tmp_path / "r.html")
    folder = tmp_path / "r"
    assert (folder / "dev-settings.png").is_file()
    listed = json.loads((folder / FIGURES_MARKER).read_text())["figures"]
    assert sorted(listed) == sorted(p.name for p in folder.glob("*.png"))
    write_report(detect_dir, page)  # same page, another folder's report
    assert not (folder / "dev-settings.png").exists()  # stale figures of the earlier report go
    assert sorted(p.name for p in folder.glob("*.png")) == sorted(
        f"timeline-{p.stem}.png" for p in (detect_dir / "timelines").glob("*.png")
    )


def test_pages_written_before_the_marker_are_still_recognised(detect_dir, tmp_path):
    """A report from before the generator tag and marker file: its page holds the report's
    style, its figure folder only the figures the page names."""
    old = tmp_path / "old.html"
    old.write_text(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>\n"
        f"<title>x</title><style>{STYLE}</style></head><body><figure><figcaption>recall "
        "(old/per-class-recall.png)</figcaption></figure></body></html>"
    )
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "per-class-recall.png").write_bytes(b"old figure")
    write_report(detect_dir, old)
    assert GENERATOR in old.read_text()
    assert not (tmp_path / "old" / "per-class-recall.png").exists()
    # but a file the old page does not name is not harken's
    shutil.rmtree(tmp_path / "old")
    old.write_text(old.read_text().replace(GENERATOR, ""))
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "unnamed.png").write_bytes(b"?")
    with pytest.raises(DataError, match=r"unnamed\.png"):
        write_report(detect_dir, old)
