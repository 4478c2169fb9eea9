"""The plain (Elman) recurrent layer with tanh, one step and a whole sequence, and their backward.

One step, PyTorch's ``torch.nn.RNN`` with ``nonlinearity="tanh"``:

    ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``,

``x`` the step's input ``"features batch"``, ``h`` the previous state ``"hidden batch"``. Both
biases are kept, as PyTorch keeps them (``bias_ih`` and ``bias_hh``): only their sum matters
here, but they are PyTorch's parameters one for one.

A sequence is ``"features seq batch"``, features first and batch last: ``x[:, t]`` is step
``t``'s input, a ``"features batch"`` matrix, and the layer returns every state,
``"hidden seq batch"``. The same cell, the same weights, runs at every step, so backpropagation
through time (:func:`rnn_backward`) sums the weights' gradient over ``seq``, as the affine
layer sums ``grad_b`` over ``batch``; and the state's gradient at step ``t`` has two sources: the
loss's gradient of the output ``h_t`` itself and the gradient carried back from step ``t + 1``.
"""

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, checked, checked_record, static_jaxtyping
from typedbackprop.nn.activations import tanh_backward, tanh_forward
from typedbackprop.nn.affine import affine_forward, affine_grad_input, affine_grad_params
from typedbackprop.nn.layer import Layer

__all__ = [
    "check_truncate",
    "RNNCell",
    "RNNCellCache",
    "rnn_cell_forward",
    "rnn_cell_backward",
    "rnn_cell_add",
    "RNN",
    "RNNCache",
    "rnn_forward",
    "rnn_backward",
]


@dataclass(frozen=True, slots=True)
class RNNCell:
    """One tanh recurrent cell's parameters (or their gradients).

    Parameters
    ----------
    W_ih
        Input-to-hidden weights (PyTorch's ``weight_ih_l0``); row ``j`` feeds unit ``j``.
    b_ih
        The input map's bias (``bias_ih_l0``).
    W_hh
        Hidden-to-hidden weights (``weight_hh_l0``); row ``j`` feeds unit ``j``.
    b_hh
        The state map's bias (``bias_hh_l0``), kept apart from ``b_ih`` as PyTorch keeps it;
        the cell only ever uses ``b_ih + b_hh``, and both get the same gradient.
    """

    W_ih: Float[Array, "hidden features"]
    b_ih: Float[Array, " hidden"]
    W_hh: Float[Array, "hidden hidden"]
    b_hh: Float[Array, " hidden"]


@dataclass(frozen=True, slots=True)
class RNNCellCache:
    """What :func:`rnn_cell_forward` saves for :func:`rnn_cell_backward`."""

    cell: RNNCell
    """The weights the step used (``∂L/∂x`` and ``∂L/∂h`` need them)."""
    x: Float[Array, "features batch"]
    """The step's input (``∂L/∂W_ih`` needs it)."""
    h: Float[Array, "hidden batch"]
    """The previous state (``∂L/∂W_hh`` needs it)."""
    h_new: Float[Array, "hidden batch"]
    """The new state, ``tanh(z)``: tanh's derivative is ``1 − h_new²``."""


@checked
@static_jaxtyping("hidden features batch")
def rnn_cell_forward(
    cell: RNNCell, x: Float[Array, "features batch"], h: Float[Array, "hidden batch"]
) -> tuple[Float[Array, "hidden batch"], RNNCellCache]:
    """One step of the tanh RNN: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)``.

    Parameters
    ----------
    cell
        The weights and the two biases.
    x
        The step's input, one column per example.
    h
        The previous state, one column per example.

    Returns
    -------
    h_new, cache
        The new state, and the :class:`RNNCellCache` backward needs.

    Notes
    -----
    Index form: ``h'_{jb} = tanh(Σ_f W_ih_{jf} x_{fb} + b_ih_j + Σ_k W_hh_{jk} h_{kb} + b_hh_j)``.

    Matrix form: ``z = W_ih x + b_ih 1ᵀ + W_hh h + b_hh 1ᵀ`` and ``h' = tanh(z)``: two affine
    maps (:func:`~typedbackprop.nn.affine.affine_forward`) added, then tanh.
    """
    W_ih: Float[Array, "hidden features"] = cell.W_ih  # the record's fields, shapes stated
    W_hh: Float[Array, "hidden hidden"] = cell.W_hh
    z = affine_forward(W_ih, cell.b_ih, x)
    z += affine_forward(W_hh, cell.b_hh, h)
    h_new = tanh_forward(z)
    return h_new, RNNCellCache(cell, x, h, h_new)


