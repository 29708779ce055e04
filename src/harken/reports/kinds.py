"""The folders ``harken report`` reads besides protocol runs, each a :class:`RunKind`.

- ``harken detect ... --out DIR`` (:func:`harken.api.detect`): the settings, the segments
  table (the first :data:`MAX_SEGMENT_ROWS`; ``segments.csv`` holds all) and each file's
  timeline (the PNGs detect wrote; the first :data:`MAX_TIMELINES` inline, the rest linked).
- ``harken bench detect`` (:func:`harken.api.bench_detect`): its table (detector and
  baseline, dev and test), what was tried on dev with the chosen setting marked, the per-label
  thresholds, per-class event F1 on test and the test soundscapes' timelines.
- ``harken bench zeroshot`` (:func:`harken.api.bench_zeroshot`): the table over datasets with
  chance and a bootstrap CI of UA, UA against chance per dataset, and each dataset's own
  report (written by the same command: one command reports the whole benchmark).

A later kind is one more :func:`~harken.reports.html.run_kind` registration here.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from harken.reports.html import (
    BOOTSTRAP_SEED,
    RESAMPLES,
    Figure,
    Markup,
    Run,
    RunKind,
    Section,
    consistent,
    encode_rows,
    esc,
    grouped_predictions,
    load_run,
    read_json,
    run_kind,
    slug,
    table,
    write_report,
)

#: Rows of the segments table on the page (``segments.csv`` beside it holds every one).
MAX_SEGMENT_ROWS = 200
#: Rows of the files table (the manifest lists every file).
MAX_FILE_ROWS = 200
#: Timelines inlined in a page (the others are linked), so a folder of many files keeps the
#: page a reasonable size (each timeline is a ~25 KB PNG).
MAX_TIMELINES = 24


def short_names(files: list[str]) -> dict[str, str]:
    """Each file's path relative to the folder all of them share (its name for one file)."""
    if not files:
        return {}
    if len(set(files)) == 1:
        return {files[0]: Path(files[0]).name}
    try:
        common = os.path.commonpath(files)
    except ValueError:  # mixed absolute and relative paths
        return {f: f for f in files}
    return {f: os.path.relpath(f, common) for f in files}


def _number(value, digits: int = 3) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "∞ (never fires)"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def timeline_section(run: Run, pictures: list[tuple[str, Path]], title: str, text: str) -> Section:
    """The PNG timelines ``[(caption, file)]`` a command wrote into the run folder: the first
    :data:`MAX_TIMELINES` inline (copied into the report's figure folder), the rest linked."""
    shown, rest = pictures[:MAX_TIMELINES], pictures[MAX_TIMELINES:]
    figures = [
        Figure(f"timeline-{slug(png.stem)}", caption, png.read_bytes())
        for caption, png in shown
        if png.is_file()
    ]
    missing = [str(png) for _, png in shown if not png.is_file()]
    if missing:
        text += f"<p class='note'>Missing timeline pictures: {esc(', '.join(missing))}.</p>"
    if rest:
        links = "".join(
            f"<li><a href='{esc(run.link(png))}'>{esc(caption)}</a></li>" for caption, png in rest
        )
        text += (
            f"<p class='note'>The first {MAX_TIMELINES} of {len(pictures)} timelines are shown; "
            f"the other {len(rest)} are linked (the PNGs in the run folder):</p><ul>{links}</ul>"
        )
    return Section(title, text, figures)


# --- harken detect --out -----------------------------------------------------------------------


def _is_detect(path: Path) -> bool:
    if not ((path / "segments.json").is_file() and (path / "manifest.json").is_file()):
        return False
    manifest = read_json(path / "manifest.json")
    return isinstance(manifest, dict) and "files" in manifest


def _detect_results(path: Path) -> dict:
    manifest = read_json(path / "manifest.json")
    return {
        "segments": read_json(path / "segments.json"),
        "settings": manifest.get("config", {}),
        "files": manifest.get("files", []),
    }


