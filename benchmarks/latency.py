"""Latency of single CLI calls, cold and warm, beside the same call inside a warm process.

Three commands, each run as a fresh ``python -m harken.cli`` process (what the ``harken``
console script runs), with ``HARKEN_CACHE_DIR`` set to temporary folders:

* ``help``: ``harken --help``;
* ``predict``: one 5 s Kitchen20 clip with 10 candidate labels (default ``bridge`` backend).
  ``cold``: empty ``HARKEN_CACHE_DIR`` (models load, YAMNet's 521 label names, the labels'
  templates and the clip are embedded); ``warm``: the same call again (clip and texts cached);
  ``new_clip``: another clip each time, texts cached;
* ``search``: a text query over an index of all 1,070 Kitchen20 clips (built once, untimed, with
  its own feature store). ``cold``: empty ``HARKEN_CACHE_DIR``; ``warm``: texts cached.

Warm figures are the median of ``--repeats`` runs, interleaved (help, predict, new clip,
search, then again) so that a change of machine load hits every command alike; cold figures
are ``--cold-repeats`` runs, each with a new empty cache. ``in_process`` times the same calls
(``api.predict``, ``api.search``, ``build_parser().format_help()``) in one process after a
first warm-up call: the floor a CLI call could reach. The 1-minute load average is recorded
at the start, the end, and before every timed run (``load_avg``).

Python bytecode is cached in a temporary ``PYTHONPYCACHEPREFIX`` (as for an installed package;
the first run, which compiles it, counts as cold). ``--src`` chooses the harken source tree
(default: this checkout's ``src``), so the same script measures another version, e.g. a
worktree of an older commit.

Usage::

    python benchmarks/latency.py [--repeats 5] [--cold-repeats 1] [--src src] \
        [--data-dir ../shared/data] [--store-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine_info

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"
LABELS = [
    "blender",
    "boiling water",
    "chopping",
    "frying pan",
    "microwave",
    "peel",
    "sweep",
    "water flowing",
    "drawer",
    "cupboard",
]
QUERY = "a blender whirring"
TARGETS = {"help": 1.0, "predict": 3.0, "search": 2.0}

IN_PROCESS = """
import io, json, statistics, sys, time
from contextlib import redirect_stdout
from harken import api
from harken.cli import build_parser
clip, new_clips, index, query, repeats = json.loads(sys.argv[1])
labels = json.loads(sys.argv[2])

def median_time(call, args_list):
    call(args_list[0])  # warm-up: models and caches loaded
    times = []
    for args in args_list[1:]:
        t = time.perf_counter(); call(args); times.append(time.perf_counter() - t)
    return statistics.median(times)

