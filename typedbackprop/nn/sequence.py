"""Layers at the top of a sequence model: a dense layer at every token, and the tokens kept.

A language model's last layers map each token's features to one logit per vocabulary entry,
``"features seq batch" → "vocab seq batch"`` (:class:`TokenDense`), and its loss reads the
positions that have a target (:class:`KeepLast`: the last ``count`` tokens, the answer of a
sequence-to-sequence task written after its question). The loss over every kept token is
:func:`token_cross_entropy`, in the :data:`~typedbackprop.nn.losses.LOSSES` table as
``"token_cross_entropy"``.
"""

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float, Int

from typedbackprop.checking import (
    Array,
    IntArray,
    checked,
    checked_record,
    require_finite,
    runtime_shapes_only,
    static_jaxtyping,
)
from typedbackprop.nn.affine import affine_forward, affine_grad_input, affine_grad_params
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.specs import Spec

__all__ = [
    "token_cross_entropy",
    "TokenDense",
    "TokenDenseCache",
    "token_dense_forward",
    "token_dense_backward",
    "KeepLast",
    "KeepLastCache",
    "keep_last_forward",
    "keep_last_backward",
]


@checked
@static_jaxtyping("classes seq batch")
def token_cross_entropy(
    z: Float[Array, "classes seq batch"],
    labels: Int[IntArray, "seq batch"],
) -> tuple[float, Float[Array, "classes seq batch"]]:
    """Softmax cross-entropy at every token of a batch of sequences, from the logits.

    Parameters
    ----------
    z
        Logits, one column per token: a sequence model's output.
    labels
        The class of each token, an integer in ``[0, classes)``.

    Returns
    -------
    loss
        ``L = −(1/(seq·batch)) Σ_{s,b} log softmax(z)_{labels_{sb}, s, b}``: the mean over
        every token.
    grad_z
        ``∂L/∂z``, the shape of ``z``.

    Raises
    ------
    ValueError
        If a label lies outside ``[0, classes)`` (the message names it and its position), or
        a token's largest logit is NaN or infinite.

    Notes
    -----
    :func:`~typedbackprop.nn.losses.cross_entropy` with every token a column:
    ``log softmax(z)_{csb} = z_{csb} − m_{sb} − log Σ_k exp(z_{ksb} − m_{sb})`` with
    ``m_{sb} = max_k z_{ksb}`` (no overflow, no ``log(0)``), and
    ``∂L/∂z_{csb} = (softmax(z)_{csb} − [c = labels_{sb}]) / (seq·batch)``. A sequence model's
    softmax is folded into this loss: the network outputs the logits themselves.
    """
    classes, seq, batch = z.shape
    tokens = seq * batch
    if tokens == 0:
        raise ValueError("no tokens: a mean over 0 tokens is undefined")
    outside = (labels < 0) | (labels >= classes)
    if outside.any():
        position = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"label {labels[position]} at position (seq={position[0]}, batch={position[1]}) "
            f"is outside [0, {classes}): the logits have {classes} classes"
        )
    largest = z.max(axis=0)
    require_finite("the largest logit of each token", largest)
    shifted: Float[Array, "classes seq batch"] = z - largest
    rows = labels[np.newaxis]  # "1 seq batch": the labelled class of each token
    picked = np.take_along_axis(shifted, rows, axis=0)
    np.exp(shifted, out=shifted)
    total = shifted.sum(axis=0)
    loss = float(np.log(total).sum() - picked.sum()) / tokens
    shifted /= total  # now softmax(z)
    np.put_along_axis(shifted, rows, np.take_along_axis(shifted, rows, axis=0) - 1.0, axis=0)
    shifted /= tokens
    return loss, shifted


# --- the dense layer at every token ----------------------------------------------------------


@checked_record()
@dataclass(frozen=True, slots=True)
class TokenDense(Layer):
    """A dense layer applied to each token on its own (or its gradients).

    Parameters
    ----------
    W
        Weights; row ``o`` holds the weights into output unit ``o``.
    b
        Biases, one per output unit.
    """

    W: Float[Array, "out inp"]
    b: Float[Array, " out"]


@dataclass(frozen=True, slots=True)
class TokenDenseCache:
    """What :func:`token_dense_forward` saves for :func:`token_dense_backward`."""

    W: Float[Array, "out inp"]
    """The weights (``grad_x = Wᵀ δ`` needs them)."""
    x: Float[Array, "inp seq batch"]
    """The input (``grad_W = δ xᵀ`` needs it)."""


@checked
@static_jaxtyping("inp out seq batch")
def token_dense_forward(
    layer: TokenDense, x: Float[Array, "inp seq batch"]
) -> tuple[Float[Array, "out seq batch"], TokenDenseCache]:
    """``z = W x + b`` at every token: :func:`affine_forward` with every token a column.

    Parameters
    ----------
    layer
        ``W`` and ``b``.
    x
        Features, one column per token.

    Returns
    -------
    z, cache
        The outputs, one column per token, and the :class:`TokenDenseCache`.

    Notes
    -----
    ``z_{osb} = Σ_i W_{oi} x_{isb} + b_o``: ``x`` reshaped to ``(inp, seq·batch)`` (a view),
    the affine layer, and the result reshaped back.
    """
    W: Float[Array, "out inp"] = layer.W  # the record's fields, shapes stated
    b: Float[Array, " out"] = layer.b
    features, seq, batch = x.shape
    z = affine_forward(W, b, x.reshape(features, seq * batch))
    return z.reshape(W.shape[0], seq, batch), TokenDenseCache(W, x)


