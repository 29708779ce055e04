"""Sounding-action retrieval (``protocol = "retrieval"``; Chen et al. 2024, §6.2, Table 3).

"A retrieval is correct if the retrieved instance B and A belong to the same action group."
Embedding methods are trained on the training clips; the evaluation clips are grouped by
action (the ``group_by`` label column, by default the run's ``target`` — EPIC-KITCHENS'
``action`` is the paper's verb + noun group), only groups with more than two (sounding) instances
are kept, and each group is divided equally into a query pool and a retrieval pool. Every query
modality retrieves every other modality of the retrieval pool by cosine — up to six directions
(audio, video and text, each way): R@1/5/10, mAP@10 and the median rank.

``group_by = "clip"`` is instance retrieval instead: every evaluation clip queries every
evaluation clip's other modalities, and only its own recording is relevant (for data without
action groups, e.g. av-mini).

Every query's outcome is kept in ``ranks.csv`` (method, seed, direction, query id, the rank of
its first correct item, its AP@10, its number of relevant items and the pool size): enough for
R@k at every k, the random baseline at every k and the report's bootstrap intervals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from harken.errors import ConfigError, DataError
from harken.metrics.classification import mean_std
from harken.protocols import trimodal
from harken.protocols.base import PROTOCOLS, Protocol, at_least
from harken.reports.results import text_table

if TYPE_CHECKING:
    from harken.experiment import Experiment

METRICS = ("R@1", "R@5", "R@10", "mAP@10", "median_rank")
#: The per-query file and its columns.
RANKS_FILE = "ranks.csv"
RANKS_HEADER = ["method", "seed", "direction", "query_id", "rank", "ap@10", "relevant", "items"]


@dataclass
class RetrievalOptions(trimodal.TrainSplitOptions):
    """``[protocol]`` keys of ``retrieval``: those of
    :class:`~harken.protocols.trimodal.TrainSplitOptions` and

    Attributes:
        group_by: The label column whose value is a clip's action group (None: ``target``), or
            ``"clip"``: instance retrieval (a clip's own recording is the only relevant item).
        min_group: Keep groups with at least this many instances (3: "more than two", §6.2).
        sounding_only: With sounding labels, keep only sounding clips (as §6.2 does).
        pool_seed: Seed of the query / retrieval pool division.
    """

    group_by: str | None = None
    min_group: int = 3
    sounding_only: bool = True
    pool_seed: int = 0


@PROTOCOLS.register("retrieval")
class Retrieval(Protocol):
    """Cross-modal retrieval of clips of the same action group."""

    name = "retrieval"
    Options = RetrievalOptions
    PATH_OPTIONS = ("train_dataset",)
    RANGES = (
        *trimodal.TRAIN_SPLIT_RANGES,
        ("min_group", *at_least(2)),
        ("pool_seed", *at_least(0)),
    )

    def run(self, exp: Experiment) -> dict:
        from harken.metrics.retrieval import split_pools

        config, folder, o = exp.config, exp.folder, self.options
        methods = trimodal.embedders(exp, self.name)
        needs = sorted({f for m in methods.values() for f in m.features})
        train, test = trimodal.split(exp, needs, o)
        column = o.group_by or config.target
        if column != "clip" and column not in test.manifest.targets:
            raise ConfigError(
                f"{config.key('group_by')}: dataset {test.manifest.name!r} has no label column "
                f"{column!r} to group actions by; choose one of {test.manifest.targets}"
            )
        sounding = test.sounding
        keep = np.ones(len(test.batch), bool)
        if o.sounding_only and any(s is not None for s in sounding):
            keep = np.array([s is True for s in sounding])
        test = test.subset(keep)
        if column == "clip":
            groups = list(test.groups)
            n_groups = len(set(groups))
            query = items = np.arange(len(groups))
        else:
            groups = test.manifest.labels(column)
            counts = {g: groups.count(g) for g in set(groups)}
            big = np.array([counts[g] >= o.min_group for g in groups])
            n_groups = len({g for g, b in zip(groups, big, strict=True) if b})
            if n_groups == 0:
                raise DataError(
                    f"dataset {test.manifest.name!r}: no action group ({column!r}) has "
                    f"{o.min_group} or more evaluation clips; lower min_group or add clips"
                )
            test = test.subset(big)
            groups = [g for g, b in zip(groups, big, strict=True) if b]
            query, items = split_pools(groups, seed=o.pool_seed)

        with folder.stage("methods"):
            units = trimodal.seed_units(
                folder,
                methods,
                config.seeds,
                lambda n, seed: self._evaluate(exp, n, train, test, groups, query, items, seed),
            )
        per_query = trimodal.take_per_clip(units)
        methods_out = {n: summarise(runs, methods[n].config()) for n, runs in units.items()}
        results = {
            "dataset": test.manifest.name,
            "target": column,
            "protocol": {
                "name": self.name,
                "groups": n_groups,
                "queries": len(query),
                "items": len(items),
                "min_group": o.min_group,
                "sounding_only": o.sounding_only,
                "train_clips": len(train.batch),
                "train_dataset": o.train_dataset,
                "text": test.text_source,
                "seeds": config.seeds,
            },
            "encoders": {"features": needs, "text": config.text_encoder, "frames": config.frames},
            "chance": chance(groups, query, items, test.text_source == "class knowledge"),
            "methods": methods_out,
        }
        trimodal.write_results(
            exp,
            self,
            results,
            {"train": train, "test": test},
            (RANKS_FILE, RANKS_HEADER, per_query),
        )
        return results

    @staticmethod
    def _evaluate(exp, name, train, test, groups, query, items, seed) -> dict:
        method, log = trimodal.fit_embedder(exp, name, train, seed)
        emb = method.embed(test.batch)
        distinct = test.text_source == "class knowledge"
        ids = [c.clip_id for c in test.manifest.clips]
        return {
            "seed": seed,
            "config": method.config(),
            "directions": directions(emb, groups, query, items, distinct),
            "epoch_seconds": log.get("epoch_seconds"),
            trimodal.PER_CLIP: query_ranks(emb, groups, query, items, ids, distinct),
        }

    @staticmethod
    def markdown(results: dict) -> str:
        p = results["protocol"]
        lines = [
            f"# {results['dataset']} — sounding-action retrieval ({results['target']} groups)",
            "",
            f"{p['groups']} groups; {p['queries']} queries, {p['items']} retrieval items; "
            f"methods trained on {p['train_clips']} clips (text: {p['text']}); mean ± std over "
            f"seeds {p['seeds']}. A retrieval is correct when both clips share a group.",
            "",
            "| method | direction | " + " | ".join(METRICS) + " |",
            "|---|---|" + "---|" * len(METRICS),
        ]
        for d, c in results["chance"].items():
            lines.append(
                f"| random | {d.replace('_', ' ')} | "
                + " | ".join(f"{c[m]:.3f}" if m in c else "–" for m in METRICS)
                + " |"
            )
        for name, r in results["methods"].items():
            for d, v in r["directions"].items():
                cells = [f"{v[m]['mean']:.3f} ± {v[m]['std']:.3f}" for m in METRICS]
                lines.append(f"| {name} | {d.replace('_', ' ')} | " + " | ".join(cells) + " |")
        lines.append("")
        return "\n".join(lines)

    @staticmethod
    def table(results: dict) -> str:
        rows = [("method", "direction", *METRICS)]
        for name, r in results["methods"].items():
            for d, v in r["directions"].items():
                rows.append((name, d, *(f"{v[m]['mean']:.3f}" for m in METRICS)))
        return text_table(rows)


def summarise(runs: list[dict], config: dict) -> dict:
    directions = sorted(set.intersection(*(set(r["directions"]) for r in runs)))
    out = {
        "directions": {
            d: {m: mean_std([r["directions"][d][m] for r in runs]) for m in METRICS}
            for d in directions
        },
        "runs": runs,
        "config": config,
    }
    secs = [s for r in runs if (s := r.get("epoch_seconds"))]
    out["epoch_seconds"] = float(np.mean([np.mean(s) for s in secs])) if secs else None
    return out


def side(
    emb: dict[str, np.ndarray],
    modality: str,
    idx,
    groups: list[str],
    distinct_text: bool,
    ids: list[str] | None = None,
) -> tuple[np.ndarray, list[str]] | tuple[np.ndarray, list[str], list[str]]:
    """The rows and groups (and with ``ids``, the row ids) of one side of a direction. With
    class knowledge as the text, the texts of one class are one and the same text: it stands
    once in the pool (so audio→text ranks the distinct class texts, as a user would search
    them), and its id is its class."""
    rows, g = emb[modality][np.asarray(idx)], [groups[i] for i in idx]
    row_ids = [ids[i] for i in idx] if ids is not None else None
    if modality == "text" and distinct_text:
        first: dict[str, int] = {}
        for k, group in enumerate(g):
            first.setdefault(group, k)
        keep = list(first.values())
        rows, g = rows[keep], [g[k] for k in keep]
        row_ids = list(g) if ids is not None else None
    return (rows, g) if row_ids is None else (rows, g, row_ids)


def directions(emb, groups, query, items, distinct_text: bool = False) -> dict[str, dict]:
    """:func:`~harken.metrics.retrieval.cross_modal_retrieval` for every ordered pair of the
    modalities in ``emb`` (up to six), queries from the query pool, items from the other."""
    from harken.metrics.retrieval import cross_modal_retrieval

    out = {}
    for a in emb:
        for b in emb:
            if a != b:
                qa, qg = side(emb, a, query, groups, distinct_text)
                ib, ig = side(emb, b, items, groups, distinct_text)
                out[f"{a}_to_{b}"] = cross_modal_retrieval(qa, ib, qg, ig)
    return dict(sorted(out.items()))


def query_ranks(
    emb, groups, query, items, ids: list[str], distinct_text: bool = False
) -> list[list]:
    """Per direction and query: ``[direction, query id, rank, AP@10, relevant, items]`` — the
    1-based rank of the query's first relevant item by cosine (ties by item order, as
    :func:`~harken.metrics.retrieval.cross_modal_retrieval` ranks them), its AP@10, its number
    of relevant items and the pool size. Queries without a relevant item (which
    ``cross_modal_retrieval`` drops) are left out, so ``R@k = mean(rank ≤ k)`` over these rows
    is the run's R@k."""
    from harken.metrics.retrieval import average_precision_at_k, class_relevance, ranks

    out: list[list] = []
    for a in emb:
        for b in emb:
            if a == b:
                continue
            qa, qg, qid = side(emb, a, query, groups, distinct_text, ids)
            ib, ig, _ = side(emb, b, items, groups, distinct_text, ids)
            relevant = class_relevance(qg, ig)
            ok = relevant.any(axis=1)
            scores = trimodal.unit_rows(qa)[ok] @ trimodal.unit_rows(ib).T
            r, ap = ranks(scores, relevant[ok]), average_precision_at_k(scores, relevant[ok], 10)
            n_rel = relevant[ok].sum(axis=1)
            kept = [q for q, y in zip(qid, ok, strict=True) if y]
            out += [
                [f"{a}_to_{b}", q, int(k), float(p), int(m), len(ig)]
                for q, k, p, m in zip(kept, r, ap, n_rel, strict=True)
            ]
    return sorted(out, key=lambda row: row[0])


