"""The affine layer ``z = W a_prev + b`` and its backward pass.

Layout is features first, batch last, the layout of the math: a column of ``a_prev`` is one
example. Every gradient carries exactly the annotation of the value it is the gradient of, and
that equality is what decides each transpose and each order of a product.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import (
    Array,
    checked,
    checked_record,
    runtime_shapes_only,
    static_jaxtyping,
)
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.specs import Spec

__all__ = [
    "Dense",
    "DenseCache",
    "affine_forward",
    "affine_backward",
    "affine_grad_params",
    "affine_grad_input",
    "dense_forward",
    "dense_backward",
]


@checked
@static_jaxtyping("out inp batch")
def affine_forward(
    W: Float[Array, "out inp"],
    b: Float[Array, " out"],
    a_prev: Float[Array, "inp batch"],
) -> Float[Array, "out batch"]:
    """Apply the affine map ``z = W a_prev + b`` to a batch of columns.

    Parameters
    ----------
    W
        Weights; row ``o`` holds the weights into output unit ``o``.
    b
        Biases, one per output unit.
    a_prev
        The previous layer's activations, one column per example.

    Returns
    -------
    z
        Pre-activations, one column per example.

    Notes
    -----
    Index form: ``z_{ob} = Σ_i W_{oi} a_prev_{ib} + b_o``.

    Matrix form: ``z = W a_prev + b 1ᵀ``: the bias is added to every column. In NumPy ``b`` has
    shape ``(out,)`` and broadcasting aligns *trailing* axes, so ``W @ a_prev + b`` would add
    ``b`` along ``batch`` (and be silently wrong when ``out == batch``); ``b[:, np.newaxis]``
    has shape ``(out, 1)`` and adds along ``out``.
    """
    z = W @ a_prev
    z += b[:, np.newaxis]  # in place: the product is a fresh array, no second temporary
    return z


@checked
@static_jaxtyping("out inp batch")
def affine_grad_params(
    grad_z: Float[Array, "out batch"],
    a_prev: Float[Array, "inp batch"],
) -> tuple[Float[Array, "out inp"], Float[Array, " out"]]:
    """Gradients of the loss with respect to ``W`` and ``b`` (BP4 and BP3).

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ`` in the equations).
    a_prev
        The input the forward pass saw.

    Returns
    -------
    grad_W
        ``∂L/∂W``; it has the shape of ``W``, ``(out, inp)``.
    grad_b
        ``∂L/∂b``; it has the shape of ``b``, ``(out,)``.

    Notes
    -----
    Index form: ``∂L/∂W_{oi} = Σ_b δ_{ob} a_prev_{ib}`` and ``∂L/∂b_{o} = Σ_b δ_{ob}``: the 1-D
    rule, upstream gradient times local gradient (``∂z_{ob}/∂W_{oi} = a_prev_{ib}`` and
    ``∂z_{ob}/∂b_{o} = 1``), summed over the examples, which all use the same ``W`` and ``b``.

    Matrix form: ``∂L/∂W = δ a_prevᵀ`` and ``∂L/∂b = δ 1``. The shape argument: ``grad_W``
    must be ``(out, inp)``; from ``δ: (out, batch)`` and ``a_prev: (inp, batch)`` the only product
    that gives it sums over ``batch``: ``(out, batch) @ (batch, inp)``, that is
    ``grad_z @ a_prev.T``. The bias is shared by every column, so its gradient sums over
    ``batch``, the axis it was broadcast along.
    """
    grad_W = grad_z @ a_prev.T
    grad_b = grad_z.sum(axis=1)
    return grad_W, grad_b


AFFINE_GRAD_W = Spec("grad_W", "ob,ib->oi", ("grad_z", "a_prev"))
"""BP4 in index form, ``∂L/∂W_{oi} = Σ_b δ_{ob} a_prev_{ib}``: what :func:`affine_grad_params`
computes as ``grad_z @ a_prev.T``."""

AFFINE_GRAD_B = Spec("grad_b", "ob->o", ("grad_z",))
"""BP3 in index form, ``∂L/∂b_{o} = Σ_b δ_{ob}``: ``grad_z.sum(axis=1)``."""


@checked
@static_jaxtyping("out inp batch")
def affine_grad_input(
    grad_z: Float[Array, "out batch"],
    W: Float[Array, "out inp"],
) -> Float[Array, "inp batch"]:
    """Gradient of the loss with respect to the layer's input ``a_prev``.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ`` in the equations).
    W
        The weights the forward pass used.

    Returns
    -------
    grad_a_prev
        ``∂L/∂a_prev``; it has the shape of ``a_prev``, ``(inp, batch)``.

    Notes
    -----
    Index form: ``∂L/∂a_prev_{ib} = Σ_o δ_{ob} W_{oi}``: the 1-D rule, upstream gradient times
    local gradient (``∂z_{ob}/∂a_prev_{ib} = W_{oi}``), summed over every output ``o`` that
    ``a_prev_{ib}`` feeds. Each term is a product of two numbers, so its order is free.

    Matrix form: ``∂L/∂a_prev = Wᵀ δ``. The shape argument: the result must be
    ``(inp, batch)``; the sum runs over ``out``, the first axis of both ``δ`` and ``W``, and a
    matrix product sums the second axis of its left factor with the first axis of its right
    one. Only ``W`` has ``inp``, the result's first axis, so ``W`` goes first, transposed:
    ``(inp, out) @ (out, batch)``, ``W.T @ grad_z``. The arguments keep the contract's order,
    upstream gradient first, as in every backward function; the factors take the order the
    shapes force.
    """
    return W.T @ grad_z


AFFINE_GRAD_A_PREV = Spec("grad_a_prev", "ob,oi->ib", ("grad_z", "W"))
"""The input gradient in index form, ``∂L/∂a_prev_{ib} = Σ_o δ_{ob} W_{oi}``: what
:func:`affine_grad_input` computes as ``W.T @ grad_z``."""


@checked
@static_jaxtyping("out inp batch")
def affine_backward(
    grad_z: Float[Array, "out batch"],
    W: Float[Array, "out inp"],
    a_prev: Float[Array, "inp batch"],
) -> tuple[Float[Array, "out inp"], Float[Array, " out"], Float[Array, "inp batch"]]:
    """All three gradients of the affine layer: ``(grad_W, grad_b, grad_a_prev)``.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ`` in the equations).
    W
        The weights the forward pass used.
    a_prev
        The input the forward pass saw.

    Returns
    -------
    grad_W, grad_b, grad_a_prev
        One gradient per input of :func:`affine_forward`, each with that input's shape.

    Notes
    -----
    ``∂L/∂W = δ a_prevᵀ``, ``∂L/∂b = δ 1``, ``∂L/∂a_prev = Wᵀ δ``; see
    :func:`affine_grad_params` and :func:`affine_grad_input`. A network's first layer needs no
    ``grad_a_prev``; it calls :func:`affine_grad_params` alone and saves a matrix product.
    """
    grad_W, grad_b = affine_grad_params(grad_z, a_prev)
    return grad_W, grad_b, affine_grad_input(grad_z, W)


# --- the dense family: the layer contract over the affine functions above ---------------------


def _transposed_W_advice(arguments: Mapping[str, object]) -> str | None:
    """What a refused ``Dense(W, b)`` should say first when ``W`` looks transposed."""
    W, b = arguments.get("W"), arguments.get("b")
    if not (isinstance(W, np.ndarray) and isinstance(b, np.ndarray) and W.ndim == 2 == b.ndim + 1):
        return None
    if W.shape[0] == b.shape[0] or W.shape[1] != b.shape[0]:
        return None
    return (
        f"W looks transposed: W is (out, inp), one row per entry of b, but W has shape {W.shape} "
        f"and b has shape {b.shape}; pass W.T (if W is right, b needs {W.shape[0]} entries)"
    )


@checked_record(diagnose=_transposed_W_advice)
@dataclass(frozen=True, slots=True)
class Dense(Layer):
    """One fully connected layer's parameters (or their gradients: the same shapes).

    Parameters
    ----------
    W
        Weights; row ``o`` holds the weights into output unit ``o``.
    b
        Biases, one per output unit.

    Notes
    -----
    Creating a ``Dense`` checks that ``W`` is 2-D, ``b`` is 1-D, both are floating point and
    ``b`` has one entry per row of ``W`` (they agree on ``out``). The arrays are held, not
    copied; typedbackprop never writes to them.
    """

    W: Float[Array, "out inp"]
    b: Float[Array, " out"]


@dataclass(frozen=True, slots=True)
class DenseCache:
    """What :func:`dense_forward` saves for :func:`dense_backward`."""

    W: Float[Array, "out inp"]
    """The weights the forward pass used (``grad_a_prev = Wᵀ δ`` needs them)."""
    a_prev: Float[Array, "inp batch"]
    """The layer's input (``grad_W = δ a_prevᵀ`` needs it)."""


