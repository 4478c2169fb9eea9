"""Weight initialisations: a list of :class:`~typedbackprop.Dense` from layer sizes and a seed."""

import itertools
from collections.abc import Sequence
from typing import Literal, get_args

import numpy as np
from numpy.typing import DTypeLike

from typedbackprop.nn.network import Dense

__all__ = ["InitName", "init_layers"]

InitName = Literal["small_normal", "glorot_uniform", "he_normal"]


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
        ``r = √(6 / (in + out))``, which keeps the variance of activations and gradients about
        equal across tanh/sigmoid layers. ``"he_normal"``: ``W ~ N(0, 2 / in)``, the same idea
        for ReLU, which zeroes half its inputs.
    dtype
        The floating-point type of every parameter.

    Returns
    -------
    layers
        One :class:`Dense` per consecutive pair of sizes; ``W`` is ``(out, in)``, ``b`` zeros.

    Raises
    ------
    ValueError
        For fewer than two sizes, a negative size, or an unknown scheme.
    """
    if len(sizes) < 2 or any(size < 0 for size in sizes):
        raise ValueError(f"need at least two non-negative layer sizes, got {list(sizes)}")
    if scheme not in get_args(InitName):
        raise ValueError(f"unknown initialisation {scheme!r}; choose one of {get_args(InitName)}")
    layers = []
    for n_in, n_out in itertools.pairwise(sizes):
        if scheme == "small_normal":
            W = 0.01 * rng.standard_normal((n_out, n_in))
        elif scheme == "glorot_uniform":
            bound = np.sqrt(6.0 / max(n_in + n_out, 1))
            W = rng.uniform(-bound, bound, size=(n_out, n_in))
        else:
            W = rng.standard_normal((n_out, n_in)) * np.sqrt(2.0 / max(n_in, 1))
        layers.append(Dense(W.astype(dtype), np.zeros(n_out, dtype=dtype)))
    return layers
