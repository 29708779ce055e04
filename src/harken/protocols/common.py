"""Pieces the method-comparing protocols share: what a fit chose its settings on, and the run
manifest's record of it."""

from __future__ import annotations


def selection_of(log: dict, criterion: str) -> dict:
    """``{"criterion", "score"}``: what a fit chose its settings on (never test clips) and
    the best score there; ``score`` is None for fixed settings."""
    if "selection_UA" in log:
        return {"criterion": f"UA on {log['selected_on']}", "score": float(log["selection_UA"])}
    if log.get("dev_score") is not None:
        return {"criterion": criterion, "score": float(log["dev_score"])}
    if log.get("selected_on"):
        return {"criterion": f"none ({log['selected_on']})", "score": None}
    return {"criterion": "none (fixed settings)", "score": None}


def criteria(rows: list[dict]) -> list[str]:
    """The distinct selection criteria of a method's rows."""
    return sorted({r["selection"]["criterion"] for r in rows})


def chosen_configs(summary: dict, rows_key: str) -> dict:
    """A method's manifest entry: its configured settings and, per fold (split) and seed, the
    settings it chose and what it chose them on."""
    keys = ("fold", "split", "seed")
    return {
        "config": summary["config"],
        "chosen": [
            {
                **{k: r[k] for k in keys if k in r},
                "config": r["config"],
                "selection": r["selection"],
            }
            for r in summary[rows_key]
        ],
    }


def compact(log: dict) -> dict:
    """A fit log without per-epoch curves (they go to the manifest's selection log)."""
    return {k: v for k, v in log.items() if not k.endswith("_curve")}
