"""Fill a feature store from a separate process (the kill -9 and concurrency tests run it).

Usage: ``python fill_worker.py STORE_ROOT N_CLIPS SHARD_SIZE DELAY OUT.npy``: encodes the first
``N_CLIPS`` Kitchen20 clips with the test ``StatsEncoder`` (``DELAY`` seconds per batch), saves
the embeddings to ``OUT.npy`` and prints the store's counts as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import StatsEncoder, kitchen20_first
from harken.store.features import FeatureStore


def main(root: str, n: str, shard_size: str, delay: str, out: str) -> None:
    store = FeatureStore(Path(root), shard_size=int(shard_size), progress=False)
    got = store.get_usable("kitchen20", StatsEncoder(delay=float(delay)), kitchen20_first(int(n)))
    np.save(out, got.embeddings)
    r = got.report
    counts = {k: getattr(r, k) for k in ("cached", "shards_reused", "encoded", "shards_written")}
    print(json.dumps({**counts, "corrupt": r.corrupt, "skipped": len(got.skipped)}))


if __name__ == "__main__":
    main(*sys.argv[1:])