@checked
@static_jaxtyping("out inp seq batch")
def token_dense_backward(
    grad_z: Float[Array, "out seq batch"], cache: TokenDenseCache
) -> tuple[TokenDense, Float[Array, "inp seq batch"]]:
    """Gradients of the token-wise dense layer: ``(TokenDense(grad_W, grad_b), grad_x)``.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ``).
    cache
        What :func:`token_dense_forward` saved.

    Returns
    -------
    grads, grad_x
        ``∂L/∂W`` and ``∂L/∂b``, and ``∂L/∂x``.

    Notes
    -----
    ``∂L/∂W_{oi} = Σ_{s,b} δ_{osb} x_{isb}``, ``∂L/∂b_{o} = Σ_{s,b} δ_{osb}`` and
    ``∂L/∂x_{isb} = Σ_o δ_{osb} W_{oi}``: the affine layer's ``δ xᵀ``, ``δ 1`` and ``Wᵀ δ``
    with every token a column, so the sums over ``batch`` become sums over ``seq`` and
    ``batch``.
    """
    W: Float[Array, "out inp"] = cache.W  # the cache's fields, shapes stated
    x: Float[Array, "inp seq batch"] = cache.x
    features, seq, batch = x.shape
    delta = grad_z.reshape(W.shape[0], seq * batch)
    grad_W: Float[Array, "out inp"]  # a weight's gradient has the weight's shape
    grad_W, grad_b = affine_grad_params(delta, x.reshape(features, seq * batch))
    grad_x = affine_grad_input(delta, W)
    return TokenDense(grad_W, grad_b), grad_x.reshape(features, seq, batch)


TOKEN_DENSE_GRAD_W = Spec("grad_W", "osb,isb->oi", ("grad_z", "x"))
"""``∂L/∂W_{oi} = Σ_{s,b} δ_{osb} x_{isb}``: :func:`token_dense_backward`'s ``δ xᵀ``."""

TOKEN_DENSE_GRAD_B = Spec("grad_b", "osb->o", ("grad_z",))
"""``∂L/∂b_{o} = Σ_{s,b} δ_{osb}``: ``δ 1``, a sum over every token."""

TOKEN_DENSE_GRAD_X = Spec("grad_x", "osb,oi->isb", ("grad_z", "W"))
"""``∂L/∂x_{isb} = Σ_o δ_{osb} W_{oi}``: ``Wᵀ δ`` at every token."""


# --- the tokens the loss reads -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeepLast(Layer):
    """Keep the last ``count`` tokens of every sequence: no parameters, one setting.

    Parameters
    ----------
    count
        How many tokens, from the end, pass on (at least 1).
    """

    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"KeepLast keeps at least one token; got count={self.count}")


@dataclass(frozen=True, slots=True)
class KeepLastCache:
    """What :func:`keep_last_forward` saves: the setting, and the input for its shape."""

    layer: KeepLast
    """How many tokens were kept."""
    x: Float[Array, "features seq batch"]
    """The input (held, not copied: backward reads only its shape)."""


@checked
@static_jaxtyping("features seq kept batch")
def keep_last_forward(
    layer: KeepLast, x: Float[Array, "features seq batch"]
) -> tuple[Float[Array, "features kept batch"], KeepLastCache]:
    """The last ``count`` tokens of every sequence: ``x[:, seq − count:, :]``.

    Parameters
    ----------
    layer
        How many tokens to keep.
    x
        Features, one column per token.

    Returns
    -------
    kept, cache
        A view of the kept tokens' columns (``kept = count``), and the cache.

    Raises
    ------
    ValueError
        If the sequences are shorter than ``count``.
    """
    seq = x.shape[1]
    if layer.count > seq:
        raise ValueError(f"cannot keep the last {layer.count} tokens of a sequence of {seq}")
    return x[:, seq - layer.count :, :], KeepLastCache(layer, x)


@checked
@runtime_shapes_only(
    "the kept tokens' gradients are written into a slice, and Pyrefly does not check the shape "
    "of what is assigned to a slice"
)
def keep_last_backward(
    grad_kept: Float[Array, "features kept batch"], cache: KeepLastCache
) -> Float[Array, "features seq batch"]:
    """The gradient of the input: the kept tokens' gradients, zero for the dropped tokens.

    Parameters
    ----------
    grad_kept
        ``∂L/∂kept``, the upstream gradient.
    cache
        What :func:`keep_last_forward` saved.

    Returns
    -------
    grad_x
        ``∂L/∂x``, the shape of ``x``.

    Notes
    -----
    ``∂L/∂x_{fsb} = ∂L/∂kept_{f, s − (seq − count), b}`` for the kept ``s``, and ``0`` for the
    others: the loss never saw them.
    """
    seq = cache.x.shape[1]
    grad_x = np.zeros(cache.x.shape, dtype=grad_kept.dtype)
    grad_x[:, seq - cache.layer.count :, :] = grad_kept
    return grad_x