def settings_section(settings: dict) -> Section:
    """The detector's settings and each label's threshold (with how it was chosen)."""
    rows = [
        ["backend", settings.get("backend", "?")],
        ["score", settings.get("score", "?")],
        ["window / hop", f"{settings.get('window_s', '?')} s / {settings.get('hop_s', '?')} s"],
        [
            "median smoothing",
            f"{settings.get('smooth_s', '?')} s ({settings.get('median_frames', '?')} frames)",
        ],
        ["templates", str(settings.get("templates") or "harken's default ensemble")],
        ["thresholds from", str(settings.get("thresholds_from") or "–")],
    ]
    thresholds = settings.get("thresholds", {})
    per_label = [
        [label, _number(t.get("threshold"), 4), t.get("chosen_on", "?")]
        for label, t in thresholds.items()
    ]
    body = table(["setting", "value"], rows)
    body += table(["label", "threshold", "chosen on"], per_label)
    return Section("Settings", body)


def segments_table(segments: list[dict], names: dict[str, str], csv_link: str) -> str:
    """The segments as a table, at most :data:`MAX_SEGMENT_ROWS` rows (the note says so)."""
    rows = [
        [
            names.get(s["file"], s["file"]),
            f"{s['start']:.2f}",
            f"{s['end']:.2f}",
            s["label"],
            f"{s['score']:.4g}",
        ]
        for s in segments[:MAX_SEGMENT_ROWS]
    ]
    note = f"{len(segments)} segments"
    if len(segments) > MAX_SEGMENT_ROWS:
        note = f"the first {MAX_SEGMENT_ROWS} of {len(segments)} segments"
    body = table(["file", "start (s)", "end (s)", "label", "score"], rows, note)
    return body + f"<p class='note'>All segments: <a href='{esc(csv_link)}'>segments.csv</a>.</p>"


def detect_sections(run: Run, maps: bool = True) -> list[Section]:
    """Settings, files, segments and each file's timeline."""
    r = run.results
    segments, files = r["segments"], r["files"]
    names = short_names([f["file"] for f in files] + [s["file"] for s in segments])
    counts: dict[str, int] = {}
    for s in segments:
        counts[s["file"]] = counts.get(s["file"], 0) + 1
    file_rows = [
        [
            names.get(f["file"], f["file"]),
            f"{f.get('duration_s', float('nan')):.1f}",
            str(counts.get(f["file"], 0)),
        ]
        for f in files[:MAX_FILE_ROWS]
    ]
    file_note = f"{len(files)} files"
    if len(files) > MAX_FILE_ROWS:
        file_note = f"the first {MAX_FILE_ROWS} of {len(files)} files (manifest.json lists all)"
    sections = [
        settings_section(r["settings"]),
        Section("Files", table(["file", "duration (s)", "segments"], file_rows, file_note)),
        Section(
            "Segments",
            "<p>Where each label's smoothed score stays above its threshold.</p>"
            + segments_table(segments, names, run.link(run.path / "segments.csv")),
        ),
    ]
    pictures = [
        (f"{names.get(f['file'], f['file'])}: timeline", run.path / f["timeline"]) for f in files
    ]
    text = (
        "<p>Top: each shown label's smoothed score over time, its threshold dashed; bottom: "
        "the segments emitted.</p>"
    )
    sections.append(timeline_section(run, pictures, "Timelines", text))
    return sections


def _detect_title(run: Run) -> str:
    n = len(run.results["files"])
    labels = run.results["settings"].get("labels", [])
    return f"detections — {n} file{'s' * (n != 1)} — {len(labels)} labels"


def _detect_meta(run: Run) -> list[list[str]]:
    s = run.results["settings"]
    return [
        ["labels", ", ".join(s.get("labels", []))],
        ["backend", str(s.get("backend", "?"))],
        ["written", str(run.manifest.get("created", "?"))],
    ]


run_kind(
    RunKind(
        name="detect",
        what="a `harken detect --out DIR` folder (segments.json and manifest.json)",
        recognises=_is_detect,
        results=_detect_results,
        sections=detect_sections,
        title=_detect_title,
        meta=_detect_meta,
    )
)


# --- harken bench detect -----------------------------------------------------------------------


def _is_bench_detect(path: Path) -> bool:
    if not (path / "results.json").is_file():
        return False
    r = read_json(path / "results.json")
    return isinstance(r, dict) and "protocol" not in r and {"table", "tried_on_dev"} <= set(r)


BENCH_COLUMNS = [
    ("event F1", "event_F1"),
    ("P", "event_P"),
    ("R", "event_R"),
    ("PSDS1", "PSDS1"),
    ("F1, 1 s collar", "event_F1_1s_collar"),
    ("PSDS1, α_st = 0", "PSDS1_mean_over_classes"),
]


