"""The ``harken`` command line: a thin shell over :mod:`harken.api`.

Commands: ``run``, ``demo``, ``predict``, ``embed``; ``harken COMMAND --help`` for each.
Errors harken raises on purpose print as one line (``harken: error: ...``) with exit code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harken import __version__
from harken.errors import HarkenError


def _cmd_run(args) -> None:
    from harken import api
    from harken.reports.results import results_table

    results = api.run(args.config, args.out, store_dir=args.store_dir, data_dir=args.data_dir)
    print(results_table(results))
    print(f"\nrun folder: {args.out}")


def _cmd_demo(args) -> None:
    from harken import api
    from harken.reports.results import results_table

    data_dir = args.data_dir or os.environ.get("HARKEN_DATA_DIR")
    overrides = {"store_dir": args.store_dir} if args.store_dir else {}
    all_results = api.demo(data_dir, args.out, **overrides)
    for name, results in all_results.items():
        n = results["protocol"]["test_classes_per_fold"]
        print(
            f"\n== Kitchen20, {name}: {len(n)} fold(s), {n[0]} test classes each; "
            "unseen-class scores, mean ± std over folds × seeds =="
        )
        print(results_table(results))
        print(f"run folder: {Path(args.out) / name}")


def _cmd_predict(args) -> None:
    from harken import api

    labels = _read_labels(args)
    files = api.expand_inputs(args.audio)
    ranking = api.predict(files, labels, model=args.model, top_k=args.top_k)
    if args.json:
        json.dump(ranking, sys.stdout, indent=2)
        print()
        return
    for item in ranking:
        best = ", ".join(f"{r['label']} ({r['score']:.3f})" for r in item["ranking"][:3])
        print(f"{item['file']}: {best}")


def _read_labels(args) -> list[str]:
    labels: list[str] = []
    if args.labels:
        labels += [x.strip() for x in args.labels.split(",")]
    if args.labels_file:
        path = Path(args.labels_file)
        if not path.exists():
            raise HarkenError(f"{path}: labels file not found")
        labels += [line.strip() for line in path.read_text().splitlines()]
    labels = [x for x in labels if x]
    if not labels:
        raise HarkenError("give candidate labels with --labels 'a,b,c' or --labels-file FILE")
    return labels


def _cmd_embed(args) -> None:
    from harken import api

    files = api.expand_inputs(args.audio)
    emb = api.embed(files, args.encoder, args.out)
    print(f"wrote {args.out}: float32 {list(emb.shape)} ({args.encoder})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="harken",
        description="Zero-shot recognition of sounding actions from audio.",
    )
    parser.add_argument("--version", action="version", version=f"harken {__version__}")
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
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser(
        "demo",
        help="zero-shot benchmark on Kitchen20 with offline defaults",
        description="Run the Kitchen20 zero-shot experiments (class-disjoint "
        "k-fold and all-classes) with the offline default models.",
    )
    p.add_argument(
        "--data-dir", help="folder holding kitchen20/ (default: $HARKEN_DATA_DIR, else download)"
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default: runs/demo)")
    p.add_argument("--store-dir", help="feature-store folder (default: $HARKEN_CACHE_DIR)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "predict",
        help="rank candidate action names for audio clips",
        description="Rank candidate actions (plain language) for your clips, "
        "training-free, or with a run folder's settings (--model).",
    )
    p.add_argument("audio", nargs="+", help="audio/video files or folders")
    p.add_argument("--labels", help="comma-separated candidate actions")
    p.add_argument("--labels-file", help="file with one candidate action per line")
    p.add_argument("--model", help="run folder whose best training-free method to use")
    p.add_argument("--top-k", type=int, help="show the best K labels per file")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser(
        "embed",
        help="embed audio files with an encoder into a .npy file",
        description="Write float32 [N, D] embeddings, one row per input file in "
        "input order. Encoders: yamnet, aisfx, ast, hf:<id or folder>.",
    )
    p.add_argument("audio", nargs="+", help="audio/video files or folders")
    p.add_argument("--encoder", default="yamnet", help="encoder name (default: yamnet)")
    p.add_argument("--out", required=True, help="output .npy file")
    p.set_defaults(func=_cmd_embed)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except HarkenError as exc:
        print(f"harken: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harken: interrupted; finished work (features, caches) is kept", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
