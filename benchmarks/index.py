"""Embedding index benchmarks: build and query time of exact and FAISS (HNSW) search, recall@10.

For each collection size ``N`` (default 1,000 and 100,000) of ``D``-dimensional unit vectors
(default 512, seeded) and each kind of data:

* ``uniform``: vectors drawn uniformly on the sphere. Every pair is nearly orthogonal and a
  query's 10th neighbour is barely closer than a random row, the worst case for any
  approximate index (its recall here is a floor, not what real embeddings get).
* ``lowrank``: unit vectors near a 32-dimensional subspace (``z·A + 0.5·ε``, normalised), a
  stand-in for real embeddings, whose neighbours are far closer than random pairs.

this builds a harken :class:`~harken.store.index.EmbeddingIndex` with ``backend="exact"`` and
with ``backend="faiss"`` (HNSW), and measures, with ``--queries`` queries of the same kind (not
rows of the collection):

* ``build_s``: :meth:`EmbeddingIndex.build` (validation, copy, and the HNSW graph for FAISS);
* ``query_ms_batched``: one ``search(queries, top_k)`` call, per query (fastest of
  ``--repeats``);
* ``query_ms_single``: ``search`` called once per query (a search box), mean per query;
* ``save_s``, ``load_s``: :meth:`save` and :meth:`load` (hash verification included);
* ``recall_at_k`` (FAISS): the share of the exact top-k that FAISS also returns.

Everything runs with ``--threads`` BLAS / OpenMP threads (default 1, via ``threadpoolctl``, so
exact and FAISS are compared per core; 0 keeps the libraries' default of all cores). On a shared
machine the default matters: with two cores and a load average of 5, a 20 × 64 by 64 × 1000
matrix product took 30 ms with two OpenBLAS threads and 0.2 ms with one.

With ``--ivf`` it also times a raw ``faiss.IndexIVFFlat`` (``nlist = 4·√N``, k-means trained on
the collection) at several ``nprobe`` — the alternative HNSW was chosen over. Figures go to
stdout as one JSON object; progress to stderr.

Usage::

    python benchmarks/index.py [--sizes 1000,100000] [--dim 512] [--data uniform,lowrank]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _machine import machine_info
from threadpoolctl import threadpool_limits

from harken.store.index import EmbeddingIndex, exact_search, faiss_module

DATA = ("uniform", "lowrank")
INTRINSIC_DIM = 32


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def unit_vectors(kind: str, n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` seeded float32 unit vectors of ``kind`` (the subspace of ``lowrank`` is fixed)."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        x = rng.standard_normal((n, dim), dtype=np.float32)
    else:
        basis = np.random.default_rng(12345).standard_normal((INTRINSIC_DIM, dim), np.float32)
        x = rng.standard_normal((n, INTRINSIC_DIM), dtype=np.float32) @ basis
        x += 0.5 * np.sqrt(INTRINSIC_DIM) * rng.standard_normal((n, dim), dtype=np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found.tolist(), truth.tolist(), strict=True))
    return hits / truth.size


def measure(index_fn, queries: np.ndarray, k: int, repeats: int, tmp: Path) -> tuple[dict, tuple]:
    build_s, index = timed(index_fn)
    batched = min(timed(lambda: index.search(queries, k))[0] for _ in range(repeats))
    result = index.search(queries, k)
    t0 = time.perf_counter()
    for q in queries:
        index.search(q[None], k)
    single = time.perf_counter() - t0
    folder = tmp / f"index-{index.backend}"
    save_s, _ = timed(lambda: index.save(folder))
    load_s, loaded = timed(lambda: EmbeddingIndex.load(folder))
    if not np.array_equal(loaded.search(queries, k)[1], result[1]):
        raise RuntimeError(f"{index.backend}: the loaded index answered differently")
    figures = {
        "backend": index.backend,
        "build_s": round(build_s, 3),
        "query_ms_batched": round(1000 * batched / len(queries), 4),
        "query_ms_single": round(1000 * single / len(queries), 4),
        "save_s": round(save_s, 3),
        "load_s": round(load_s, 3),
    }
    return figures, result


def ivf(emb: np.ndarray, queries: np.ndarray, k: int, truth: np.ndarray) -> dict:
    faiss = faiss_module()
    nlist = int(4 * np.sqrt(len(emb)))
    quantizer = faiss.IndexFlatIP(emb.shape[1])
    index = faiss.IndexIVFFlat(quantizer, emb.shape[1], nlist, faiss.METRIC_INNER_PRODUCT)
    build_s, _ = timed(lambda: (index.train(emb), index.add(emb)))
    probes = {}
    for nprobe in (8, 32, 128):
        if nprobe > nlist:
            continue
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        seconds, (_, found) = timed(lambda p=params: index.search(queries, k, params=p))
        probes[str(nprobe)] = {
            "query_ms_batched": round(1000 * seconds / len(queries), 4),
            f"recall_at_{k}": round(recall(found, truth), 4),
        }
    return {"nlist": nlist, "build_s": round(build_s, 3), "nprobe": probes}


def bench(kind: str, n: int, args: argparse.Namespace) -> dict:
    emb = unit_vectors(kind, n, args.dim, seed=0)
    queries = unit_vectors(kind, args.queries, args.dim, seed=1)
    files = [f"/collection/clip-{i:06d}.flac" for i in range(n)]
    k = args.top_k
    out: dict = {"n": n, "dim": args.dim, "queries": args.queries, "top_k": k}
    with tempfile.TemporaryDirectory(prefix="harken-bench-index-") as tmp:
        log(f"{kind} N={n}: exact ...")
        out["exact"], (_, truth) = measure(
            lambda: EmbeddingIndex.build(emb, files, backend="exact"),
            queries,
            k,
            args.repeats,
            Path(tmp),
        )
        if faiss_module() is None:
            out["faiss"] = None
            return out
        log(f"{kind} N={n}: faiss (HNSW) ...")
        out["faiss"], (_, found) = measure(
            lambda: EmbeddingIndex.build(emb, files, backend="faiss", ef_search=args.ef_search),
            queries,
            k,
            args.repeats,
            Path(tmp),
        )
    out["faiss"]["ef_search"] = args.ef_search
    out["faiss"][f"recall_at_{k}"] = round(recall(found, truth), 4)
    # the exact reference itself, checked against a plain argsort
    ref = np.argsort(-(queries @ emb.T), axis=1, kind="stable")[:, :k]
    if not np.array_equal(ref, exact_search(emb, queries, k)[1]):
        raise RuntimeError("exact search disagrees with a brute-force argsort")
    if args.ivf:
        log(f"{kind} N={n}: faiss IVF-flat ...")
        out["ivf_flat"] = ivf(emb, queries, k, truth)
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000", help="comma-separated collection sizes")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--data", default=",".join(DATA), help=f"comma-separated: {DATA}")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--ef-search", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3, help="batched timings: fastest of R")
    parser.add_argument("--ivf", action="store_true", help="also time a raw FAISS IVF-flat index")
    parser.add_argument(
        "--threads", type=int, default=1, help="BLAS/OpenMP threads (0: the libraries' default)"
    )
    args = parser.parse_args(argv)
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.data = args.data.split(",")
    unknown = sorted(set(args.data) - set(DATA))
    if unknown:
        parser.error(f"unknown data {unknown}; choose from {', '.join(DATA)}")
    if min(args.sizes) < args.top_k or args.queries < 1 or args.repeats < 1:
        parser.error("--sizes must be ≥ --top-k, --queries and --repeats ≥ 1")
    if args.ivf and faiss_module() is None:
        parser.error("--ivf needs faiss-cpu")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    machine = machine_info(
        ("numpy", "faiss-cpu"), threads=args.threads or "library default (all cores)"
    )
    faiss = faiss_module()
    if faiss is None:
        log("faiss is not installed: exact search only (`pip install harken[faiss]`)")
    if args.threads:
        threadpool_limits(limits=args.threads)
        if faiss is not None:
            faiss.omp_set_num_threads(args.threads)
    results = {kind: {str(n): bench(kind, n, args) for n in args.sizes} for kind in args.data}
    print(json.dumps({"index": results, "machine": machine}, indent=2))


if __name__ == "__main__":
    main()