def bench_detect_sections(run: Run, maps: bool = True) -> list[Section]:
    """Results, what was tried on dev, per-label thresholds, per-class F1, test timelines."""
    from harken.reports.figures import class_bars, tried_settings

    r = run.results
    split = r.get("split", {})
    rows = [
        [row["system"], row["split"], *(f"{row[key]:.3f}" for _, key in BENCH_COLUMNS)]
        for row in r["table"]
    ]
    note = (
        f"One value per system and split, over all soundscapes of seeds {r.get('seeds')} "
        f"pooled ({split.get('dev_soundscapes', '?')} dev, {split.get('test_soundscapes', '?')} "
        "test); the benchmark computes no spread or interval. Event F1: collar 200 ms / 20 %, "
        "macro over classes; PSDS: DCASE scenario 1 (sed_scores_eval); beside them event F1 "
        "with 1 s collars and PSDS1 without the cross-class penalty."
    )
    sections = [Section("Results", table(["system", "split", *dict(BENCH_COLUMNS)], rows, note))]
    chosen = r["chosen_on_dev"]
    text = (
        f"<p>Each window/hop and median length was scored on the dev soundscapes (Kitchen20 "
        f"folds {esc(split.get('dev_folds'))}) at its best single threshold; the best "
        f"(★: window {chosen['window_s']:g} s, hop {chosen['hop_s']:g} s, median "
        f"{chosen['smooth_s']:g} s, threshold {chosen['threshold']:.4g}, dev F1 "
        f"{chosen['dev_F1']:.3f}) is used on test.</p>"
    )
    tried_rows = [
        [
            f"{t['window_s']:g}",
            f"{t['hop_s']:g}",
            f"{t['smooth_s']:g}",
            f"{t['threshold']:.4g}",
            f"{t['dev_F1']:.3f}",
        ]
        for t in r["tried_on_dev"]
    ]
    text += table(["window (s)", "hop (s)", "median (s)", "best threshold", "dev F1"], tried_rows)
    png = tried_settings(r["tried_on_dev"], chosen)
    sections.append(
        Section("Chosen on dev", text, [Figure("dev-settings", "dev event F1 per setting", png)])
    )
    per_label = r.get("per_label_thresholds_from_dev", {})
    if per_label:
        sections.append(
            Section(
                "Per-label thresholds from the dev annotations",
                "<p>What <code>--thresholds-from</code> does with annotated recordings: each "
                "label's event-F1-maximising threshold on dev.</p>"
                + table(["label", "threshold"], [[c, _number(v, 4)] for c, v in per_label.items()]),
            )
        )
    test_f1 = {row["system"]: row["per_class_F1"] for row in r["table"] if row["split"] == "test"}
    if test_f1:
        png = class_bars(test_f1, "event F1 on the test soundscapes", "per-class event F1 (test)")
        sections.append(
            Section(
                "Per-class event F1",
                "<p>Each class's event F1 on the test soundscapes, per system.</p>",
                [Figure("per-class-f1", "per-class event F1 on test", png)],
            )
        )
    pictures = [
        (f"{png.stem}: detector timeline (one threshold), annotated events beneath", png)
        for png in sorted((run.path / "timelines").glob("*.png"))
    ]
    text = (
        "<p>The test soundscapes through the detector with the settings chosen on dev (one "
        "threshold): smoothed scores and thresholds on top, emitted segments below with the "
        "annotated events as thin grey bars beneath them.</p>"
    )
    sections.append(timeline_section(run, pictures, "Test soundscapes", text))
    return sections


def _bench_detect_title(run: Run) -> str:
    return f"detection benchmark — Kitchen20 soundscapes — backend {run.results.get('backend')}"


def _bench_detect_meta(run: Run) -> list[list[str]]:
    r = run.results
    split = r.get("split", {})
    return [
        ["score", str(r.get("score", "?"))],
        ["seeds", str(r.get("seeds"))],
        ["labels", str(len(r.get("labels", [])))],
        [
            "soundscapes (events)",
            f"dev {split.get('dev_soundscapes')} ({split.get('dev_events')}), "
            f"test {split.get('test_soundscapes')} ({split.get('test_events')})",
        ],
    ]


run_kind(
    RunKind(
        name="bench detect",
        what="a `harken bench detect` folder (results.json with a table and tried_on_dev)",
        recognises=_is_bench_detect,
        results=lambda path: read_json(path / "results.json"),
        sections=bench_detect_sections,
        title=_bench_detect_title,
        meta=_bench_detect_meta,
        markdown="results.md",
    )
)


