"""How a forward pass runs: training or evaluation, and the randomness for training.

It lives in its own module so that the layer modules that read it (dropout, batch norm) and
the table of families that imports them can both import it.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["Mode"]


@dataclass(frozen=True, slots=True)
class Mode:
    """How a forward pass runs: training (batch statistics, dropout on) or evaluation.

    ``Mode()`` is evaluation: it needs no generator, and it is what a prediction runs in.
    :func:`~typedbackprop.nn.network.network_forward` and ``network_loss_and_grads`` default to
    training instead (without randomness: a network with dropout is given
    ``Mode(training=True, rng=...)``), because their gradients are asked for to train.
    """

    training: bool = False
    """True while training; layers such as dropout and batch norm act differently then."""
    rng: np.random.Generator | None = None
    """The source of randomness for layers that draw (dropout's masks) while training."""
