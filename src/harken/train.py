"""One training loop for every trainable head: seeds, mini-batches, dev-only early stopping.

The loop never sees test data: the caller passes a ``evaluate_dev`` callback computed on dev
classes, and the state with the best dev score is restored at the end (Gebhard et al. §3.2: "the
model state demonstrating optimal performance on the development set is selected").
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from tqdm.auto import tqdm


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; returns a torch generator for data order."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


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
        seed: Seeds initialisation order and batch shuffling.
        evaluate_dev: Returns a dev score (higher is better) after each epoch; None keeps the
            last epoch.
        progress: Show a progress bar over epochs.

    Returns:
        ``{"best_epoch", "best_dev", "dev_curve", "loss_curve", "lr_drops"}`` — ``lr_drops``
        lists the epochs after which the learning rate was reduced.

    A trailing mini-batch of a single clip is skipped (batch normalisation cannot train on one
    sample); every other clip is seen once per epoch.
    """
    threads = torch.get_num_threads()
    if sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMS:
        # Small heads: intra-op threads only add synchronisation (measured 7× slower with 2
        # threads than with 1 on a shared 2-core machine); results do not change.
        torch.set_num_threads(1)
    try:
        return _fit(model, loss_fn, x, y, config, seed, evaluate_dev, progress)
    finally:
        torch.set_num_threads(threads)


def _fit(model, loss_fn, x, y, config, seed, evaluate_dev, progress) -> dict:
    gen = seed_everything(seed)
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