# --- harken bench zeroshot ---------------------------------------------------------------------


def _is_bench_zeroshot(path: Path) -> bool:
    if not (path / "bench.json").is_file():
        return False
    bench = read_json(path / "bench.json")
    return isinstance(bench, dict) and isinstance(bench.get("datasets"), list)


def ua_interval(sub: Run, method: str) -> dict | None:
    """The bootstrap 95% CI of UA of ``method`` in an all-classes run (from its
    ``predictions.csv``, as in its own report), or None without predictions."""
    from harken.metrics.bootstrap import bootstrap_ci, unweighted_accuracy

    units = grouped_predictions(sub, "fold").get(method)
    m = sub.results.get("methods", {}).get(method)
    if not units or m is None:
        return None
    classes: dict[str, int] = {}
    data = [(*encode_rows(u, classes), {"UA": unweighted_accuracy}) for u in units.values()]
    return consistent(bootstrap_ci(data, n=RESAMPLES, seed=BOOTSTRAP_SEED), m).get("UA")


def bench_zeroshot_sections(run: Run, maps: bool = True) -> list[Section]:
    """The table over datasets (with chance and UA's CI), UA against chance, and each
    dataset's own report (written now)."""
    from harken.reports.figures import accuracy_vs_chance

    r = run.results
    method = f"zeroshot:{r.get('backend')}"
    rows, missing = [], []
    for d in r["datasets"]:
        sub_dir = run.path / d["run"]
        link: str | Markup = "–"
        ci = None
        if (sub_dir / "results.json").is_file():
            page = write_report(sub_dir, maps=maps)
            link = Markup(f"<a href='{esc(run.link(page))}'>{esc(d['run'])}</a>")
            ci = ua_interval(load_run(sub_dir), method)
        else:
            missing.append(d["run"])
        ua = f"{d['UA']:.3f}" + (f"  [{ci['low']:.3f}, {ci['high']:.3f}]" if ci else "")
        rows.append(
            [
                d["dataset"],
                str(d["classes"]),
                ua,
                f"{d['WA']:.3f}",
                f"{d['UP']:.3f}",
                f"{d['chance_UA']:.3f}",
                f"{d['text_to_audio_mAP@10']:.3f}",
                f"{d['audio_to_text_R@1']:.3f}",
                link,
            ]
        )
    header = [
        "dataset",
        "classes",
        "UA [95% CI]",
        "WA",
        "UP",
        "chance UA",
        "t→a mAP@10",
        "a→t R@1",
        "report",
    ]
    note = (
        "Every class of a dataset is a candidate; one seed, so no spread. 95% CI: bootstrap "
        f"over the dataset's clips ({RESAMPLES} resamples, seed {BOOTSTRAP_SEED}), from its "
        "predictions.csv. Each dataset's report has its per-class recall and confusion matrix."
    )
    body = table(header, rows, note)
    if missing:
        body += (
            "<p class='note'>No run folder (results.json) for: "
            + esc(", ".join(missing))
            + "; rerun the benchmark with --mode resume.</p>"
        )
    png = accuracy_vs_chance(r["datasets"])
    figure = Figure("ua-vs-chance", "UA per dataset against chance", png)
    return [
        Section("Results", body),
        Section(
            "Accuracy against chance",
            "<p>Bars: UA; black lines: chance (1 / classes).</p>",
            [figure],
        ),
    ]


def _bench_zeroshot_title(run: Run) -> str:
    n = len(run.results["datasets"])
    return f"zero-shot benchmark — backend {run.results.get('backend')} — {n} datasets"


def _bench_zeroshot_meta(run: Run) -> list[list[str]]:
    r = run.results
    return [
        ["backend", str(r.get("backend"))],
        ["class knowledge", str(r.get("generator"))],
        ["datasets", ", ".join(str(d["dataset"]) for d in r["datasets"])],
    ]


run_kind(
    RunKind(
        name="bench zeroshot",
        what="a `harken bench zeroshot` folder (bench.json and one run folder per dataset)",
        recognises=_is_bench_zeroshot,
        results=lambda path: read_json(path / "bench.json"),
        sections=bench_zeroshot_sections,
        title=_bench_zeroshot_title,
        meta=_bench_zeroshot_meta,
        markdown="bench.md",
    )
)
