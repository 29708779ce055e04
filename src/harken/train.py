"""One training loop for every trainable head: seeds, mini-batches, dev-only early stopping.

The loop never sees test data: the caller passes a ``evaluate_dev`` callback computed on dev
classes, and the state with the best dev score is restored at the end (Gebhard et al. §3.2: "the
model state demonstrating optimal performance on the development set is selected").
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm


@contextmanager
def seeded(seed: int) -> Iterator[torch.Generator]:
    """Seed torch's global generator with ``seed`` inside the block and restore the caller's
    state after it; yields a separate generator seeded with ``seed`` (for data order).

    Layer initialisation and dropout draw from torch's global generator, so seeding it locally
    keeps results reproducible without changing the random state of the calling program.
    Python's and NumPy's global generators are never touched.
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        yield torch.Generator().manual_seed(seed)


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` intra-op threads inside the block (None: leave as is); restored afterwards."""
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


#: Models under this many parameters train on one intra-op thread (see :func:`fit`).
SMALL_MODEL_PARAMS = 5_000_000


@dataclass
class TrainConfig:
    """Optimiser settings (defaults: Gebhard et al. 2024 §3.2 — Adam, lr 1e-4, batch 16, 30 ep).

    Attributes:
        betas: Adam's running-average coefficients (KDA uses ``(0.5, 0.999)``).
        plateau_patience: Reduce the learning rate by ``plateau_factor`` when the dev score has
            not improved for this many epochs (ClipClap §4.1 / KDA §4.1: factor 0.1, patience
            3). None: constant learning rate. Needs a dev score.
        lr_drops: Epochs after which the learning rate is multiplied by ``plateau_factor``
            regardless of any dev score: a second training stage replays the reductions its
            first stage made on validation (``fit``'s ``lr_drops`` log), so it needs no
            validation data of its own.
    """

    epochs: int = 30
    lr: float = 1e-4
    batch_size: int = 16
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    plateau_patience: int | None = None
    plateau_factor: float = 0.1
    lr_drops: tuple[int, ...] = ()

    def replay(self, log: dict) -> TrainConfig:
        """The schedule of a retraining stage: ``log["best_epoch"]`` epochs with the learning
        rate reduced after the same epochs as in the run that produced ``log``."""
        epochs = int(log["best_epoch"])
        drops = tuple(e for e in log.get("lr_drops", ()) if e < epochs)
        return replace(self, epochs=epochs, plateau_patience=None, lr_drops=drops)


def fit(
    model: torch.nn.Module,
    loss_fn: Callable[[torch.nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    y: torch.Tensor,
    config: TrainConfig,
    seed: int,
    evaluate_dev: Callable[[torch.nn.Module], float] | None = None,
    progress: bool = False,
) -> dict:
    """Train ``model`` with Adam on ``(x, y)``, keeping the epoch with the best dev score.

    Args:
        model: The head to train (modified in place; ends with the best dev state).
        loss_fn: ``loss_fn(model, x_batch, y_batch) -> scalar``.
        x: ``[N, D]`` inputs; y: ``[N]`` class indices.
        config: Optimiser settings.
        seed: Seeds batch shuffling and dropout (torch's global generator is seeded inside
            ``fit`` and restored afterwards; Python's and NumPy's are not used).
        evaluate_dev: Returns a dev score (higher is better) after each epoch; None keeps the
            last epoch.
        progress: Show a progress bar over epochs.

    Returns:
        ``{"best_epoch", "best_dev", "dev_curve", "loss_curve", "lr_drops"}`` — ``lr_drops``
        lists the epochs after which the learning rate was reduced.

    A trailing mini-batch of a single clip is skipped (batch normalisation cannot train on one
    sample); every other clip is seen once per epoch.
    """
    # Small heads: intra-op threads only add synchronisation (measured 7× slower with 2 threads
    # than with 1 on a shared 2-core machine); results do not change.
    small = sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS
    with torch_threads(1 if small else None), seeded(seed) as gen:
        return _fit(model, loss_fn, x, y, config, gen, evaluate_dev, progress)


def _fit(model, loss_fn, x, y, config, gen, evaluate_dev, progress) -> dict:
    opt = torch.optim.Adam(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay, betas=config.betas
    )
    best_state, best_score, best_epoch = None, -np.inf, config.epochs
    dev_curve, loss_curve, lr_drops = [], [], []
    stale = 0
    for epoch in tqdm(range(1, config.epochs + 1), desc="train", disable=not progress):
        model.train()
        order = torch.randperm(len(x), generator=gen)
        total = 0.0
        for lo in range(0, len(x), config.batch_size):
            idx = order[lo : lo + config.batch_size]
            if len(idx) == 1 and len(x) > 1:
                continue
            loss = loss_fn(model, x[idx], y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
        loss_curve.append(total / max(1, len(x)))
        model.eval()
        if evaluate_dev is not None:
            with torch.no_grad():
                score = float(evaluate_dev(model))
            dev_curve.append(score)
            if score > best_score:
                best_score, best_epoch = score, epoch
                best_state = copy.deepcopy(model.state_dict())
                stale = 0
            else:
                stale += 1
        drop = epoch in config.lr_drops
        if config.plateau_patience is not None and stale >= config.plateau_patience:
            drop, stale = True, 0
        if drop and epoch < config.epochs:
            lr_drops.append(epoch)
            for group in opt.param_groups:
                group["lr"] *= config.plateau_factor
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return {
        "best_epoch": best_epoch,
        "best_dev": None if best_state is None else best_score,
        "dev_curve": dev_curve,
        "loss_curve": loss_curve,
        "lr_drops": lr_drops,
    }
