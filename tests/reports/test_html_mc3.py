"""`harken report` for discovery, retrieval and linear-probe runs (small real runs): the tables
carry the seed spread and bootstrap CIs computed from the runs' per-clip files, the retrieval
figure is an R@k curve at every k."""

from __future__ import annotations

import csv
import html
import re
import shutil

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from harken.experiment import ExperimentConfig, run_experiment
from harken.metrics.bootstrap import paired_bootstrap_ci, recall_at, resample
from harken.reports.html import BOOTSTRAP_SEED, RESAMPLES, write_report

from .conftest import FAST

#: the tri-modal CSVs here have many one-clip classes (a warning meant for classification)
pytestmark = pytest.mark.filterwarnings("ignore:.*have a single clip")
#: ``mean ± spread  [low, high]`` (a frozen encoder's cell has no spread)
CELL = re.compile(r"^(-?[\d.]+)(?: ± ([\d.]+))?(?:\s+\[(-?[\d.]+), (-?[\d.]+)\])?$")


def _run(dataset, out, protocol, options=None, mc3=None, seeds=(0,)):
    config = ExperimentConfig(
        dataset=str(dataset),
        protocol=protocol,
        protocol_options=options or {},
        methods=["mc3"],
        method_options={"mc3": mc3 or dict(FAST)},
        seeds=list(seeds),
        progress=False,
    )
    run_experiment(config, out)
    return out


def row_cells(page: str, *first: str) -> list[tuple]:
    """The parsed cells after the leading ``first`` cells of the table row that starts so."""
    for tr in re.findall(r"<tr>(.*?)</tr>", page, flags=re.S):
        cells = [html.unescape(c) for c in re.findall(r"<td>(.*?)</td>", tr, flags=re.S)]
        if tuple(cells[: len(first)]) == first:
            out = []
            for c in cells[len(first) :]:
                m = CELL.match(c)
                out.append(tuple(float(x) if x else None for x in m.groups()) if m else c)
            return out
    raise AssertionError(f"no row {first} in the page")


def _rows(path) -> list[dict]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


@pytest.fixture(scope="module")
def discovery_run(avmini_trimodal, tmp_path_factory):
    return _run(avmini_trimodal, tmp_path_factory.mktemp("d") / "run", "discovery", seeds=(0, 1))


@pytest.fixture(scope="module")
def retrieval_run(avmini_trimodal, tmp_path_factory):
    options = {"group_by": "clip", "sounding_only": False}
    out = tmp_path_factory.mktemp("r") / "run"
    return _run(avmini_trimodal, out, "retrieval", options, seeds=(0, 1))


def test_discovery_report_shows_spread_and_the_bootstrap_ci_of_the_stored_scores(
    discovery_run, check_page
):
    page = check_page(write_report(discovery_run), ["discovery-AV", "discovery-AL"])
    assert "ROC and precision–recall" in page
    assert "standard deviation over training seeds" in page and "95% CI" in page
    av_roc, av_pr, al_roc, al_pr = row_cells(page, "mc3")
    # recompute AV ROC-AUC's interval directly: stratified resamples of the clips, the same
    # resample for both seeds, scikit-learn on each
    rows = _rows(discovery_run / "scores.csv")
    seeds = [sorted((r for r in rows if r["seed"] == s), key=lambda r: r["clip_id"]) for s in "01"]
    y = np.array([int(r["sounding"]) for r in seeds[0]])
    scores = [np.array([float(r["AV"]) for r in unit]) for unit in seeds]
    idx = resample(len(y), RESAMPLES, np.random.default_rng(BOOTSTRAP_SEED), y)
    draws = [np.mean([roc_auc_score(y[i], s[i]) for s in scores]) for i in idx]
    mean, spread, low, high = av_roc
    assert mean == pytest.approx(np.mean([roc_auc_score(y, s) for s in scores]), abs=5e-4)
    assert spread is not None
    assert low == pytest.approx(np.quantile(draws, 0.025), abs=5e-4)
    assert high == pytest.approx(np.quantile(draws, 0.975), abs=5e-4)
    for cell in (av_roc, av_pr, al_roc, al_pr):
        assert cell[2] <= cell[0] <= cell[3]


def test_retrieval_report_has_cis_per_direction_and_an_r_at_k_curve(retrieval_run, check_page):
    page = check_page(write_report(retrieval_run), ["recall-at-k"])
    assert "Recall at k" in page and "every k from 1" in page
    rows = _rows(retrieval_run / "ranks.csv")
    for direction in ("audio to video", "video to text"):
        cells = row_cells(page, "mc3", direction)
        assert len(cells) == 5 and all(c[2] <= c[0] <= c[3] for c in cells)
        unit = [
            [r for r in rows if r["direction"] == direction.replace(" ", "_") and r["seed"] == s]
            for s in "01"
        ]
        units = [
            {"rank": np.array([int(r["rank"]) for r in sorted(u, key=lambda r: r["query_id"])])}
            for u in unit
        ]
        want = paired_bootstrap_ci(units, {"R@5": recall_at(5)}, RESAMPLES, BOOTSTRAP_SEED)
        assert cells[1][2:] == pytest.approx((want["R@5"]["low"], want["R@5"]["high"]), abs=5e-4)


def test_r_at_k_curve_is_the_stored_ranks_at_every_k(retrieval_run):
    from harken.reports.html import Run, _recall_curve, aligned, load_run, per_unit

    run: Run = load_run(retrieval_run)
    units = aligned(per_unit(run, "ranks.csv", "direction")[("mc3", "audio_to_video")], "query_id")
    curve = _recall_curve(units)
    want = run.results["methods"]["mc3"]["directions"]["audio_to_video"]
    assert sorted(curve) == list(range(1, run.results["protocol"]["items"] + 1))
    for k in (1, 5, 10):
        assert curve[k] == pytest.approx(want[f"R@{k}"]["mean"])
    assert curve[max(curve)] == 1.0


def test_a_run_without_per_clip_files_shows_spread_only(retrieval_run, tmp_path, check_page):
    old = tmp_path / "old"
    shutil.copytree(retrieval_run, old, ignore=shutil.ignore_patterns("report*"))
    (old / "ranks.csv").unlink()
    page = check_page(write_report(old), ["recall-at-k"])
    assert "This run has no ranks.csv" in page
    _, spread, low, high = row_cells(page, "mc3", "audio to video")[0]
    assert spread is not None and low is None and high is None


def test_linear_probe_report(k20_csv, tmp_path, check_page):
    mc3 = {"audio": "yamnet", "video": None, "epochs": 3, "lr": 1e-3}
    run = _run(k20_csv, tmp_path / "run", "linear-probe", {"features": ["yamnet"]}, mc3)
    page = check_page(write_report(run), ["probe-validation"])
    assert "<td>yamnet</td>" in page and "<td>mc3 (audio head)</td>" in page
    assert "Choosing C" in page
    top1, top5, mca, map_, mauc, _ = row_cells(page, "yamnet")
    assert top1[1] is None and top1[2] <= top1[0] <= top1[3]  # one run: no spread, a CI
    assert mca[2] <= mca[0] <= mca[3] and top5[2] is not None
    assert map_[2] is None and mauc[2] is None  # no CI without every class's score
    rows = [r for r in _rows(run / "predictions.csv") if r["method"] == "yamnet"]
    assert top1[0] == pytest.approx(np.mean([r["label"] == r["predicted"] for r in rows]), 5e-4)
    head = row_cells(page, "mc3 (audio head)")[0]
    assert head[1] is not None and head[2] is not None
