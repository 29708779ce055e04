"""Wall time of ``harken demo``, cold (empty cache) and warm (the same cache, a second run).

Runs ``harken demo --data-dir <data dir> --out <dir>`` twice as subprocesses with
``HARKEN_CACHE_DIR`` set to a fresh temporary folder: the first run has to load the models and
encode every clip (cold), the second finds the feature store filled (warm). Each run writes to
its own output folder (``<out>/cold``, ``<out>/warm``). Figures go to stdout as one JSON object;
the demo's own output goes to stderr.

Usage::

    python benchmarks/demo_walltime.py [--out DIR] [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = REPO.parent / "shared" / "data"


def harken_command() -> list[str]:
    """The ``harken`` console script of this interpreter's environment (else the one on PATH)."""
    beside = Path(sys.executable).with_name("harken")
    found = str(beside) if beside.exists() else shutil.which("harken")
    if found is None:
        raise SystemExit("the 'harken' command is not installed: pip install -e . in the repo")
    return [found]


def timed_demo(data_dir: Path, out: Path, cache_dir: Path) -> float:
    """Run the demo once; its wall time in seconds. Exits with the demo's status if it fails."""
    cmd = [*harken_command(), "demo", "--data-dir", str(data_dir), "--out", str(out)]
    env = {**os.environ, "HARKEN_CACHE_DIR": str(cache_dir)}
    print(f"[bench] {' '.join(cmd)}", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, stdout=sys.stderr)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        print(
            json.dumps({"error": f"`{' '.join(cmd)}` exited with status {proc.returncode}"}),
            flush=True,
        )
        raise SystemExit(proc.returncode)
    return elapsed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, help="keep the demo outputs here (default: a temporary folder)"
    )
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="harken-demo-bench-") as tmp:
        out = args.out or Path(tmp) / "out"
        cache = Path(tmp) / "cache"  # fresh every time: the cold run starts from nothing
        cold_s = timed_demo(args.data_dir, out / "cold", cache)
        warm_s = timed_demo(args.data_dir, out / "warm", cache)
    result = {"cold_s": round(cold_s, 2), "warm_s": round(warm_s, 2)}
    result["warm_speedup"] = round(cold_s / warm_s, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
