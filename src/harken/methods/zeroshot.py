"""``zeroshot`` (and ``clap`` / ``msclap``): training-free classification in a joint space.

CLAP's zero-shot classification (Elizalde et al., 2023, §2.3): each candidate class is described
by texts (a prompt ensemble or a knowledge generator's descriptions); the class embedding is the
mean of the L2-normalised text embeddings, re-normalised (:func:`class_embeddings` with
``normalize=True``); a clip scores ``λ · cos(E_a, E_c)`` with the model's logit scale ``λ``,
turned into probabilities by softmax (one label per clip) or sigmoid (several).

The joint space is pluggable (:mod:`harken.methods.joint`): ``clap:<id>`` and ``msclap`` need
CLAP weights; ``bridge`` — the label bridge through YAMNet's AudioSet labels — runs offline and is
the default, so ``zeroshot`` with no options equals the ``bridge`` method at its a-priori defaults.
"""

from __future__ import annotations

import numpy as np

from harken.errors import ConfigError
from harken.methods.base import METHODS, Batch, Classes, Method
from harken.methods.joint import JointSpace, get_joint_space, sigmoid, softmax

ACTIVATIONS = {"softmax": softmax, "sigmoid": sigmoid}


class ZeroShot(Method):
    """Zero-shot classification by joint-space similarity (see the module docstring).

    Args:
        space: Joint-space spec (``bridge``, ``clap[:<id>]``, ``msclap[:<version>]``) or an
            already built :class:`JointSpace`.
        activation: ``softmax`` (single-label) or ``sigmoid`` (multi-label) for
            :meth:`probabilities`.
        space_options: Options of the space (e.g. ``top_t`` of ``bridge``).
    """

    name = "zeroshot"

    def __init__(
        self, space: str | JointSpace = "bridge", activation: str = "softmax", **space_options
    ) -> None:
        if activation not in ACTIVATIONS:
            raise ConfigError(
                f"activation must be one of {sorted(ACTIVATIONS)}, not {activation!r}"
            )
        self.space = (
            space if isinstance(space, JointSpace) else get_joint_space(space, **space_options)
        )
        self.activation = activation
        self.features = (self.space.audio_name,)
        #: Text encoder the class knowledge must be embedded with (read by the experiment).
        self.text_encoder = self.space.text_name

    def score(self, batch: Batch, classes: Classes) -> np.ndarray:
        """``[N, C]`` logits ``λ · a(x)ᵀ u(c)``."""
        return self.space.scores(batch.get(self.space.audio_name), classes.embeddings)

    def probabilities(self, batch: Batch, classes: Classes) -> np.ndarray:
        """Softmax (single-label) or sigmoid (multi-label) of :meth:`score`."""
        return ACTIVATIONS[self.activation](self.score(batch, classes)).astype(np.float32)

    def config(self) -> dict:
        return {
            "space": self.space.spec,
            "activation": self.activation,
            **_space_options(self.space),
        }


def _space_options(space: JointSpace) -> dict:
    keys = ("top_t", "sim_threshold", "sim_power", "label_text")
    return {k: getattr(space, k) for k in keys if hasattr(space, k)}


@METHODS.register("zeroshot")
def _make_zeroshot(spec: str | None = None, **kwargs) -> ZeroShot:
    if spec:
        kwargs["space"] = spec
    return ZeroShot(**kwargs)


@METHODS.register("clap")
def _make_clap(spec: str | None = None, **kwargs) -> ZeroShot:
    return ZeroShot(space=f"clap:{spec}" if spec else "clap", **kwargs)


@METHODS.register("msclap")
def _make_msclap(spec: str | None = None, **kwargs) -> ZeroShot:
    return ZeroShot(space=f"msclap:{spec}" if spec else "msclap", **kwargs)