@checked
@static_jaxtyping("hidden features batch")
def rnn_cell_backward(
    grad_h_new: Float[Array, "hidden batch"], cache: RNNCellCache
) -> tuple[RNNCell, Float[Array, "features batch"], Float[Array, "hidden batch"]]:
    """Gradients of one RNN step: ``(RNNCell of grads, grad_x, grad_h)``.

    Parameters
    ----------
    grad_h_new
        ``∂L/∂h'``, the upstream gradient of the new state: in a sequence, the output's own
        gradient plus what the next step carries back.
    cache
        What :func:`rnn_cell_forward` saved.

    Returns
    -------
    grads, grad_x, grad_h
        ``∂L/∂W_ih``, ``∂L/∂b_ih``, ``∂L/∂W_hh``, ``∂L/∂b_hh`` in an :class:`RNNCell`, then
        ``∂L/∂x`` and ``∂L/∂h`` (the gradient carried to the previous step).

    Notes
    -----
    With ``δ = ∂L/∂z = ∂L/∂h' ⊙ (1 − h'²)`` (tanh's derivative, from the saved output):

    ``∂L/∂W_ih_{jf} = Σ_b δ_{jb} x_{fb}``, ``∂L/∂W_hh_{jk} = Σ_b δ_{jb} h_{kb}``,
    ``∂L/∂b_ih_j = ∂L/∂b_hh_j = Σ_b δ_{jb}``, ``∂L/∂x_{fb} = Σ_j W_ih_{jf} δ_{jb}``,
    ``∂L/∂h_{kb} = Σ_j W_hh_{jk} δ_{jb}``.

    Matrix form: ``∂L/∂W_ih = δ xᵀ``, ``(hidden, batch) @ (batch, features)``, the only
    product that gives ``(hidden, features)``; ``∂L/∂x = W_ihᵀ δ``,
    ``(features, hidden) @ (hidden, batch)``. ``W_hh`` is square, so its shape cannot choose
    between ``δ hᵀ`` and ``h δᵀ``: the index form does (``j``, the unit fed, is ``δ``'s index
    and ``W_hh``'s row), and so does ``∂L/∂h = W_hhᵀ δ``, not ``W_hh δ``.
    """
    # What forward saved, with the shapes the products rely on:
    x: Float[Array, "features batch"] = cache.x
    h: Float[Array, "hidden batch"] = cache.h
    h_new: Float[Array, "hidden batch"] = cache.h_new
    W_ih: Float[Array, "hidden features"] = cache.cell.W_ih
    W_hh: Float[Array, "hidden hidden"] = cache.cell.W_hh
    delta = tanh_backward(grad_h_new, h_new, h_new)  # z unused: 1 − h'² is cheaper
    grad_W_ih: Float[Array, "hidden features"]  # a weight's gradient has the weight's shape
    grad_W_ih, grad_b_ih = affine_grad_params(delta, x)
    grad_W_hh, grad_b_hh = affine_grad_params(delta, h)
    grad_x = affine_grad_input(delta, W_ih)
    grad_h = affine_grad_input(delta, W_hh)
    return RNNCell(grad_W_ih, grad_b_ih, grad_W_hh, grad_b_hh), grad_x, grad_h


def rnn_cell_add(first: RNNCell, second: RNNCell) -> RNNCell:
    """Two cells' gradients added field by field: how BPTT sums a shared weight over ``seq``."""
    return RNNCell(
        first.W_ih + second.W_ih,
        first.b_ih + second.b_ih,
        first.W_hh + second.W_hh,
        first.b_hh + second.b_hh,
    )


# --- the sequence layer: the cell at every step, and backpropagation through time ---------------


def check_truncate(truncate: int | None) -> None:
    """Refuse a ``truncate`` setting that is not ``None`` or a whole number of steps >= 1.

    The one rule of the three sequence layers (:class:`RNN`, and the LSTM's and GRU's).
    """
    if truncate is not None and not (type(truncate) is int and truncate >= 1):
        raise ValueError(
            f"truncate must be a whole number of steps, at least 1, or None; got {truncate!r}"
        )


@checked_record()
@dataclass(frozen=True, slots=True)
class RNN(Layer):
    """A tanh RNN layer over a sequence: one cell, whose weights every step shares.

    Parameters
    ----------
    cell
        The cell's weights and biases (or, as a gradient, their sums over the steps).
    truncate
        A setting of training, not of the model: where the network's backward pass (the
        family's row in :data:`~typedbackprop.nn.families.FAMILIES`) runs :func:`rnn_backward`,
        it passes this as its ``truncate``, chunks of that many steps with no state gradient
        carried across a chunk's start (truncated BPTT). ``None`` (the default) carries it
        all the way. The forward pass does not read it.
    """

    cell: RNNCell
    truncate: int | None = None

    def __post_init__(self) -> None:
        check_truncate(self.truncate)