out = {
    "help": median_time(lambda _: build_parser().format_help(), [None] * (repeats + 1)),
    "predict": median_time(lambda c: api.predict([c], labels), [clip] * (repeats + 1)),
    "new_clip": median_time(lambda c: api.predict([c], labels), [clip] + new_clips),
    "search": median_time(lambda q: api.search(index, q, top_k=10), [query] * (repeats + 1)),
}
print(json.dumps(out))
"""


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def load1() -> float:
    return round(os.getloadavg()[0], 2)


class Runner:
    """Runs harken commands from ``src`` in fresh processes and records their wall time."""

    def __init__(self, src: Path, pycache: Path) -> None:
        self.src = src
        self.pycache = pycache
        self.loads: list[float] = []

    def env(self, cache_dir: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(
            PYTHONPATH=str(self.src),
            PYTHONPYCACHEPREFIX=str(self.pycache),
            HARKEN_CACHE_DIR=str(cache_dir),
            HF_HUB_OFFLINE="1",
        )
        return env

    def cli(self, args: list[str], cache_dir: Path) -> float:
        """Wall seconds of ``harken ARGS`` (exits if it fails)."""
        self.loads.append(load1())
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "harken.cli", *args],
            env=self.env(cache_dir),
            capture_output=True,
            text=True,
        )
        seconds = time.perf_counter() - start
        if done.returncode != 0:
            sys.stderr.write(done.stderr)
            raise SystemExit(f"harken {' '.join(args[:2])} failed ({done.returncode})")
        return round(seconds, 3)

    def python(self, code: str, args: list[str], cache_dir: Path) -> dict:
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=self.env(cache_dir),
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        return json.loads(done.stdout.strip().splitlines()[-1])


def kitchen_clips(data_dir: Path, n: int) -> list[str]:
    """``n`` Kitchen20 clips from different classes (sorted, spread over the list)."""
    clips = sorted((data_dir / "kitchen20" / "audio").glob("*/*.flac"))
    if len(clips) < n:
        raise SystemExit(f"Kitchen20 audio not found under {data_dir / 'kitchen20'}")
    step = len(clips) // n
    return [str(clips[i * step]) for i in range(n)]


def summary(cold: list[float], warm: list[float], extra: dict | None = None) -> dict:
    out = {"cold_s": cold, "warm_s": warm, "warm_median_s": round(statistics.median(warm), 3)}
    if cold:
        out["cold_median_s"] = round(statistics.median(cold), 3)
    return {**out, **(extra or {})}


def measure(args, work: Path) -> dict:
    runner = Runner(args.src.resolve(), work / "pyc")
    n = args.repeats
    clips = kitchen_clips(args.data_dir, 2 + 2 * n + args.cold_repeats)
    clip, cli_new, inproc_new = clips[0], clips[1 : 1 + n], clips[1 + n : 2 + 2 * n]
    labels = ",".join(LABELS)
    warm_dir, index = work / "cache", work / "index"
    store = args.store_dir or work / "index-store"

    log("help, cold (bytecode not yet compiled)")
    help_cold = [runner.cli(["--help"], work / "empty")]
    log("building the Kitchen20 index (untimed)")
    audio = args.data_dir / "kitchen20" / "audio"
    index_args = ["index", str(audio), "--out", str(index), "--store-dir", str(store)]
    runner.cli(index_args, work / "index-cache")
    predict_cold, search_cold = [], []
    for r in range(args.cold_repeats):
        log(f"cold predict and search {r + 1}/{args.cold_repeats}")
        first = warm_dir if r == 0 else work / f"cold-{r}"
        predict_cold.append(runner.cli(["predict", clip, "--labels", labels], first))
        search_cold.append(runner.cli(["search", str(index), QUERY], work / f"cold-search-{r}"))
    runner.cli(["search", str(index), QUERY], warm_dir)  # the query's text, cached (untimed)
    warm = {"help": [], "predict": [], "new_clip": [], "search": []}
    for r in range(n):
        log(f"warm round {r + 1}/{n}")
        warm["help"].append(runner.cli(["--help"], warm_dir))
        warm["predict"].append(runner.cli(["predict", clip, "--labels", labels], warm_dir))
        warm["new_clip"].append(runner.cli(["predict", cli_new[r], "--labels", labels], warm_dir))
        warm["search"].append(runner.cli(["search", str(index), QUERY], warm_dir))
    log("in-process calls")
    payload = json.dumps([clip, inproc_new, str(index), QUERY, n])
    in_process = runner.python(IN_PROCESS, [payload, json.dumps(LABELS)], warm_dir)
    cli = {
        "help": summary(help_cold, warm["help"]),
        "predict": summary(
            predict_cold,
            warm["predict"],
            {
                "new_clip_texts_warm_s": warm["new_clip"],
                "new_clip_texts_warm_median_s": round(statistics.median(warm["new_clip"]), 3),
            },
        ),
        "search": summary(search_cold, warm["search"]),
    }
    return {
        "cli": cli,
        "in_process_warm_median_s": {k: round(v, 4) for k, v in in_process.items()},
        "targets_warm_s": TARGETS,
        "meets_targets": {k: cli[k]["warm_median_s"] <= v for k, v in TARGETS.items()},
        "load_avg": {
            "before_each_run": runner.loads,
            "median": statistics.median(runner.loads),
        },
    }


def git_commit(src: Path) -> str | None:
    done = subprocess.run(
        ["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return done.stdout.strip() or None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="warm runs per command")
    parser.add_argument("--cold-repeats", type=int, default=1, help="cold runs per command")
    parser.add_argument("--src", type=Path, default=REPO / "src", help="harken source tree")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--store-dir", type=Path, help="feature store for the index (reusable)")
    args = parser.parse_args()
    start_load = load1()
    with tempfile.TemporaryDirectory(prefix="harken-latency-") as tmp:
        figures = measure(args, Path(tmp))
    out = {
        "machine": machine_info(["torch", "sentence-transformers", "onnxruntime"]),
        "src": str(args.src.resolve()),
        "commit": git_commit(args.src.resolve()),
        "repeats": args.repeats,
        "cold_repeats": args.cold_repeats,
        "labels": LABELS,
        "query": QUERY,
        **figures,
    }
    out["load_avg"].update(start=start_load, end=load1())
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
