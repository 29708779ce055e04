import numpy as np
import pytest

from harken.errors import DataError
from harken.metrics.discovery import discovery_curves
from harken.reports.curves import plot_discovery_curves

PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG and data[12:16] == b"IHDR"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_writes_one_png_with_both_panels(tmp_path):
    rng = np.random.default_rng(0)
    y = rng.random(400) < 0.56
    curves = {
        "informative": discovery_curves(rng.normal(size=400) + y, y),
        "noise": discovery_curves(rng.normal(size=400), y),
    }
    out = plot_discovery_curves(curves, tmp_path / "sub" / "discovery.png", title="AV")
    data = out.read_bytes()
    width, height = _png_size(data)
    assert (width, height) == (1000, 440)  # 10 × 4.4 in at 100 dpi: two side-by-side panels
    assert data.endswith(b"IEND\xaeB`\x82")
    assert [p.name for p in out.parent.iterdir()] == ["discovery.png"]  # no temporary left
    # Both panels carry the models' coloured lines (grey/black axes and baselines are not).
    from matplotlib.image import imread

    rgb = imread(out)[..., :3]
    coloured = (rgb.max(axis=2) - rgb.min(axis=2)) > 0.3
    assert coloured[:, : width // 2].sum() > 500 and coloured[:, width // 2 :].sum() > 500


def test_refuses_empty_or_foreign_input(tmp_path):
    with pytest.raises(DataError, match="no curves"):
        plot_discovery_curves({}, tmp_path / "x.png")
    with pytest.raises(DataError, match="discovery_curves"):
        plot_discovery_curves({"m": {"fpr": [0, 1]}}, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
