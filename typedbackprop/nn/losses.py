"""Losses: the mean over the batch of a per-example loss, with its gradient.

Each loss returns ``(loss, grad)``, where ``grad`` is the gradient with respect to what the loss
consumes: the network's output ``a`` for squared error, the logits ``z`` for the two
cross-entropies, which are computed from logits so that no ``log(0)`` and no epsilon appear.

Where the ``1/batch`` comes from: every loss here is ``L = (1/batch) Σ_b ℓ_b``, the mean of the
per-example losses, so each gradient is ``(1/batch)`` times the per-example gradient. The factor
enters once, here, and every gradient the backward pass computes from this one inherits it
through the chain rule; nothing in the backward pass of the layers divides by ``batch`` again.
(Nielsen's network.py sums per-example gradients instead and divides by the batch size in the
update step: the same step, with the ``1/batch`` in another place.)
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np
from jaxtyping import Float, Int

from typedbackprop.checking import Array, IntArray, checked, require_finite, static_jaxtyping
from typedbackprop.nn.sequence import token_cross_entropy

__all__ = [
    "LOSSES",
    "LossFunction",
    "LossName",
    "squared_error",
    "binary_cross_entropy",
    "cross_entropy",
]


def _batch_size(values: Array) -> int:
    batch = int(values.shape[1])
    if batch == 0:
        raise ValueError("empty batch: a mean over 0 examples is undefined")
    return batch


@checked
@static_jaxtyping("out batch")
def squared_error(
    a: Float[Array, "out batch"],
    y: Float[Array, "out batch"],
) -> tuple[float, Float[Array, "out batch"]]:
    """Half the squared Euclidean distance per example, averaged over the batch.

    Parameters
    ----------
    a
        The network's outputs, one column per example.
    y
        The targets, one column per example.

    Returns
    -------
    loss
        ``L = (1/batch) Σ_b ½ ‖a_{:,b} − y_{:,b}‖²``.
    grad_a
        ``∂L/∂a``, the shape of ``a``.

    Notes
    -----
    Index form: ``L = (1/batch) Σ_b Σ_o ½ (a_{ob} − y_{ob})²``, so
    ``∂L/∂a_{ob} = (a_{ob} − y_{ob}) / batch``; the ``½`` cancels the 2 of the square and the
    ``1/batch`` comes from the mean. Matrix form: ``∂L/∂a = (a − y) / batch``.
    """
    batch = _batch_size(a)
    residual = a - y
    loss = 0.5 * float(np.vdot(residual, residual)) / batch
    residual /= batch
    return loss, residual


@checked
@static_jaxtyping("out batch")
def binary_cross_entropy(
    z: Float[Array, "out batch"],
    y: Float[Array, "out batch"],
) -> tuple[float, Float[Array, "out batch"]]:
    """Binary cross-entropy of ``σ(z)`` against targets in ``[0, 1]``, computed from the logits.

    Parameters
    ----------
    z
        Logits: the pre-activations of a sigmoid output layer.
    y
        Targets in ``[0, 1]`` (usually 0 or 1), one per logit.

    Returns
    -------
    loss
        ``L = (1/batch) Σ_b Σ_o ℓ(z_{ob}, y_{ob})``.
    grad_z
        ``∂L/∂z``, the shape of ``z``.

    Raises
    ------
    ValueError
        If a target lies outside ``[0, 1]`` (the message gives its value and index), or a
        logit is NaN or infinite.

    Notes
    -----
    With ``a = σ(z)``, ``ℓ = −y log a − (1 − y) log(1 − a)``. Since ``log σ(z) = −log(1 + e^{−z})``
    and ``log(1 − σ(z)) = −z − log(1 + e^{−z})``, the same loss is
    ``ℓ = max(z, 0) − z y + log(1 + e^{−|z|})``: no ``log(0)``, no overflow, no epsilon.
    Its derivative is ``∂ℓ/∂z = σ(z) − y``, so ``∂L/∂z_{ob} = (σ(z_{ob}) − y_{ob}) / batch``:
    the sigmoid's derivative has cancelled against the log's, which is why this loss is
    computed from logits and the output sigmoid is not backpropagated separately.
    """
    batch = _batch_size(z)
    if y.size and (y.min() < 0 or y.max() > 1 or np.isnan(y).any()):
        bad = np.argwhere(~((y >= 0) & (y <= 1)))[0]
        raise ValueError(
            f"binary_cross_entropy targets must lie in [0, 1]; y[{bad[0]}, {bad[1]}] is "
            f"{y[bad[0], bad[1]]}"
        )
    require_finite("logits", z)
    e = np.exp(-np.abs(z))  # in (0, 1]: never overflows
    losses = np.maximum(z, 0.0) - z * y + np.log1p(e)
    loss = float(losses.sum()) / batch
    # σ(z) from the same e: 1/(1+e) for z ≥ 0, e/(1+e) for z < 0.
    # np.where returns no shape to Pyrefly: the annotation states the one it has, z's.
    grad_z: Float[Array, "out batch"] = np.where(z >= 0, 1.0, e)
    grad_z /= 1.0 + e
    grad_z -= y
    grad_z /= batch
    return loss, grad_z


@checked
@static_jaxtyping("classes batch")
def cross_entropy(
    z: Float[Array, "classes batch"],
    labels: Int[IntArray, " batch"],
) -> tuple[float, Float[Array, "classes batch"]]:
    """Softmax cross-entropy against integer class labels, computed from the logits.

    Parameters
    ----------
    z
        Logits: the pre-activations of a softmax output layer.
    labels
        The class of each example, an integer in ``[0, classes)``.

    Returns
    -------
    loss
        ``L = −(1/batch) Σ_b log softmax(z)_{labels_b, b}``.
    grad_z
        ``∂L/∂z``, the shape of ``z``.

    Raises
    ------
    ValueError
        If a label lies outside ``[0, classes)`` (the message names the label and its example),
        or an example's largest logit is NaN or infinite.

    Notes
    -----
    ``log softmax(z)_{cb} = z_{cb} − m_b − log Σ_k exp(z_{kb} − m_b)`` with ``m_b = max_k z_{kb}``
    (log-sum-exp: no overflow, no ``log(0)``). With ``a = softmax(z)`` and ``Y`` the one-hot
    matrix of the labels, ``∂L/∂z_{cb} = (a_{cb} − Y_{cb}) / batch``: the softmax Jacobian
    and the log's derivative cancel to this difference.
    """
    classes = z.shape[0]
    batch = _batch_size(z)
    if labels.min() < 0 or labels.max() >= classes:
        example = int(np.argmax((labels < 0) | (labels >= classes)))
        raise ValueError(
            f"label {labels[example]} of example {example} is outside [0, {classes}): "
            f"the logits have {classes} classes"
        )
    columns = np.arange(batch)
    largest = z.max(axis=0)
    require_finite("the largest logit of each example", largest)
    shifted = z - largest
    e = np.exp(shifted)
    total = e.sum(axis=0)
    loss = float(np.log(total).sum() - shifted[labels, columns].sum()) / batch
    e /= total  # now softmax(z)
    e[labels, columns] -= 1.0
    e /= batch
    return loss, e


# --- the one table of losses ------------------------------------------------------------------

LossName = Literal["squared_error", "binary_cross_entropy", "cross_entropy", "token_cross_entropy"]


@dataclass(frozen=True, slots=True)
class LossFunction:
    """One loss's entry in :data:`LOSSES`: the function and what it consumes."""

    function: Callable[[Array, Any], tuple[float, Array]]
    """``(output or logits, targets) -> (loss, gradient)``."""
    output_activation: str | None
    """For a loss from logits, the output activation it belongs to (its backward is folded into
    the loss's gradient); ``None`` for a loss of the network's output ``a``."""
    labels: bool
    """Whether targets are integer class labels ``(batch,)`` rather than floats ``(out, batch)``."""
    formula: str
    """The loss as ``explain`` prints it, with ``{z}`` and ``{a}`` for the output's names."""
    note: str
    """What ``explain`` says beside it."""
    gradient: str
    """The gradient the loss returns as ``explain`` prints it: ``∂L/∂z`` from logits, else
    ``∂L/∂a``."""
    per_example: bool
    """Whether it takes one target per example, a column ``(out, batch)`` or a label
    ``(batch,)``, as a perceptron's output gives (the command line offers these for ``SIZES``);
    ``False`` for a loss over every position of a sequence."""

    @property
    def from_logits(self) -> bool:
        """Whether the loss takes the last layer's pre-activations ``z``."""
        return self.output_activation is not None