@dataclass(frozen=True, slots=True)
class RNNCache:
    """What :func:`rnn_forward` saves for :func:`rnn_backward`: every step's cell cache."""

    layer: RNN
    """The layer the forward pass ran."""
    x: Float[Array, "features seq batch"]
    """The input sequence (each step's cache holds a view of its column)."""
    initial_state: Float[Array, "hidden batch"]
    """The state before the first step."""
    last_state: Float[Array, "hidden batch"]
    """The state after the last step: ``h_{seq−1}``, or the initial state if ``seq`` is 0."""
    steps: tuple[RNNCellCache, ...]
    """One :class:`RNNCellCache` per step, in order."""


@checked(vouches_for_inner_calls=True)
@static_jaxtyping("features seq batch hidden")
def rnn_forward(
    layer: RNN,
    x: Float[Array, "features seq batch"],
    initial_state: Float[Array, "hidden batch"] | None = None,
) -> tuple[Float[Array, "hidden seq batch"], RNNCache]:
    """Run the cell over the sequence: every state ``h_t``, and what backward needs.

    Parameters
    ----------
    layer
        The cell every step uses.
    x
        The input sequence; ``x[:, t]`` is step ``t``'s input.
    initial_state
        ``h_{−1}``, the state before the first step; zeros if ``None`` (PyTorch's default).

    Returns
    -------
    hidden_states, cache
        ``h_t`` for every step (``hidden_states[:, t]``), and the :class:`RNNCache`, whose
        ``last_state`` is ``h_{seq−1}``.

    Notes
    -----
    ``h_t = tanh(W_ih x_t + b_ih + W_hh h_{t−1} + b_hh)`` for ``t = 0, …, seq − 1``: the
    equation of :func:`rnn_cell_forward`, computed as cuDNN and PyTorch compute it. The input
    map does not depend on the recurrence, so ``W_ih x_t + b_ih + b_hh`` for every ``t`` is one
    product before the loop, the affine map of the ``(features, seq·batch)`` columns; the loop
    is left with ``W_hh h_{t−1}`` and tanh. Each step's :class:`RNNCellCache` is the cell's
    own, so :func:`rnn_cell_backward` reads it.
    """
    features, seq, batch = x.shape
    cell = layer.cell
    W_ih: Float[Array, "hidden features"] = cell.W_ih  # the record's fields, shapes stated
    W_hh: Float[Array, "hidden hidden"] = cell.W_hh
    hidden = W_hh.shape[0]
    first = np.zeros((hidden, batch), dtype=x.dtype) if initial_state is None else initial_state
    # W_ih x_t + b_ih + b_hh for every step: one affine map over the seq·batch columns (only the
    # biases' sum matters here, so both join now). (hidden, seq·batch) → (hidden, seq, batch)
    input_parts = affine_forward(
        W_ih, cell.b_ih + cell.b_hh, x.reshape(features, seq * batch)
    ).reshape(hidden, seq, batch)
    hidden_states = np.empty((hidden, seq, batch), dtype=np.result_type(input_parts, first, W_hh))
    h, steps = first, []
    for t in range(seq):
        z = W_hh @ h  # W_hh h_{t−1}
        z += input_parts[:, t]  # + W_ih x_t + b_ih + b_hh
        h_new = tanh_forward(z)
        steps.append(RNNCellCache(cell, x[:, t], h, h_new))
        hidden_states[:, t] = h = h_new
    return hidden_states, RNNCache(layer, x, first, h, tuple(steps))


