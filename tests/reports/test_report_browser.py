"""The report in a real browser: headless Chromium (Debian's, through Playwright) opens a small
real k-fold run's ``report.html`` as a file:// URL, as a person would after ``harken report``.

It checks that the page renders (title, results table, every image decoded), that the
interactive clip map responds to the mouse (hover shows a clip's id, label and prediction; a
click plays that clip), and that no request leaves the machine. Screenshots go to pytest's
tmp_path, not the repository.
"""

from __future__ import annotations

import csv
import shutil
import urllib.parse
from pathlib import Path

import pytest

from harken.experiment import ExperimentConfig, run_experiment
from harken.reports.html import write_report

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: URL schemes a self-contained page may load: itself, its audio files and inlined data.
LOCAL_SCHEMES = ("file", "data")
#: Nearest other point at least this far (CSS pixels) from the point the test hovers, so the
#: hover label can only be that point's.
ISOLATED_PX = 12


@pytest.fixture(scope="module")
def report_page(k20_csv, tmp_path_factory) -> Path:
    """The report (maps on) of a 2-fold k-fold run of ``bridge`` on 70 Kitchen20 clips."""
    run = tmp_path_factory.mktemp("browser") / "run"
    config = ExperimentConfig(
        dataset=str(k20_csv),
        generator="template:harken",
        protocol="kfold",
        protocol_options={"folds": 2, "n_test": 3, "n_dev": 2},
        methods=["bridge"],
        seeds=[0],
        progress=False,
    )
    run_experiment(config, run)
    return write_report(run, maps=True)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium; the tests skip where it or Playwright is not installed."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed: pip install playwright (no browser download)")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} not found: `make install` installs it (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def page(browser, report_page):
    """The report opened from disk; every request that is not file:// or data: is recorded
    and aborted, and the test fails if there was one."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    outside: list[str] = []

    def block(route):
        outside.append(route.request.url)
        route.abort()

    def record(request):
        if urllib.parse.urlparse(request.url).scheme not in LOCAL_SCHEMES:
            outside.append(request.url)

    # routes see http(s) and the like; file:// loads never reach a route handler
    context.route(lambda url: urllib.parse.urlparse(url).scheme not in LOCAL_SCHEMES, block)
    pg = context.new_page()
    pg.on("request", record)
    pg.on("websocket", lambda ws: outside.append(ws.url))
    pg.requests = []
    pg.on("request", lambda request: pg.requests.append(request.url))
    pg.goto(report_page.as_uri(), wait_until="load")
    pg.wait_for_function("document.querySelector('#clip-map .main-svg') !== null")
    yield pg
    context.close()
    assert outside == [], f"requests left the machine: {sorted(set(outside))}"


def _truth(k20_csv: Path, run: Path) -> tuple[dict[str, str], dict[str, str]]:
    """clip id → true label (from the dataset CSV) and → the first seed's prediction (from
    ``predictions.csv``: the run has one method and one seed)."""
    labels = {r["path"]: r["label"] for r in csv.DictReader(k20_csv.open(encoding="utf-8"))}
    predicted = {}
    for r in csv.DictReader((run / "predictions.csv").open(encoding="utf-8")):
        predicted.setdefault(r["clip_id"], r["predicted"])
    return labels, predicted


#: Every point of the map in viewport pixels, with its data and the distance to its nearest
#: neighbour (the map scrolled into view first).
POINTS_JS = """() => {
  const gd = document.getElementById('clip-map');
  gd.scrollIntoView({block: 'center'});
  const box = gd.getBoundingClientRect(), size = gd._fullLayout._size;
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const points = [];
  gd._fullData.forEach(trace => trace.customdata.forEach((d, i) => points.push({
    x: box.left + size.l + xa.l2p(trace.x[i]), y: box.top + size.t + ya.l2p(trace.y[i]),
    trace: trace.name, data: d})));
  points.forEach(p => { p.nearest = Math.min(...points.filter(q => q !== p).map(
    q => Math.hypot(p.x - q.x, p.y - q.y))); });
  return points;
}"""


def _isolated_test_clip(points: list[dict], predicted: dict[str, str]) -> dict:
    """A point far from all others whose clip was a test clip (so it has a prediction)."""
    for p in sorted(points, key=lambda p: -p["nearest"]):
        if p["nearest"] >= ISOLATED_PX and p["data"][0] in predicted:
            return p
    pytest.fail(f"no test clip on the map is {ISOLATED_PX} px away from all others")


def test_the_report_renders(page, report_page, tmp_path):
    assert page.title() == "k20 — label — kfold"
    assert page.text_content("h1") == "k20 — label — kfold"
    results = page.locator("section", has=page.locator("h2", has_text="Results")).locator("table")
    assert results.is_visible()
    header = results.locator("thead th").all_text_contents()
    assert header[:3] == ["method", "UA", "WA"]
    rows = {r.locator("td").first.text_content(): r for r in results.locator("tbody tr").all()}
    assert set(rows) == {"chance", "bridge"}
    assert "±" in rows["bridge"].locator("td").nth(1).text_content()
    images = page.evaluate(
        "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth])"
    )
    # per-class recall, one confusion matrix, one class-similarity heatmap, the static map
    assert len(images) == 4
    for alt, complete, width in images:
        assert complete and width > 0, f"image {alt!r} did not decode"
    # the only requests: the page itself (its images and scripts are inlined)
    assert page.requests == [report_page.as_uri()]
    page.screenshot(path=tmp_path / "report.png", full_page=True)


def test_hovering_a_point_of_the_clip_map_shows_its_clip_label_and_prediction(
    page, report_page, k20_csv, tmp_path
):
    labels, predicted = _truth(k20_csv, report_page.parent)
    points = page.evaluate(POINTS_JS)
    assert len(points) == len(labels) == 70  # every clip of the run is on the map
    assert {p["trace"] for p in points} == set(labels.values())
    point = _isolated_test_clip(points, predicted)
    clip = point["data"][0]
    assert page.locator("#clip-map .hoverlayer .hovertext").count() == 0
    page.mouse.move(point["x"], point["y"])
    hover = page.locator("#clip-map .hoverlayer .hovertext")
    hover.wait_for(timeout=5000)
    lines = hover.locator("tspan.line").all_text_contents()
    assert lines == [clip, f"label: {labels[clip]}", f"predicted: {predicted[clip]}"]
    page.screenshot(path=tmp_path / "hover.png")
    page.mouse.move(5, 5)  # away from the map: the label goes
    hover.wait_for(state="detached", timeout=5000)


def test_clicking_a_point_plays_its_clip(page, report_page, k20_csv, tmp_path):
    _, predicted = _truth(k20_csv, report_page.parent)
    point = _isolated_test_clip(page.evaluate(POINTS_JS), predicted)
    clip = Path(point["data"][0])
    audio = page.locator("#clip-audio")
    assert audio.evaluate("a => a.paused && !a.src")
    page.mouse.click(point["x"], point["y"])
    # the player loads the clip's own file (a relative link from the page) and plays it
    page.wait_for_function(
        "document.getElementById('clip-audio').currentTime > 0.2", timeout=10_000
    )
    src, paused, error = audio.evaluate("a => [a.src, a.paused, a.error && a.error.message]")
    assert error is None and not paused
    assert Path(urllib.parse.unquote(urllib.parse.urlparse(src).path)) == clip
    assert page.text_content("#clip-playing") == f"{clip} ({point['trace']})"
    assert clip.as_uri() in page.requests
    page.screenshot(path=tmp_path / "playing.png")