LOSSES: dict[str, LossFunction] = {
    "squared_error": LossFunction(
        squared_error,
        output_activation=None,
        labels=False,
        formula="sum(({a} - y)**2) / 2 / batch",
        note="",
        gradient="({a} - y) / batch",
        per_example=True,
    ),
    "binary_cross_entropy": LossFunction(
        binary_cross_entropy,
        output_activation="sigmoid",
        labels=False,
        formula="sum(max({z}, 0) - {z} * y + log1p(exp(-|{z}|))) / batch",
        note="from the logits: no log(0)",
        gradient="(sigmoid({z}) - y) / batch",
        per_example=True,
    ),
    "cross_entropy": LossFunction(
        cross_entropy,
        output_activation="softmax",
        labels=True,
        formula="sum(logsumexp({z}, axis=0) - {z}[labels, range(batch)]) / batch",
        note="from the logits",
        gradient="(softmax({z}) - onehot(labels)) / batch",
        per_example=True,
    ),
    "token_cross_entropy": LossFunction(
        token_cross_entropy,
        output_activation=None,
        labels=True,
        formula="sum(logsumexp({a}, axis=0) - {a}[labels, seq, batch]) / (seq * batch)",
        note="the network outputs logits; a mean over every token",
        gradient="(softmax({a}, axis=0) - onehot(labels)) / (seq * batch)",
        per_example=False,
    ),
}
"""Every loss by name: the one table the network, training, ``explain`` and the command line
consult."""

assert set(LOSSES) == set(get_args(LossName))