@checked(vouches_for_inner_calls=True)
@static_jaxtyping("hidden seq batch features")
def rnn_backward(
    grad_hidden_states: Float[Array, "hidden seq batch"],
    cache: RNNCache,
    grad_last_state: Float[Array, "hidden batch"] | None = None,
    truncate: int | None = None,
) -> tuple[RNN, Float[Array, "features seq batch"], Float[Array, "hidden batch"]]:
    """Backpropagation through time: ``(RNN of grads, grad_x, grad_initial_state)``.

    Parameters
    ----------
    grad_hidden_states
        ``∂L/∂h_t`` from whatever reads each state (a loss on every step, or zeros but at
        the last): the gradient of the output alone, not yet of the later steps.
    cache
        What :func:`rnn_forward` saved.
    grad_last_state
        ``∂L/∂h_{seq−1}`` through the returned last state (a next chunk of the sequence, or a
        classifier that reads it), added to the last step's; ``None`` is zeros.
    truncate
        Truncated BPTT: cut the sequence into chunks of ``truncate`` steps (from the first)
        and carry no state gradient across a chunk's start, as a loop that detaches the state
        every ``truncate`` steps does. ``None`` carries it all the way.

    Returns
    -------
    grads, grad_x, grad_initial_state
        The cell's gradients summed over the steps in an :class:`RNN`, ``∂L/∂x`` for every
        step, and ``∂L/∂h_{−1}``.

    Notes
    -----
    Going back from ``t = seq − 1`` to ``0``, with ``g_t`` the state gradient carried from
    step ``t + 1`` (``g_{seq−1}`` is ``grad_last_state``):

    ``∂L/∂h_t = grad_hidden_states[:, t] + g_t``: ``h_t`` reaches the loss along two paths, as
    the step's output and as the next step's input; then, as in :func:`rnn_cell_backward`,
    ``δ_t = ∂L/∂h_t ⊙ (1 − h_t²)`` and ``g_{t−1} = W_hhᵀ δ_t``. That product is all the loop
    needs: the others read ``δ``, not the recurrence, and run once after it.

    ``∂L/∂W = Σ_t (∂L/∂W at step t)`` for each weight and bias: one ``W`` is used at every
    step, so its gradient sums the steps' contributions, as ``∂L/∂b = Σ_b δ_{ob}`` sums over
    the examples that share ``b``. With ``δ`` as ``(hidden, seq·batch)`` columns the two sums
    are one: ``∂L/∂W_ih = Σ_t δ_t x_tᵀ``, ``∂L/∂W_hh = Σ_t δ_t h_{t−1}ᵀ`` and
    ``∂L/∂b_ih = ∂L/∂b_hh = Σ_t Σ_b δ_t`` are the affine layer's gradients of those columns
    (:func:`~typedbackprop.nn.affine.affine_grad_params`), ONE product each, and
    ``∂L/∂x_t = W_ihᵀ δ_t`` for every ``t`` is one product too. Keeping a single step's
    contribution instead of the sum (assigning, not adding) keeps only step 0's.
    """
    hidden, seq, batch = grad_hidden_states.shape
    if truncate is not None and truncate < 1:
        raise ValueError(f"truncate must be a number of steps, at least 1; got {truncate}")
    # What forward saved, with the shapes the products rely on:
    x: Float[Array, "features seq batch"] = cache.x
    W_ih: Float[Array, "hidden features"] = cache.layer.cell.W_ih
    W_hh: Float[Array, "hidden hidden"] = cache.layer.cell.W_hh
    features = x.shape[0]
    grad_state = (
        np.zeros((hidden, batch), dtype=grad_hidden_states.dtype)
        if grad_last_state is None
        else grad_last_state
    )
    # δ_t for every step: (hidden, seq, batch)
    deltas = np.empty(
        (hidden, seq, batch),
        dtype=np.result_type(grad_hidden_states, grad_state, cache.last_state, W_hh),
    )
    for t in reversed(range(seq)):
        step = cache.steps[t]
        grad_h = grad_hidden_states[:, t] + grad_state  # two paths: the output, and step t + 1
        delta = deltas[:, t]
        delta[...] = tanh_backward(grad_h, step.h_new, step.h_new)  # δ_t = ∂L/∂h_t ⊙ (1 − h_t²)
        grad_state = affine_grad_input(delta, W_hh)  # g_{t−1} = W_hhᵀ δ_t
        if truncate is not None and t % truncate == 0 and t > 0:
            grad_state = np.zeros_like(grad_state)  # a chunk starts at t: h_{t−1} is a constant
    # The shared weights: Σ over seq, as a bias's Σ over batch, one product over the columns.
    deltas_columns = deltas.reshape(hidden, seq * batch)
    grad_W_ih: Float[Array, "hidden features"]  # a weight's gradient has the weight's shape
    grad_W_ih, grad_b_ih = affine_grad_params(deltas_columns, x.reshape(features, -1))
    grad_W_hh, grad_b_hh = affine_grad_params(deltas_columns, _previous_states(cache, hidden))
    grad_x = affine_grad_input(deltas_columns, W_ih).reshape(features, seq, batch)
    return RNN(RNNCell(grad_W_ih, grad_b_ih, grad_W_hh, grad_b_hh)), grad_x, grad_state


def _previous_states(cache: RNNCache, hidden: int) -> Array:
    """``h_{t−1}`` for every step as ``(hidden, seq·batch)`` columns: what ``W_hh`` read."""
    if not cache.steps:
        return np.zeros((hidden, 0), dtype=cache.initial_state.dtype)
    return np.stack([step.h for step in cache.steps], axis=1).reshape(hidden, -1)
