"""What defines a network apart from its parameters, and how to build one from a seed.

:class:`Architecture` describes a multilayer perceptron: its sizes, activations and loss.
:func:`random_layers` is the one place the package (its command line, ``explain``, the demo)
builds a network of random parameters.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from typedbackprop.nn.affine import Dense
from typedbackprop.nn.losses import LossName
from typedbackprop.nn.network import ActivationName, OutputActivationName, check_names

__all__ = ["Architecture", "random_layers"]


@dataclass(frozen=True)
class Architecture:
    """Everything but the parameters that defines a network and its loss.

    Parameters
    ----------
    sizes
        ``(in_0, out_1, ..., out_L)``: the input width, then each layer's width.
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation.
    loss
        The loss; ``binary_cross_entropy`` needs a ``sigmoid`` output and ``cross_entropy`` a
        ``softmax`` one (they are computed from the logits).

    Raises
    ------
    ValueError
        For fewer than two sizes, a size below 1, or an unknown or mismatched name.
    """

    sizes: tuple[int, ...]
    activation: ActivationName = "sigmoid"
    output_activation: OutputActivationName = "identity"
    loss: LossName = "squared_error"

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(
                f"an architecture needs at least two layer sizes, each at least 1; got {self.sizes}"
            )
        check_names(self.activation, self.output_activation, self.loss)

    def describe(self) -> str:
        """``"2-3-3-1 sigmoid/sigmoid, squared_error"``: sizes, activations and loss."""
        sizes = "-".join(str(size) for size in self.sizes)
        return f"{sizes} {self.activation}/{self.output_activation}, {self.loss}"


def random_layers(sizes: Sequence[int], rng: np.random.Generator) -> list[Dense]:
    """Dense layers of standard normal weights scaled by ``1/√in``, and standard normal biases.

    Parameters
    ----------
    sizes
        ``(in_0, out_1, ..., out_L)``.
    rng
        The source of randomness.

    Returns
    -------
    layers
        One :class:`~typedbackprop.nn.affine.Dense` per consecutive pair of sizes. Unlike
        :func:`~typedbackprop.initialize.init_layers` the biases are not zero, so that a gradient
        check or a printout exercises every term.
    """
    return [
        Dense(rng.standard_normal((n_out, n_in)) / np.sqrt(n_in), rng.standard_normal(n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True)
    ]