@checked
@runtime_shapes_only(
    "one line handing the record's fields, which have no shape for Pyrefly, to affine_forward, "
    "whose shapes are checked by name"
)
def dense_forward(
    layer: Dense, a_prev: Float[Array, "inp batch"]
) -> tuple[Float[Array, "out batch"], DenseCache]:
    """The dense layer under the layer contract: ``z = W a_prev + b`` and what backward needs.

    Parameters
    ----------
    layer
        The parameters ``W`` and ``b``.
    a_prev
        The layer's input, one column per example.

    Returns
    -------
    z, cache
        The pre-activations, and the :class:`DenseCache` of ``W`` and ``a_prev``.

    Notes
    -----
    ``z_{ob} = Σ_i W_{oi} a_prev_{ib} + b_o``; see :func:`affine_forward`.
    """
    return affine_forward(layer.W, layer.b, a_prev), DenseCache(layer.W, a_prev)


@checked
@static_jaxtyping("out inp batch")
def dense_backward(
    grad_z: Float[Array, "out batch"], cache: DenseCache
) -> tuple[Dense, Float[Array, "inp batch"]]:
    """Gradients of the dense layer: ``(Dense(grad_W, grad_b), grad_a_prev)``.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ`` in the equations).
    cache
        What :func:`dense_forward` saved.

    Returns
    -------
    grads, grad_a_prev
        ``∂L/∂W`` and ``∂L/∂b`` in a :class:`Dense` (the shapes of the layer's), and
        ``∂L/∂a_prev`` (the shape of the input): one gradient per array argument of forward.

    Notes
    -----
    ``∂L/∂W = δ a_prevᵀ``, ``∂L/∂b = δ 1`` and ``∂L/∂a_prev = Wᵀ δ``; see
    :func:`affine_grad_params` and :func:`affine_grad_input`. The cache's fields are checked
    in the same dimension scope as ``grad_z`` and the result, so each gradient must have the
    shape of the value forward saw.
    """
    W: Float[Array, "out inp"] = cache.W  # a record's fields: no shape for Pyrefly
    a_prev: Float[Array, "inp batch"] = cache.a_prev
    grad_W: Float[Array, "out inp"]  # a weight's gradient has the weight's shape
    grad_W, grad_b = affine_grad_params(grad_z, a_prev)  # BP4: δ a_prevᵀ, BP3: δ 1
    return Dense(grad_W, grad_b), affine_grad_input(grad_z, W)  # Wᵀ δ: BP2's first half


@checked
@runtime_shapes_only(
    "one line handing the cache's a_prev, which has no shape for Pyrefly, to affine_grad_params, "
    "whose shapes are checked by name"
)
def dense_backward_params(grad_z: Float[Array, "out batch"], cache: DenseCache) -> Dense:
    """The parameter gradients of :func:`dense_backward` alone, for a network's first layer.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ`` in the equations).
    cache
        What :func:`dense_forward` saved.

    Returns
    -------
    grads
        ``Dense(∂L/∂W, ∂L/∂b)``.

    Notes
    -----
    Nothing needs ``∂L/∂x`` of a network's input, and it would cost a matrix product
    (``Wᵀ δ``, as many multiplications as ``δ a_prevᵀ``).
    """
    grad_W, grad_b = affine_grad_params(grad_z, cache.a_prev)  # BP4 and BP3 alone
    return Dense(grad_W, grad_b)
