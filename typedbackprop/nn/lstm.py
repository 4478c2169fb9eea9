"""The LSTM, one step and a whole sequence, and their backward, in PyTorch's equations.

One step, ``torch.nn.LSTM``'s, with the gates in PyTorch's order ``i, f, g, o``:

    ``i = σ(W_ii x + b_ii + W_hi h + b_hi)``   input gate
    ``f = σ(W_if x + b_if + W_hf h + b_hf)``   forget gate
    ``g = tanh(W_ig x + b_ig + W_hg h + b_hg)``  cell gate (the candidate)
    ``o = σ(W_io x + b_io + W_ho h + b_ho)``   output gate
    ``c' = f ⊙ c + i ⊙ g``,  ``h' = o ⊙ tanh(c')``.

The state is the pair ``(h, c)``, each ``"hidden batch"``. Each gate is a
:class:`~typedbackprop.nn.gate.Gate`: its own ``W_ih`` (``"hidden features"``), ``W_hh``
(``"hidden hidden"``) and both biases ``b_ih`` and ``b_hh``, as PyTorch keeps them (only their
sum matters in an LSTM). PyTorch stacks the four gates' weights into one ``(4·hidden, features)``
``weight_ih_l0``, rows in the order ``i, f, g, o``; here each has its own annotation, and the
sequence layer stacks them the same way inside its loops, so that one product covers every gate.

The cell state ``c`` is the LSTM's point: ``∂L/∂c = ∂L/∂c' ⊙ f`` carries the gradient back one
step multiplied by the forget gate alone, no weight matrix and no squashing derivative, so where
``f`` stays near 1 it does not vanish over many steps.
"""

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import Array, checked, checked_record, static_jaxtyping
from typedbackprop.nn.activations import (
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from typedbackprop.nn.affine import affine_forward, affine_grad_input, affine_grad_params
from typedbackprop.nn.gate import Gate, _split, _stacked, gate_add, gate_backward
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.rnn import check_truncate

__all__ = [
    "LSTMCell",
    "LSTMCellCache",
    "lstm_cell_forward",
    "lstm_cell_backward",
    "lstm_cell_add",
    "LSTM",
    "LSTMCache",
    "lstm_forward",
    "lstm_backward",
]

State = tuple[Float[Array, "hidden batch"], Float[Array, "hidden batch"]]
"""An LSTM's state ``(h, c)``: the hidden state and the cell state."""


@dataclass(frozen=True, slots=True)
class LSTMCell:
    """One LSTM cell's parameters (or their gradients): four gates, in PyTorch's order.

    Parameters
    ----------
    input_gate
        ``i``'s weights and biases (``W_ii``, ``b_ii``, ``W_hi``, ``b_hi``).
    forget_gate
        ``f``'s (``W_if``, ``b_if``, ``W_hf``, ``b_hf``).
    cell_gate
        ``g``'s, the candidate's (``W_ig``, ``b_ig``, ``W_hg``, ``b_hg``).
    output_gate
        ``o``'s (``W_io``, ``b_io``, ``W_ho``, ``b_ho``).
    """

    input_gate: Gate
    forget_gate: Gate
    cell_gate: Gate
    output_gate: Gate


@dataclass(frozen=True, slots=True)
class LSTMCellCache:
    """What :func:`lstm_cell_forward` saves for :func:`lstm_cell_backward`."""

    cell: LSTMCell
    """The weights the step used."""
    x: Float[Array, "features batch"]
    """The step's input."""
    h: Float[Array, "hidden batch"]
    """The previous hidden state."""
    c: Float[Array, "hidden batch"]
    """The previous cell state ``c``: the forget gate's gradient is ``∂L/∂c' ⊙ c``."""
    i: Float[Array, "hidden batch"]
    """The input gate, ``σ(...)``."""
    f: Float[Array, "hidden batch"]
    """The forget gate, ``σ(...)``."""
    g: Float[Array, "hidden batch"]
    """The candidate, ``tanh(...)``."""
    o: Float[Array, "hidden batch"]
    """The output gate, ``σ(...)``."""
    tanh_c_new: Float[Array, "hidden batch"]
    """``tanh(c')``, which ``h' = o ⊙ tanh(c')`` used."""


@checked
@static_jaxtyping("features batch hidden")
def lstm_cell_forward(
    cell: LSTMCell, x: Float[Array, "features batch"], state: State
) -> tuple[State, LSTMCellCache]:
    """One LSTM step: the gates, then ``c' = f ⊙ c + i ⊙ g`` and ``h' = o ⊙ tanh(c')``.

    Parameters
    ----------
    cell
        The four gates' weights and biases.
    x
        The step's input, one column per example.
    state
        ``(h, c)``, the previous hidden and cell states.

    Returns
    -------
    new_state, cache
        ``(h', c')``, and the :class:`LSTMCellCache` backward needs.

    Notes
    -----
    Index form, for each gate ``γ`` with its nonlinearity ``φ`` (``σ``, or ``tanh`` for
    ``g``): ``γ_{jb} = φ(Σ_f W_iγ_{jf} x_{fb} + b_iγ_j + Σ_k W_hγ_{jk} h_{kb} + b_hγ_j)``;
    then ``c'_{jb} = f_{jb} c_{jb} + i_{jb} g_{jb}`` and ``h'_{jb} = o_{jb} tanh(c'_{jb})``.

    Matrix form: each gate is two affine maps added
    (:func:`~typedbackprop.nn.affine.affine_forward`, as in
    :func:`~typedbackprop.nn.gate.gate_forward`) and squashed; the rest is elementwise, every
    operand ``"hidden batch"``.
    """
    h: Float[Array, "hidden batch"] = state[0]  # the state (h, c), shapes stated
    c: Float[Array, "hidden batch"] = state[1]
    i = sigmoid_forward(_preactivation(cell.input_gate, x, h))
    f = sigmoid_forward(_preactivation(cell.forget_gate, x, h))
    g = tanh_forward(_preactivation(cell.cell_gate, x, h))
    o = sigmoid_forward(_preactivation(cell.output_gate, x, h))
    c_new = f * c + i * g
    tanh_c_new = tanh_forward(c_new)
    h_new = o * tanh_c_new
    return (h_new, c_new), LSTMCellCache(cell, x, h, c, i, f, g, o, tanh_c_new)


@static_jaxtyping("hidden features batch")
def _preactivation(
    gate: Gate, x: Float[Array, "features batch"], h: Float[Array, "hidden batch"]
) -> Float[Array, "hidden batch"]:
    """``W_ih x + b_ih + W_hh h + b_hh``: a gate's two affine maps, added, as the RNN cell's."""
    W_ih: Float[Array, "hidden features"] = gate.W_ih  # the record's fields, shapes stated
    W_hh: Float[Array, "hidden hidden"] = gate.W_hh
    preactivation = affine_forward(W_ih, gate.b_ih, x)
    preactivation += affine_forward(W_hh, gate.b_hh, h)  # a fresh array: no second temporary
    return preactivation


@checked
@static_jaxtyping("features batch hidden")
def lstm_cell_backward(
    grad_new_state: State, cache: LSTMCellCache
) -> tuple[LSTMCell, Float[Array, "features batch"], State]:
    """Gradients of one LSTM step: ``(LSTMCell of grads, grad_x, (grad_h, grad_c))``.

    Parameters
    ----------
    grad_new_state
        ``(∂L/∂h', ∂L/∂c')``: the upstream gradients of the new hidden and cell states.
    cache
        What :func:`lstm_cell_forward` saved.

    Returns
    -------
    grads, grad_x, grad_state
        The four gates' gradients in an :class:`LSTMCell`, ``∂L/∂x``, and
        ``(∂L/∂h, ∂L/∂c)`` for the previous state.

    Notes
    -----
    Elementwise first (every product ``⊙``, every operand ``"hidden batch"``):

    ``∂L/∂o = ∂L/∂h' ⊙ tanh(c')``;
    ``∂L/∂c'`` in total ``= ∂L/∂c' + ∂L/∂h' ⊙ o ⊙ (1 − tanh²(c'))``: ``c'`` reaches the loss
    as the next cell state and through ``h'``;
    ``∂L/∂f = ∂L/∂c' ⊙ c`` (the *previous* cell state, what ``f`` multiplied),
    ``∂L/∂i = ∂L/∂c' ⊙ g``, ``∂L/∂g = ∂L/∂c' ⊙ i``, ``∂L/∂c = ∂L/∂c' ⊙ f``.

    Through each gate's nonlinearity, ``δ_i = ∂L/∂i ⊙ i(1 − i)`` (``f``, ``o`` alike) and
    ``δ_g = ∂L/∂g ⊙ (1 − g²)``; then each gate's two affine maps
    (:func:`~typedbackprop.nn.gate.gate_backward`): ``∂L/∂W_iγ = δ_γ xᵀ``,
    ``∂L/∂W_hγ = δ_γ hᵀ``, both biases ``Σ_b δ_γ``, and the input and state gradients summed
    over the four gates, ``∂L/∂x = Σ_γ W_iγᵀ δ_γ`` and ``∂L/∂h = Σ_γ W_hγᵀ δ_γ``.
    """
    grad_h_new, grad_c_new = grad_new_state
    grad_o = grad_h_new * cache.tanh_c_new
    grad_c_total = grad_c_new + tanh_backward(
        grad_h_new * cache.o, cache.tanh_c_new, cache.tanh_c_new
    )
    grad_f = grad_c_total * cache.c
    grad_i = grad_c_total * cache.g
    grad_g = grad_c_total * cache.i
    grad_c = grad_c_total * cache.f
    deltas = (
        sigmoid_backward(grad_i, cache.i, cache.i),  # the z argument is unused: σ' from σ
        sigmoid_backward(grad_f, cache.f, cache.f),
        tanh_backward(grad_g, cache.g, cache.g),
        sigmoid_backward(grad_o, cache.o, cache.o),
    )
    gates = (
        cache.cell.input_gate,
        cache.cell.forget_gate,
        cache.cell.cell_gate,
        cache.cell.output_gate,
    )
    x: Float[Array, "features batch"] = cache.x  # what forward saved, shapes stated
    h: Float[Array, "hidden batch"] = cache.h
    grads = []
    grad_x: Float[Array, "features batch"] = np.zeros_like(x, dtype=np.result_type(x, grad_h_new))
    grad_h: Float[Array, "hidden batch"] = np.zeros_like(h, dtype=np.result_type(h, grad_h_new))
    for gate, delta in zip(gates, deltas, strict=True):
        grad_gate, grad_x_gate, grad_h_gate = gate_backward(delta, delta, gate, x, h)
        grads.append(grad_gate)
        grad_x += grad_x_gate  # x feeds all four gates: its gradient sums theirs
        grad_h += grad_h_gate
    return LSTMCell(*grads), grad_x, (grad_h, grad_c)


def lstm_cell_add(first: LSTMCell, second: LSTMCell) -> LSTMCell:
    """Two cells' gradients added gate by gate: how BPTT sums the shared weights over ``seq``."""
    return LSTMCell(
        gate_add(first.input_gate, second.input_gate),
        gate_add(first.forget_gate, second.forget_gate),
        gate_add(first.cell_gate, second.cell_gate),
        gate_add(first.output_gate, second.output_gate),
    )


# --- the sequence layer: the cell at every step, and backpropagation through time ---------------


@checked_record()
@dataclass(frozen=True, slots=True)
class LSTM(Layer):
    """An LSTM layer over a sequence: one cell, whose weights every step shares.

    Parameters
    ----------
    cell
        The cell's gates (or, as a gradient, their sums over the steps).
    truncate
        A setting of training, not of the model: where the network's backward pass (the
        family's row in :data:`~typedbackprop.nn.families.FAMILIES`) runs :func:`lstm_backward`,
        it passes this as its ``truncate``, chunks of that many steps with no state gradient
        carried across a chunk's start (truncated BPTT). ``None`` (the default) carries it
        all the way. The forward pass does not read it.
    """

    cell: LSTMCell
    truncate: int | None = None

    def __post_init__(self) -> None:
        check_truncate(self.truncate)


@dataclass(frozen=True, slots=True)
class LSTMCache:
    """What :func:`lstm_forward` saves for :func:`lstm_backward`: every step's cell cache."""

    layer: LSTM
    """The layer the forward pass ran."""
    x: Float[Array, "features seq batch"]
    """The input sequence (each step's cache holds a view of its column)."""
    initial_state: State
    """``(h, c)`` before the first step."""
    last_state: State
    """``(h, c)`` after the last step (the initial state if ``seq`` is 0)."""
    steps: tuple[LSTMCellCache, ...]
    """One :class:`LSTMCellCache` per step, in order."""


@checked(vouches_for_inner_calls=True)
@static_jaxtyping("features seq batch hidden gates")
def lstm_forward(
    layer: LSTM, x: Float[Array, "features seq batch"], initial_state: State | None = None
) -> tuple[Float[Array, "hidden seq batch"], LSTMCache]:
    """Run the cell over the sequence: every hidden state ``h_t``, and what backward needs.

    Parameters
    ----------
    layer
        The cell every step uses.
    x
        The input sequence; ``x[:, t]`` is step ``t``'s input.
    initial_state
        ``(h_{−1}, c_{−1})``; zeros if ``None`` (PyTorch's default).

    Returns
    -------
    hidden_states, cache
        ``h_t`` for every step, and the :class:`LSTMCache`, whose ``last_state`` is
        ``(h_{seq−1}, c_{seq−1})``. The cell states are not outputs, as in PyTorch: only the
        last one is, through ``last_state``.

    Notes
    -----
    ``(h_t, c_t) = cell(x_t, (h_{t−1}, c_{t−1}))`` for ``t = 0, …, seq − 1``: the equations
    of :func:`lstm_cell_forward`, computed as cuDNN and PyTorch compute them. The four gates'
    rows are stacked in PyTorch's order ``i, f, g, o`` (``W_ih`` becomes
    ``(4·hidden, features)``, PyTorch's ``weight_ih_l0``), and the input maps, which do not
    depend on the recurrence, are one product before the loop:
    ``W_ih x_t + b_ih + b_hh`` for every ``t`` at once is the affine map of the
    ``(features, seq·batch)`` columns. The loop is left with the state's product,
    ``(4·hidden, hidden) @ (hidden, batch)``, and the elementwise rest. Each step's
    :class:`LSTMCellCache` is the cell's own, so :func:`lstm_cell_backward` reads it.
    """
    features, seq, batch = x.shape
    cell = layer.cell
    stack = _stacked(_gates(cell))  # rows i, f, g, o; each "hidden" rows of one gate
    # The stacked weights, PyTorch's weight_ih_l0 and weight_hh_l0: "gates" is 4·hidden rows.
    W_ih: Float[Array, "gates features"] = stack.W_ih
    W_hh: Float[Array, "gates hidden"] = stack.W_hh
    gates, hidden = W_hh.shape
    if initial_state is None:
        initial_state = (
            np.zeros((hidden, batch), dtype=x.dtype),
            np.zeros((hidden, batch), dtype=x.dtype),
        )
    # W_ih x_t + b_ih + b_hh for every step: one affine map over the seq·batch columns (only the
    # biases' sum matters in an LSTM, so both join here). (4·hidden, seq·batch) → (.., seq, batch)
    input_parts = affine_forward(
        W_ih, stack.b_ih + stack.b_hh, x.reshape(features, seq * batch)
    ).reshape(gates, seq, batch)
    dtype = np.result_type(input_parts, *initial_state, W_hh)
    hidden_states = np.empty((hidden, seq, batch), dtype=dtype)
    h: Float[Array, "hidden batch"] = initial_state[0]  # the state (h, c), shapes stated
    c: Float[Array, "hidden batch"] = initial_state[1]
    steps = []
    for t in range(seq):
        preactivation = W_hh @ h  # W_hγ h for the four gates γ: (4·hidden, batch)
        preactivation += input_parts[:, t]  # + W_iγ x_t + b_iγ + b_hγ
        i = sigmoid_forward(preactivation[:hidden])
        f = sigmoid_forward(preactivation[hidden : 2 * hidden])
        g = tanh_forward(preactivation[2 * hidden : 3 * hidden])
        o = sigmoid_forward(preactivation[3 * hidden : 4 * hidden])
        c_new = f * c + i * g
        tanh_c_new = tanh_forward(c_new)
        steps.append(LSTMCellCache(cell, x[:, t], h, c, i, f, g, o, tanh_c_new))
        h, c = o * tanh_c_new, c_new
        hidden_states[:, t] = h
    return hidden_states, LSTMCache(layer, x, initial_state, (h, c), tuple(steps))


@checked(vouches_for_inner_calls=True)
@static_jaxtyping("hidden seq batch features gates")
def lstm_backward(
    grad_hidden_states: Float[Array, "hidden seq batch"],
    cache: LSTMCache,
    grad_last_state: State | None = None,
    truncate: int | None = None,
) -> tuple[LSTM, Float[Array, "features seq batch"], State]:
    """Backpropagation through time: ``(LSTM of grads, grad_x, grad_initial_state)``.

    Parameters
    ----------
    grad_hidden_states
        ``∂L/∂h_t`` from whatever reads each hidden state: the outputs' own gradients, not yet
        the later steps'.
    cache
        What :func:`lstm_forward` saved.
    grad_last_state
        ``(∂L/∂h_{seq−1}, ∂L/∂c_{seq−1})`` through the returned last state, added to the last
        step's; ``None`` is zeros.
    truncate
        Truncated BPTT: chunks of ``truncate`` steps from the first, no state gradient (``h``
        nor ``c``) carried across a chunk's start. ``None`` carries it all the way.

    Returns
    -------
    grads, grad_x, grad_initial_state
        The cell's gradients summed over the steps in an :class:`LSTM`, ``∂L/∂x`` for every
        step, and ``(∂L/∂h_{−1}, ∂L/∂c_{−1})``.

    Notes
    -----
    Going back from ``t = seq − 1`` to ``0``, with ``(g_t, k_t)`` the hidden- and cell-state
    gradients carried from step ``t + 1``:

    ``∂L/∂h_t = grad_hidden_states[:, t] + g_t`` (two paths: the output and the next step),
    ``∂L/∂c_t = k_t`` (the cell state is no output: one path, the next step's); then
    :func:`lstm_cell_backward`'s equations give the four gates' ``δ_γ,t`` and the carried
    ``k_{t−1} = ∂L/∂c_t ⊙ f_t`` and ``g_{t−1} = Σ_γ W_hγᵀ δ_γ,t``, one product with the gates
    stacked. Only that product is needed inside the loop: every other product reads ``δ``, not
    the recurrence, so it runs once after the loop over the ``(seq·batch)`` columns.

    The weights are shared by every step, so their gradients sum over ``seq`` as a bias's
    sums over ``batch``: ``∂L/∂W_iγ = Σ_t δ_γ,t x_tᵀ``, ``∂L/∂W_hγ = Σ_t δ_γ,t h_{t−1}ᵀ``,
    ``∂L/∂b_iγ = ∂L/∂b_hγ = Σ_t Σ_b δ_γ,t``, which are the affine layer's gradients of the
    ``(seq·batch)`` columns (:func:`~typedbackprop.nn.affine.affine_grad_params`): each is
    ONE product, a sum over ``batch`` and ``seq`` at once. And ``∂L/∂x_t = Σ_γ W_iγᵀ δ_γ,t``
    for every ``t`` is one product too.
    """
    hidden, seq, batch = grad_hidden_states.shape
    if truncate is not None and truncate < 1:
        raise ValueError(f"truncate must be a number of steps, at least 1; got {truncate}")
    x: Float[Array, "features seq batch"] = cache.x  # what forward saved, shapes stated
    features = x.shape[0]
    stack = _stacked(_gates(cache.layer.cell))  # rows i, f, g, o, as in lstm_forward
    W_ih: Float[Array, "gates features"] = stack.W_ih  # "gates" is 4·hidden rows
    W_hh: Float[Array, "gates hidden"] = stack.W_hh
    gates = W_hh.shape[0]
    if grad_last_state is None:
        grad_last_state = (
            np.zeros((hidden, batch), dtype=grad_hidden_states.dtype),
            np.zeros((hidden, batch), dtype=grad_hidden_states.dtype),
        )
    grad_h_next: Float[Array, "hidden batch"] = grad_last_state[0]  # shapes stated
    grad_c: Float[Array, "hidden batch"] = grad_last_state[1]
    # δ_γ,t for the four gates and every step: (4·hidden, seq, batch), rows i, f, g, o.
    dtype = np.result_type(grad_hidden_states, *grad_last_state, *cache.last_state, W_hh)
    deltas = np.empty((gates, seq, batch), dtype=dtype)
    for t in reversed(range(seq)):
        step = cache.steps[t]
        grad_h = grad_hidden_states[:, t] + grad_h_next  # two paths: the output, and step t + 1
        # ∂L/∂c' in total: the carried k_t, and through h' = o ⊙ tanh(c')
        grad_c_total = grad_c + tanh_backward(grad_h * step.o, step.tanh_c_new, step.tanh_c_new)
        # δ_γ = ∂L/∂γ ⊙ φ'(·), φ' from the gate's saved value (the z argument is unused), with
        # ∂L/∂i = ∂L/∂c' ⊙ g, ∂L/∂f = ∂L/∂c' ⊙ c (the previous c), ∂L/∂g = ∂L/∂c' ⊙ i and
        # ∂L/∂o = ∂L/∂h' ⊙ tanh(c')
        delta = deltas[:, t]
        delta[:hidden] = sigmoid_backward(grad_c_total * step.g, step.i, step.i)
        delta[hidden : 2 * hidden] = sigmoid_backward(grad_c_total * step.c, step.f, step.f)
        delta[2 * hidden : 3 * hidden] = tanh_backward(grad_c_total * step.i, step.g, step.g)
        delta[3 * hidden :] = sigmoid_backward(grad_h * step.tanh_c_new, step.o, step.o)
        grad_c = grad_c_total * step.f  # k_{t−1}: the cell-state path, f alone
        grad_h_next = affine_grad_input(delta, W_hh)  # g_{t−1} = Σ_γ W_hγᵀ δ_γ
        if truncate is not None and t % truncate == 0 and t > 0:  # a chunk starts at t
            grad_h_next, grad_c = np.zeros_like(grad_h_next), np.zeros_like(grad_c)
    # The shared weights: Σ over seq, as a bias's Σ over batch, one product over the columns.
    deltas_columns = deltas.reshape(gates, seq * batch)
    grad_W_ih: Float[Array, "gates features"]  # a weight's gradient has the weight's shape
    grad_W_ih, grad_b_ih = affine_grad_params(deltas_columns, x.reshape(features, -1))
    grad_W_hh, grad_b_hh = affine_grad_params(deltas_columns, _previous_states(cache, hidden))
    grad_x = affine_grad_input(deltas_columns, W_ih).reshape(features, seq, batch)
    grads = _split(Gate(grad_W_ih, grad_b_ih, grad_W_hh, grad_b_hh), 4)
    return LSTM(LSTMCell(*grads)), grad_x, (grad_h_next, grad_c)


def _gates(cell: LSTMCell) -> tuple[Gate, Gate, Gate, Gate]:
    """The four gates in PyTorch's order ``i, f, g, o``: the order of their stacked rows."""
    return (cell.input_gate, cell.forget_gate, cell.cell_gate, cell.output_gate)


def _previous_states(cache: LSTMCache, hidden: int) -> Array:
    """``h_{t−1}`` for every step as ``(hidden, seq·batch)`` columns: what ``W_hh`` read."""
    if not cache.steps:
        return np.zeros((hidden, 0), dtype=cache.initial_state[0].dtype)
    return np.stack([step.h for step in cache.steps], axis=1).reshape(hidden, -1)
