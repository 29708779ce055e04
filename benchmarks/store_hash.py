"""The cost of content-addressed feature-store keys on Kitchen20 (prints JSON).

The store keys a clip by the sha256 of its file's bytes, with the hash remembered in a SQLite
cache keyed by (path, size, mtime, ctime, inode). On the full Kitchen20 set (1,070 clips) with a
store already filled by ``--encoder`` (default yamnet, the quickest), three warm-store lookups
are timed, interleaved over ``--repeats`` rounds:

* ``path_size``: the former scheme, computed inline here for comparison — keys from the resolved
  path and file size (one ``stat`` each, no hashing), every shard loaded with ``np.load`` (no
  checksum), rows stacked;
* ``cold_hash``: ``FeatureStore.get_usable`` with the hash cache deleted (every file read and
  hashed; the files themselves are in the OS page cache after the first round) and shards
  verified against their sha256;
* ``warm_hash``: the same with the hash cache filled (no file is read).

Each is reported as seconds (median, min) and as a ratio of medians to ``path_size``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine_info

DEFAULT_DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def path_size_key(clip) -> str:
    """The former clip key: id, resolved path, span and file size (no content read)."""
    path = Path(clip.audio_path)
    blob = f"{clip.clip_id}|{path.resolve()}|{clip.start}|{clip.end}|{path.stat().st_size}"
    return hashlib.sha1(blob.encode()).hexdigest()


def path_size_lookup(folder: Path, clips, content_keys: list[str]) -> np.ndarray:
    """The former warm lookup: path+size keys, every shard loaded unverified, rows stacked.

    The stored shards are keyed by content, so rows are looked up with ``content_keys``
    (computed beforehand); the path+size keys are computed for their cost only.
    """
    keys = [path_size_key(c) for c in clips]
    table: dict[str, np.ndarray] = {}
    for shard in sorted(folder.glob("shard-*.npz")):
        with np.load(shard, allow_pickle=False) as z:
            for key, row in zip(z["keys"].tolist(), z["embeddings"], strict=True):
                table[key] = row
    assert len(keys) == len(content_keys)
    return np.stack([table[k] for k in content_keys]).astype(np.float32)


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def drop_hash_cache(root: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (root / f"hashes.sqlite3{suffix}").unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--encoder", default="yamnet")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from harken.data.readers import read_dataset
    from harken.encoders.base import get_encoder
    from harken.store.features import FeatureStore, HashCache, clip_key

    clips = read_dataset("kitchen20", data_dir=args.data_dir).clips
    encoder = get_encoder(args.encoder)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "features"
        fill_s, _ = timed(lambda: FeatureStore(root, progress=False).get("k20", encoder, clips))
        print(f"store filled in {fill_s:.1f} s", file=sys.stderr)
        folder = FeatureStore(root).folder("k20", encoder)
        content_keys = [clip_key(c, HashCache(Path(tmp) / "keys.sqlite3")) for c in clips]
        times: dict[str, list[float]] = {"path_size": [], "cold_hash": [], "warm_hash": []}
        reference = None
        for _ in range(args.repeats):
            t, a = timed(lambda: path_size_lookup(folder, clips, content_keys))
            times["path_size"].append(t)
            drop_hash_cache(root)
            cold = FeatureStore(root, progress=False)
            t, b = timed(lambda store=cold: store.get_usable("k20", encoder, clips))
            times["cold_hash"].append(t)
            assert cold.hashes.hashed == len(clips) and b.report.encoded == 0
            cold.hashes.close()
            warm = FeatureStore(root, progress=False)
            t, c = timed(lambda store=warm: store.get_usable("k20", encoder, clips))
            times["warm_hash"].append(t)
            assert warm.hashes.hashed == 0 and c.report.encoded == 0
            warm.hashes.close()
            reference = a if reference is None else reference
            assert np.array_equal(a, b.embeddings) and np.array_equal(a, c.embeddings)
    base = statistics.median(times["path_size"])
    out = {
        "clips": len(clips),
        "encoder": args.encoder,
        "dim": int(reference.shape[1]),
        "repeats": args.repeats,
        "fill_s": round(fill_s, 2),
        "timings_s": {
            k: {"median": round(statistics.median(v), 4), "min": round(min(v), 4)}
            for k, v in times.items()
        },
        "ratio_to_path_size": {
            k: round(statistics.median(v) / base, 2) for k, v in times.items() if k != "path_size"
        },
        "machine": machine_info(("numpy",)),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
