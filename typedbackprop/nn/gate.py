"""A recurrent gate's two affine maps, one of the input and one of the state, and their backward.

Every gate of an LSTM or a GRU cell, and the one unit of a plain RNN cell, starts the same way:
an affine map of the step's input ``x`` and an affine map of the previous state ``h``, each with
its own bias, as in PyTorch (``b_ih`` and ``b_hh``):

    ``input_part = W_ih x + b_ih``,  ``hidden_part = W_hh h + b_hh``.

An LSTM gate and an RNN unit add the two parts before their nonlinearity, so the two biases are
redundant there (only their sum matters); the GRU's candidate ``n`` multiplies ``hidden_part``
by its reset gate first, ``tanh(input_part + r ⊙ hidden_part)``, and there ``b_hh`` is a
different parameter from ``b_ih``. Keeping both everywhere gives PyTorch's parameters exactly.

The weights are shared by every time step. Within one step, :func:`gate_backward` is the affine
layer's backward twice; across the steps, the gradient of a shared weight sums over ``seq``
(see :func:`gate_add`), as ``grad_b`` sums over ``batch``. A sequence layer computes that sum
the way cuDNN and PyTorch do: with the gates' rows stacked (``_stacked``, PyTorch's
``weight_ih_l0``) and one product over every step's ``(seq·batch)`` columns.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, checked, runtime_shapes_only, static_jaxtyping
from typedbackprop.nn.affine import affine_forward, affine_grad_input, affine_grad_params

__all__ = ["Gate", "gate_forward", "gate_backward", "gate_zeros_like", "gate_add"]


@dataclass(frozen=True, slots=True)
class Gate:
    """One gate's parameters (or their gradients): the affine maps of the input and the state.

    Parameters
    ----------
    W_ih
        Input-to-hidden weights; row ``j`` holds the weights from the input into unit ``j``.
    b_ih
        The input map's bias (PyTorch's ``bias_ih``).
    W_hh
        Hidden-to-hidden weights; row ``j`` holds the weights from the previous state into
        unit ``j``.
    b_hh
        The state map's bias (PyTorch's ``bias_hh``): a parameter of its own, not folded into
        ``b_ih``, as PyTorch keeps it.
    """

    W_ih: Float[Array, "hidden features"]
    b_ih: Float[Array, " hidden"]
    W_hh: Float[Array, "hidden hidden"]
    b_hh: Float[Array, " hidden"]


@checked
@runtime_shapes_only(
    "one line handing the gate record's fields, which have no shape for Pyrefly, to "
    "affine_forward, whose own shapes are checked by name"
)
def gate_forward(
    gate: Gate, x: Float[Array, "features batch"], h: Float[Array, "hidden batch"]
) -> tuple[Float[Array, "hidden batch"], Float[Array, "hidden batch"]]:
    """The gate's two affine maps: ``(W_ih x + b_ih, W_hh h + b_hh)``.

    Parameters
    ----------
    gate
        The gate's weights and biases.
    x
        The step's input, one column per example.
    h
        The previous state, one column per example.

    Returns
    -------
    input_part, hidden_part
        The affine map of the input, and that of the state: kept apart, as the GRU's
        candidate needs them apart; every other gate adds them.

    Notes
    -----
    ``input_part_{jb} = Σ_f W_ih_{jf} x_{fb} + b_ih_j`` and
    ``hidden_part_{jb} = Σ_k W_hh_{jk} h_{kb} + b_hh_j``; see
    :func:`~typedbackprop.nn.affine.affine_forward`.
    """
    return affine_forward(gate.W_ih, gate.b_ih, x), affine_forward(gate.W_hh, gate.b_hh, h)


@checked
@static_jaxtyping("hidden features batch")
def gate_backward(
    grad_input_part: Float[Array, "hidden batch"],
    grad_hidden_part: Float[Array, "hidden batch"],
    gate: Gate,
    x: Float[Array, "features batch"],
    h: Float[Array, "hidden batch"],
) -> tuple[Gate, Float[Array, "features batch"], Float[Array, "hidden batch"]]:
    """Gradients of the gate's two affine maps: ``(Gate of grads, grad_x, grad_h)``.

    Parameters
    ----------
    grad_input_part
        ``∂L/∂input_part``, the upstream gradient of ``W_ih x + b_ih``.
    grad_hidden_part
        ``∂L/∂hidden_part``, the upstream gradient of ``W_hh h + b_hh``: the same array as
        ``grad_input_part`` for a gate that adds the two parts; the GRU's candidate passes
        ``r ⊙ ∂L/∂(pre-activation)``.
    gate
        The weights the forward pass used.
    x, h
        The step's input and the previous state the forward pass saw.

    Returns
    -------
    grads, grad_x, grad_h
        ``∂L/∂W_ih``, ``∂L/∂b_ih``, ``∂L/∂W_hh``, ``∂L/∂b_hh`` in a :class:`Gate`, then
        ``∂L/∂x`` and ``∂L/∂h``, each the shape of its value.

    Notes
    -----
    The affine layer's backward, once per map (``δ`` is ``grad_input_part`` for the input map,
    ``grad_hidden_part`` for the state map):

    ``∂L/∂W_ih_{jf} = Σ_b δ_{jb} x_{fb}``, ``∂L/∂b_ih_j = Σ_b δ_{jb}``,
    ``∂L/∂x_{fb} = Σ_j W_ih_{jf} δ_{jb}``; and the same with ``W_hh``, ``b_hh`` and ``h``.

    Matrix form: ``∂L/∂W_ih = δ xᵀ``, ``(hidden, batch) @ (batch, features)``: the only
    product of the two that gives ``W_ih``'s ``(hidden, features)``; ``∂L/∂x = W_ihᵀ δ``,
    ``(features, hidden) @ (hidden, batch)``. ``W_hh`` is square, ``(hidden, hidden)``, so its
    shape cannot tell ``δ hᵀ`` from ``h δᵀ``: the index form does (row ``j`` of ``W_hh`` feeds
    unit ``j``, so ``j`` is ``δ``'s index and goes first), and the comparison with PyTorch holds
    it.
    """
    W_ih: Float[Array, "hidden features"] = gate.W_ih  # a record's fields: no shape
    W_hh: Float[Array, "hidden hidden"] = gate.W_hh
    grad_W_ih, grad_b_ih = affine_grad_params(grad_input_part, x)
    grad_W_hh, grad_b_hh = affine_grad_params(grad_hidden_part, h)
    grad_x = affine_grad_input(grad_input_part, W_ih)
    grad_h = affine_grad_input(grad_hidden_part, W_hh)
    return Gate(grad_W_ih, grad_b_ih, grad_W_hh, grad_b_hh), grad_x, grad_h


def gate_zeros_like(gate: Gate) -> Gate:
    """A gate of zeros shaped like ``gate``: where a sequence layer starts its sum over steps."""
    return Gate(*(np.zeros_like(value) for value in (gate.W_ih, gate.b_ih, gate.W_hh, gate.b_hh)))


def gate_add(first: Gate, second: Gate) -> Gate:
    """Two gates' gradients added field by field.

    Parameters
    ----------
    first, second
        Gradients of the same gate (at two time steps, or a running sum and one step).

    Returns
    -------
    Gate
        The field-by-field sum. A weight shared by every step gets the sum over ``seq`` of its
        per-step gradients, as a bias shared by every example gets the sum over ``batch``.
    """
    return Gate(
        first.W_ih + second.W_ih,
        first.b_ih + second.b_ih,
        first.W_hh + second.W_hh,
        first.b_hh + second.b_hh,
    )


def _stacked(gates: Sequence[Gate]) -> Gate:
    """The gates' rows stacked, first gate first: one :class:`Gate` whose ``W_ih`` is
    ``(k·hidden, features)``, ``W_hh`` ``(k·hidden, hidden)`` and biases ``(k·hidden,)``.

    This is PyTorch's storage (``weight_ih_l0`` holds ``W_ii; W_if; W_ig; W_io``): row ``j``
    still feeds one unit of one gate, so ``W_ih x`` computes every gate's input map in one
    product. The sequence layers use it inside their loops; the records keep a gate per field.
    """
    return Gate(
        np.concatenate([gate.W_ih for gate in gates]),
        np.concatenate([gate.b_ih for gate in gates]),
        np.concatenate([gate.W_hh for gate in gates]),
        np.concatenate([gate.b_hh for gate in gates]),
    )


def _split(stack: Gate, count: int) -> tuple[Gate, ...]:
    """The inverse of ``_stacked``: ``count`` gates, each ``hidden`` rows of ``stack``."""
    parts = [np.split(value, count) for value in (stack.W_ih, stack.b_ih, stack.W_hh, stack.b_hh)]
    return tuple(Gate(*fields) for fields in zip(*parts, strict=True))
