"""Weight initialisations: a list of :class:`~typedbackprop.Dense` from layer sizes and a seed."""

import itertools
import math
from collections.abc import Callable, Sequence
from typing import Literal, get_args

import numpy as np
from numpy.typing import DTypeLike

from typedbackprop.checking import Array
from typedbackprop.nn.network import Dense

__all__ = ["INITIALIZATIONS", "InitName", "init_layers"]

InitName = Literal["small_normal", "glorot_uniform", "he_normal"]

WeightDraw = Callable[[np.random.Generator, int, int], Array]
"""``draw(rng, n_in, n_out) -> W``, a float64 ``(out, inp)`` array."""


def _small_normal(rng: np.random.Generator, n_in: int, n_out: int) -> Array:
    """``W ~ 0.01 N(0, 1)``."""
    return 0.01 * rng.standard_normal((n_out, n_in))


def _glorot_uniform(rng: np.random.Generator, n_in: int, n_out: int) -> Array:
    """``W ~ U(−r, r)``, ``r = √(6 / (inp + out))``."""
    bound = math.sqrt(6.0 / max(n_in + n_out, 1))
    return rng.uniform(-bound, bound, size=(n_out, n_in))


def _he_normal(rng: np.random.Generator, n_in: int, n_out: int) -> Array:
    """``W ~ N(0, 2 / inp)``."""
    return rng.standard_normal((n_out, n_in)) * math.sqrt(2.0 / max(n_in, 1))


INITIALIZATIONS: dict[str, WeightDraw] = {
    "small_normal": _small_normal,
    "glorot_uniform": _glorot_uniform,
    "he_normal": _he_normal,
}
"""Each initialisation's weight draw, by name (see :func:`init_layers`)."""

assert set(INITIALIZATIONS) == set(get_args(InitName))


def init_layers(
    sizes: Sequence[int],
    rng: np.random.Generator,
    scheme: InitName = "glorot_uniform",
    dtype: DTypeLike = np.float64,
) -> list[Dense]:
    """Random weights and zero biases for a network with the given layer sizes.

    Parameters
    ----------
    sizes
        ``(in_0, out_1, out_2, ..., out_L)``: the input width, then each layer's width.
    rng
        The source of randomness; the same seed gives the same weights.
    scheme
        ``"small_normal"``: ``W ~ 0.01 N(0, 1)``, as in the question (fine for a small sigmoid
        network, vanishing signals in a deep one). ``"glorot_uniform"``: ``W ~ U(−r, r)`` with
        ``r = √(6 / (inp + out))``, which keeps the variance of activations and gradients about
        equal across tanh/sigmoid layers. ``"he_normal"``: ``W ~ N(0, 2 / inp)``, the same idea
        for ReLU, which zeroes half its inputs.
    dtype
        The floating-point type of every parameter.

    Returns
    -------
    layers
        One :class:`Dense` per consecutive pair of sizes; ``W`` is ``(out, inp)``, ``b`` zeros.

    Raises
    ------
    ValueError
        For fewer than two sizes, a negative size, or an unknown scheme.
    """
    if len(sizes) < 2 or any(size < 0 for size in sizes):
        raise ValueError(f"need at least two non-negative layer sizes, got {list(sizes)}")
    if scheme not in INITIALIZATIONS:
        raise ValueError(f"unknown initialisation {scheme!r}; choose one of {get_args(InitName)}")
    draw = INITIALIZATIONS[scheme]
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        W = draw(rng, n_in, n_out)
        layers.append(Dense(W.astype(dtype), np.zeros(n_out, dtype=dtype)))
    return layers
