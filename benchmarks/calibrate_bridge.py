"""Refit the packaged temperature of ``predict``'s default ``bridge`` space (``calibration_data/``).

Data: Kitchen20's 1,070 clips (not the user's data), each seen ``--subsets`` times with a random
candidate set of 2–20 of the 20 class names that always contains its true class (sizes uniform,
``--seed``). Scores are the default space's compatibilities ``a(x)ᵀu(t)`` with the labels
described as ``predict`` describes them by default. ``T`` minimises their mean NLL
(:func:`harken.methods.calibration.fit_temperature`). Temperature does not change rankings, so no
accuracy figure moves; what moves is NLL and ECE, reported before (softmax of the raw scores,
``T = 1``) and after:

* ``fit``: in sample (all of Kitchen20, the random candidate sets);
* ``kitchen20_by_fold``: fitted on 8 of Kitchen20's 9 folds, scored on the held-out fold (the
  ``--subsets`` candidate sets of its clips), pooled over the 9 folds;
* ``av_mini``: out of sample — av-mini's 36 clips (their audio), all its distinct labels as
  candidates.

Usage::

    python benchmarks/calibrate_bridge.py [--store-dir DIR] [--subsets 10] [--seed 0] [--write]

Prints the JSON; ``--write`` also stores it as the packaged calibration (atomically).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from vocabulary import read_labels, tagger_outputs

N_BINS = 15


def raw_scores(space, post: np.ndarray, classes: list[str]) -> np.ndarray:
    """``a(x)ᵀu(t)`` without any logit scale, labels described as ``predict`` does."""
    from harken.api import _model_settings
    from harken.knowledge.base import get_generator
    from harken.knowledge.classes import class_embeddings, class_texts

    settings = _model_settings(None)
    texts = class_texts(get_generator(settings["generator"]), classes)
    u = space.text_vectors(class_embeddings(texts, space.text_encoder, classes))
    return space.audio_vectors(post).astype(np.float64) @ u.T.astype(np.float64)


def candidate_sets(truth: np.ndarray, n_classes: int, subsets: int, seed: int):
    """Rows repeated ``subsets`` times, each with a random candidate mask of 2–``C`` classes
    holding the true one. Returns ``(row index, mask)``."""
    rng = np.random.default_rng(seed)
    rows = np.repeat(np.arange(len(truth)), subsets)
    mask = np.zeros((len(rows), n_classes), dtype=bool)
    for r, i in enumerate(rows):
        size = int(rng.integers(2, n_classes + 1))
        others = rng.permutation([c for c in range(n_classes) if c != truth[i]])[: size - 1]
        mask[r, [truth[i], *others]] = True
    return rows, mask


def figures(scores, targets, mask, temperature: float) -> dict:
    from harken.methods.calibration import (
        expected_calibration_error,
        negative_log_likelihood,
        softmax_probabilities,
    )

    out = {}
    for when, beta in (("before", 1.0), ("after", 1.0 / temperature)):
        p = softmax_probabilities(scores, beta, mask)
        out[when] = {
            "nll": round(negative_log_likelihood(scores, targets, beta, mask), 4),
            "ece": round(expected_calibration_error(p, targets, N_BINS), 4),
            "mean_confidence": round(float(p.max(axis=1).mean()), 4),
            "accuracy": round(float((p.argmax(axis=1) == np.asarray(targets)).mean()), 4),
        }
    return out


def main(argv: list[str] | None = None) -> None:
    from harken.methods.calibration import BRIDGE_CALIBRATION, fit_temperature
    from harken.methods.joint import BridgeSpace
    from harken.store.atomic import atomic_write_text

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store-dir", type=Path, default=Path("/tmp/harken-vocabulary-store"))
    parser.add_argument("--subsets", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)

    from harken.api import _model_settings

    space = BridgeSpace(**_model_settings(None)["space_options"])  # predict's bridge
    files, labels = read_labels("kitchen20")
    classes = sorted(set(labels))
    truth = np.array([classes.index(t) for t in labels])
    folds = np.array(_folds())
    scores = raw_scores(space, tagger_outputs(files, args.store_dir), classes)
    rows, mask = candidate_sets(truth, len(classes), args.subsets, args.seed)
    s, y = scores[rows], truth[rows]
    temperature = fit_temperature(s, y, mask)

    pooled_s, pooled_y, pooled_m, pooled_t = [], [], [], []
    for fold in sorted(set(folds)):
        train = folds[rows] != fold
        t_fold = fit_temperature(s[train], y[train], mask[train])
        pooled_s.append(s[~train])
        pooled_y.append(y[~train])
        pooled_m.append(mask[~train])
        pooled_t.append(np.full((~train).sum(), t_fold))
    by_fold = _pooled(pooled_s, pooled_y, pooled_m, pooled_t)

    av_files, av_labels = read_labels("av-mini")
    av_classes = sorted(set(av_labels))
    av_scores = raw_scores(space, tagger_outputs(av_files, args.store_dir), av_classes)
    av_truth = np.array([av_classes.index(t) for t in av_labels])
    fit = figures(s, y, mask, temperature)
    report = {
        "space": space.calibration_key(),
        "temperature": round(temperature, 6),
        "logit_scale": round(1.0 / temperature, 4),
        "method": "temperature scaling (Guo et al. 2017, §4.2): T minimising the mean NLL",
        "data": {
            "dataset": "Kitchen20 (1,070 clips, 20 classes; not the user's data)",
            "candidates": f"{args.subsets} random candidate sets of 2–20 class names per clip, "
            "each holding the true class",
            "labels_described_by": "template:harken (predict's default)",
            "seed": args.seed,
            "rows": len(rows),
        },
        "date": datetime.date.today().isoformat(),
        "nll": {"before": fit["before"]["nll"], "after": fit["after"]["nll"]},
        "ece": {"before": fit["before"]["ece"], "after": fit["after"]["ece"], "bins": N_BINS},
        "kitchen20_by_fold": by_fold,
        "av_mini": {
            "clips": len(av_labels),
            "candidates": len(av_classes),
            **figures(av_scores, av_truth, None, temperature),
        },
        "note": "T divides all of a clip's scores alike, so rankings and accuracies do not change",
        "refit": "python benchmarks/calibrate_bridge.py --write",
    }
    text = json.dumps(report, indent=1, ensure_ascii=False) + "\n"
    if args.write:
        BRIDGE_CALIBRATION.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(BRIDGE_CALIBRATION, text)
    print(text)


def _folds() -> list[int]:
    import csv

    from vocabulary import DATA

    with open(DATA / "kitchen20" / "labels.csv", newline="") as f:
        return [int(r["fold"]) for r in csv.DictReader(f)]


def _pooled(scores, targets, masks, temps) -> dict:
    """NLL/ECE of the held-out folds, each under the temperature fitted without it."""
    from harken.methods.calibration import (
        expected_calibration_error,
        negative_log_likelihood,
        softmax_probabilities,
    )

    s, y, m = np.concatenate(scores), np.concatenate(targets), np.concatenate(masks)
    t = np.concatenate(temps)
    p_before = softmax_probabilities(s, 1.0, m)
    p_after = softmax_probabilities(s / t[:, None], 1.0, m)
    nll_after = float(-np.mean(np.log(p_after[np.arange(len(y)), y])))
    return {
        "before": {
            "nll": round(negative_log_likelihood(s, y, 1.0, m), 4),
            "ece": round(expected_calibration_error(p_before, y, N_BINS), 4),
        },
        "after": {
            "nll": round(nll_after, 4),
            "ece": round(expected_calibration_error(p_after, y, N_BINS), 4),
        },
        "temperatures": [round(float(v), 6) for v in sorted(set(t.tolist()))],
    }


if __name__ == "__main__":
    main()
