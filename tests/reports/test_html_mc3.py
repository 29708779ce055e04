"""`harken report` for discovery, retrieval and linear-probe runs (small real runs)."""

from __future__ import annotations

import pytest

from harken.experiment import ExperimentConfig, run_experiment
from harken.reports.html import write_report

FAST = {"audio": "yamnet", "video": "efficientnet-lite0", "epochs": 3, "lr": 1e-3}


def _run(dataset, out, protocol, options=None, mc3=None):
    config = ExperimentConfig(
        dataset=str(dataset),
        protocol=protocol,
        protocol_options=options or {},
        methods=["mc3"],
        method_options={"mc3": mc3 or dict(FAST)},
        seeds=[0],
        progress=False,
    )
    run_experiment(config, out)
    return out


@pytest.mark.parametrize(
    ("protocol", "options", "figures", "text"),
    [
        ("discovery", {}, ["discovery-AV", "discovery-AL"], "ROC and precision–recall"),
        (
            "retrieval",
            {"group_by": "clip", "sounding_only": False},
            ["recall-at-k"],
            "Recall at k",
        ),
    ],
)
def test_trimodal_reports(avmini_trimodal, tmp_path, check_page, protocol, options, figures, text):
    run = _run(avmini_trimodal, tmp_path / "run", protocol, options)
    page = check_page(write_report(run), figures)
    assert text in page
    assert "<td>mc3</td>" in page  # the run's own table, as HTML
    assert "spread" in page


def test_linear_probe_report(k20_csv, tmp_path, check_page):
    mc3 = {"audio": "yamnet", "video": None, "epochs": 3, "lr": 1e-3}
    run = _run(k20_csv, tmp_path / "run", "linear-probe", {"features": ["yamnet"]}, mc3)
    page = check_page(write_report(run), ["probe-validation"])
    assert "<td>yamnet</td>" in page and "<td>mc3 (audio head)</td>" in page
    assert "Choosing C" in page