def random_recall_curve(relevant: Sequence[int], items: Sequence[int], ks: Sequence[int]) -> list:
    """Expected R@k of a random ranking at each ``k`` in ``ks``: the mean over queries of
    ``1 − C(n − r, k) / C(n, k) = 1 − Π_{i<k} (n − r − i) / (n − i)`` for a query with ``r``
    relevant among ``n`` items (:func:`random_recall` at every ``k``; ``k`` beyond ``n``
    counts as ``n``)."""
    ks = np.asarray(ks, dtype=np.int64)
    total = np.zeros(len(ks))
    pairs: dict[tuple[int, int], int] = {}
    for r, n in zip(relevant, items, strict=True):
        pairs[(int(r), int(n))] = pairs.get((int(r), int(n)), 0) + 1
    for (r, n), count in pairs.items():
        i = np.arange(n)
        miss = np.concatenate([[1.0], np.cumprod(np.clip(n - r - i, 0, None) / (n - i))])
        total += count * (1 - miss[np.minimum(ks, n)])
    return (total / max(sum(pairs.values()), 1)).tolist()


def random_recall(query_groups: list[str], item_groups: list[str]) -> dict[str, float]:
    """Expected R@k of a random ranking: ``1 − C(n − r, k) / C(n, k)`` for a query with ``r``
    relevant among ``n`` items, averaged over the queries that have one."""
    from math import comb

    n = len(item_groups)
    out = {}
    for k in (1, 5, 10):
        kk = min(k, n)
        vals = [
            1 - comb(n - r, kk) / comb(n, kk) for g in query_groups if (r := item_groups.count(g))
        ]
        out[f"R@{k}"] = float(np.mean(vals)) if vals else 0.0
    return out


def chance(groups: list[str], query, items, distinct_text: bool = False) -> dict:
    """Random R@k for clip items (``any``) and, with one text per class, for text items
    (``to_text``)."""
    q = [groups[i] for i in query]
    out = {"any": random_recall(q, [groups[i] for i in items])}
    if distinct_text:
        out["to_text"] = random_recall(q, sorted({groups[i] for i in items}))
    return out
