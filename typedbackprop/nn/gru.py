"""The GRU, one step and a whole sequence, and their backward, in PyTorch's equations.

One step, ``torch.nn.GRU``'s, with the gates in PyTorch's order ``r, z, n``:

    ``r = σ(W_ir x + b_ir + W_hr h + b_hr)``         reset gate
    ``z = σ(W_iz x + b_iz + W_hz h + b_hz)``         update gate
    ``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))``  new gate (the candidate)
    ``h' = (1 − z) ⊙ n + z ⊙ h``.

Each gate is a :class:`~typedbackprop.nn.gate.Gate` with both biases, ``b_ih`` and ``b_hh``, as
PyTorch keeps them. For ``r`` and ``z`` only their sum matters; for ``n`` it does not: the reset
gate multiplies ``W_hn h + b_hn``, bias included, and leaves ``W_in x + b_in`` alone, so
``b_hn`` is a parameter of its own (this is PyTorch's form, and cuDNN's; the original paper's
applies ``r`` to ``h`` before the product, ``W_hn (r ⊙ h)``).

``z`` near 1 keeps the old state (``h' ≈ h``), and the state's gradient then passes back
almost unchanged, ``∂L/∂h ⊇ ∂L/∂h' ⊙ z``: the GRU's path along which it does not vanish.
"""

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
from typedbackprop.nn.activations import (
    sigmoid_backward,
    sigmoid_forward,
    tanh_backward,
    tanh_forward,
)
from typedbackprop.nn.affine import affine_forward, affine_grad_input, affine_grad_params
from typedbackprop.nn.gate import Gate, _split, _stacked, gate_add, gate_backward, gate_forward
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.rnn import check_truncate

__all__ = [
    "GRUCell",
    "GRUCellCache",
    "gru_cell_forward",
    "gru_cell_backward",
    "gru_cell_add",
    "GRU",
    "GRUCache",
    "gru_forward",
    "gru_backward",
]


@dataclass(frozen=True, slots=True)
class GRUCell:
    """One GRU cell's parameters (or their gradients): three gates, in PyTorch's order.

    Parameters
    ----------
    reset_gate
        ``r``'s weights and biases (``W_ir``, ``b_ir``, ``W_hr``, ``b_hr``).
    update_gate
        ``z``'s (``W_iz``, ``b_iz``, ``W_hz``, ``b_hz``).
    new_gate
        ``n``'s, the candidate's (``W_in``, ``b_in``, ``W_hn``, ``b_hn``): ``b_hn`` sits inside
        the reset gate's product, so it is not interchangeable with ``b_in``.
    """

    reset_gate: Gate
    update_gate: Gate
    new_gate: Gate


@dataclass(frozen=True, slots=True)
class GRUCellCache:
    """What :func:`gru_cell_forward` saves for :func:`gru_cell_backward`."""

    cell: GRUCell
    """The weights the step used."""
    x: Float[Array, "features batch"]
    """The step's input."""
    h: Float[Array, "hidden batch"]
    """The previous state (``∂L/∂z = ∂L/∂h' ⊙ (h − n)`` needs it)."""
    r: Float[Array, "hidden batch"]
    """The reset gate."""
    z: Float[Array, "hidden batch"]
    """The update gate."""
    n: Float[Array, "hidden batch"]
    """The candidate."""
    hidden_part_n: Float[Array, "hidden batch"]
    """``W_hn h + b_hn``, what ``r`` multiplied: ``∂L/∂r`` needs it."""


@checked
@runtime_shapes_only(
    "its gates' affine maps come from gate_forward, whose shapes Pyrefly does not follow, "
    'and the elementwise rest has every operand "hidden batch"'
)
def gru_cell_forward(
    cell: GRUCell, x: Float[Array, "features batch"], h: Float[Array, "hidden batch"]
) -> tuple[Float[Array, "hidden batch"], GRUCellCache]:
    """One GRU step: ``r``, ``z``, ``n``, then ``h' = (1 − z) ⊙ n + z ⊙ h``.

    Parameters
    ----------
    cell
        The three gates' weights and biases.
    x
        The step's input, one column per example.
    h
        The previous state, one column per example.

    Returns
    -------
    h_new, cache
        The new state, and the :class:`GRUCellCache` backward needs.

    Notes
    -----
    Index form: ``r_{jb} = σ(Σ_f W_ir_{jf} x_{fb} + b_ir_j + Σ_k W_hr_{jk} h_{kb} + b_hr_j)``
    (``z`` alike), ``n_{jb} = tanh(Σ_f W_in_{jf} x_{fb} + b_in_j
    + r_{jb} (Σ_k W_hn_{jk} h_{kb} + b_hn_j))``, ``h'_{jb} = (1 − z_{jb}) n_{jb} + z_{jb} h_{jb}``.

    Matrix form: each gate's two affine maps (:func:`~typedbackprop.nn.gate.gate_forward`);
    ``r`` and ``z`` add them, ``n`` scales the state's by ``r`` first; the rest is elementwise,
    every operand ``"hidden batch"``.
    """
    input_part_r, hidden_part_r = gate_forward(cell.reset_gate, x, h)
    input_part_z, hidden_part_z = gate_forward(cell.update_gate, x, h)
    input_part_n, hidden_part_n = gate_forward(cell.new_gate, x, h)
    r = sigmoid_forward(input_part_r + hidden_part_r)
    z = sigmoid_forward(input_part_z + hidden_part_z)
    n = tanh_forward(input_part_n + r * hidden_part_n)
    h_new = (1.0 - z) * n + z * h
    return h_new, GRUCellCache(cell, x, h, r, z, n, hidden_part_n)


@checked
@static_jaxtyping("hidden features batch")
def gru_cell_backward(
    grad_h_new: Float[Array, "hidden batch"], cache: GRUCellCache
) -> tuple[GRUCell, Float[Array, "features batch"], Float[Array, "hidden batch"]]:
    """Gradients of one GRU step: ``(GRUCell of grads, grad_x, grad_h)``.

    Parameters
    ----------
    grad_h_new
        ``∂L/∂h'``, the upstream gradient of the new state.
    cache
        What :func:`gru_cell_forward` saved.

    Returns
    -------
    grads, grad_x, grad_h
        The three gates' gradients in a :class:`GRUCell`, ``∂L/∂x``, and ``∂L/∂h`` for the
        previous state.

    Notes
    -----
    Elementwise first (every operand ``"hidden batch"``): from ``h' = (1 − z) ⊙ n + z ⊙ h``,
    ``∂L/∂n = ∂L/∂h' ⊙ (1 − z)``, ``∂L/∂z = ∂L/∂h' ⊙ (h − n)``, and the direct share of
    ``∂L/∂h``, ``∂L/∂h' ⊙ z`` (swapping ``z`` and ``1 − z`` changes every number, no shape).
    Through ``n``'s tanh, ``δ_n = ∂L/∂n ⊙ (1 − n²)``; its pre-activation is
    ``input_part_n + r ⊙ hidden_part_n``, so ``∂L/∂input_part_n = δ_n``,
    ``∂L/∂hidden_part_n = δ_n ⊙ r`` and ``∂L/∂r = δ_n ⊙ hidden_part_n``. Through the
    sigmoids, ``δ_r = ∂L/∂r ⊙ r(1 − r)`` and ``δ_z = ∂L/∂z ⊙ z(1 − z)``.

    Then each gate's two affine maps (:func:`~typedbackprop.nn.gate.gate_backward`), with
    ``n``'s two parts getting their two different gradients: ``∂L/∂W_in = δ_n xᵀ``,
    ``∂L/∂b_in = Σ_b δ_n``, ``∂L/∂W_hn = (δ_n ⊙ r) hᵀ``, ``∂L/∂b_hn = Σ_b δ_n ⊙ r``; and
    ``∂L/∂x = Σ_γ W_iγᵀ δ_γ``, ``∂L/∂h = ∂L/∂h' ⊙ z + W_hrᵀ δ_r + W_hzᵀ δ_z + W_hnᵀ (δ_n ⊙ r)``.
    """
    grad_n = grad_h_new * (1.0 - cache.z)
    grad_z = grad_h_new * (cache.h - cache.n)
    delta_n = tanh_backward(grad_n, cache.n, cache.n)  # the z argument is unused: 1 − n²
    grad_hidden_part_n = delta_n * cache.r
    grad_r = delta_n * cache.hidden_part_n
    delta_r = sigmoid_backward(grad_r, cache.r, cache.r)  # σ' from σ
    delta_z = sigmoid_backward(grad_z, cache.z, cache.z)
    cell = cache.cell
    x: Float[Array, "features batch"] = cache.x  # what forward saved, shapes stated
    h: Float[Array, "hidden batch"] = cache.h
    grad_reset, grad_x_r, grad_h_r = gate_backward(delta_r, delta_r, cell.reset_gate, x, h)
    grad_update, grad_x_z, grad_h_z = gate_backward(delta_z, delta_z, cell.update_gate, x, h)
    grad_new, grad_x_n, grad_h_n = gate_backward(delta_n, grad_hidden_part_n, cell.new_gate, x, h)
    grad_x = grad_x_r + grad_x_z + grad_x_n  # x feeds all three gates
    grad_h = grad_h_new * cache.z + grad_h_r + grad_h_z + grad_h_n  # and so does h, and h'
    return GRUCell(grad_reset, grad_update, grad_new), grad_x, grad_h


def gru_cell_add(first: GRUCell, second: GRUCell) -> GRUCell:
    """Two cells' gradients added gate by gate: how BPTT sums the shared weights over ``seq``."""
    return GRUCell(
        gate_add(first.reset_gate, second.reset_gate),
        gate_add(first.update_gate, second.update_gate),
        gate_add(first.new_gate, second.new_gate),
    )


# --- the sequence layer: the cell at every step, and backpropagation through time ---------------


@checked_record()
@dataclass(frozen=True, slots=True)
class GRU(Layer):
    """A GRU layer over a sequence: one cell, whose weights every step shares.

    Parameters
    ----------
    cell
        The cell's gates (or, as a gradient, their sums over the steps).
    truncate
        A setting of training, not of the model: where the network's backward pass (the
        family's row in :data:`~typedbackprop.nn.families.FAMILIES`) runs :func:`gru_backward`,
        it passes this as its ``truncate``, chunks of that many steps with no state gradient
        carried across a chunk's start (truncated BPTT). ``None`` (the default) carries it
        all the way. The forward pass does not read it.
    """

    cell: GRUCell
    truncate: int | None = None

    def __post_init__(self) -> None:
        check_truncate(self.truncate)


@dataclass(frozen=True, slots=True)
class GRUCache:
    """What :func:`gru_forward` saves for :func:`gru_backward`: every step's cell cache."""

    layer: GRU
    """The layer the forward pass ran."""
    x: Float[Array, "features seq batch"]
    """The input sequence (each step's cache holds a view of its column)."""
    initial_state: Float[Array, "hidden batch"]
    """The state before the first step."""
    last_state: Float[Array, "hidden batch"]
    """The state after the last step (the initial state if ``seq`` is 0)."""
    steps: tuple[GRUCellCache, ...]
    """One :class:`GRUCellCache` per step, in order."""


@checked(vouches_for_inner_calls=True)
@static_jaxtyping("features seq batch hidden gates")
def gru_forward(
    layer: GRU,
    x: Float[Array, "features seq batch"],
    initial_state: Float[Array, "hidden batch"] | None = None,
) -> tuple[Float[Array, "hidden seq batch"], GRUCache]:
    """Run the cell over the sequence: every state ``h_t``, and what backward needs.

    Parameters
    ----------
    layer
        The cell every step uses.
    x
        The input sequence; ``x[:, t]`` is step ``t``'s input.
    initial_state
        ``h_{−1}``; zeros if ``None`` (PyTorch's default).

    Returns
    -------
    hidden_states, cache
        ``h_t`` for every step, and the :class:`GRUCache`, whose ``last_state`` is
        ``h_{seq−1}``.

    Notes
    -----
    ``h_t = cell(x_t, h_{t−1})`` for ``t = 0, …, seq − 1``: the equations of
    :func:`gru_cell_forward`, computed as cuDNN and PyTorch compute them. The three gates'
    rows are stacked in PyTorch's order ``r, z, n`` (``W_ih`` becomes ``(3·hidden, features)``,
    PyTorch's ``weight_ih_l0``), and the input maps, which do not depend on the recurrence, are
    one product before the loop: ``W_ih x_t + b_ih`` for every ``t`` at once is the affine map of
    the ``(features, seq·batch)`` columns. The loop is left with the state's affine map,
    ``W_hh h + b_hh``, ``(3·hidden, hidden) @ (hidden, batch)``, and the elementwise rest. The
    biases stay apart: ``r`` multiplies ``W_hn h + b_hn`` and not ``b_in``. Each step's
    :class:`GRUCellCache` is the cell's own, so :func:`gru_cell_backward` reads it.
    """
    features, seq, batch = x.shape
    cell = layer.cell
    stack = _stacked(_gates(cell))  # rows r, z, n; each "hidden" rows of one gate
    # The stacked weights, PyTorch's weight_ih_l0 and weight_hh_l0: "gates" is 3·hidden rows.
    W_ih: Float[Array, "gates features"] = stack.W_ih
    W_hh: Float[Array, "gates hidden"] = stack.W_hh
    gates, hidden = W_hh.shape
    first = np.zeros((hidden, batch), dtype=x.dtype) if initial_state is None else initial_state
    # W_iγ x_t + b_iγ for every step: one affine map over the seq·batch columns.
    # (3·hidden, seq·batch) → (3·hidden, seq, batch)
    input_parts = affine_forward(W_ih, stack.b_ih, x.reshape(features, seq * batch)).reshape(
        gates, seq, batch
    )
    dtype = np.result_type(input_parts, first, W_hh)
    hidden_states = np.empty((hidden, seq, batch), dtype=dtype)
    h, steps = first, []
    for t in range(seq):
        hidden_parts = affine_forward(W_hh, stack.b_hh, h)  # W_hγ h + b_hγ, γ = r, z, n
        # rows r, z, n: [:hidden], [hidden : 2 * hidden], [2 * hidden : 3 * hidden]
        r = sigmoid_forward(input_parts[:hidden, t] + hidden_parts[:hidden])
        z = sigmoid_forward(input_parts[hidden : 2 * hidden, t] + hidden_parts[hidden : 2 * hidden])
        hidden_part_n = hidden_parts[2 * hidden : 3 * hidden]
        n = tanh_forward(input_parts[2 * hidden : 3 * hidden, t] + r * hidden_part_n)
        steps.append(GRUCellCache(cell, x[:, t], h, r, z, n, hidden_part_n))
        h = (1.0 - z) * n + z * h
        hidden_states[:, t] = h
    return hidden_states, GRUCache(layer, x, first, h, tuple(steps))


@checked(vouches_for_inner_calls=True)
@static_jaxtyping("hidden seq batch features gates")
def gru_backward(
    grad_hidden_states: Float[Array, "hidden seq batch"],
    cache: GRUCache,
    grad_last_state: Float[Array, "hidden batch"] | None = None,
    truncate: int | None = None,
) -> tuple[GRU, Float[Array, "features seq batch"], Float[Array, "hidden batch"]]:
    """Backpropagation through time: ``(GRU of grads, grad_x, grad_initial_state)``.

    Parameters
    ----------
    grad_hidden_states
        ``∂L/∂h_t`` from whatever reads each state: the outputs' own gradients, not yet the
        later steps'.
    cache
        What :func:`gru_forward` saved.
    grad_last_state
        ``∂L/∂h_{seq−1}`` through the returned last state, added to the last step's; ``None``
        is zeros.
    truncate
        Truncated BPTT: chunks of ``truncate`` steps from the first, no state gradient carried
        across a chunk's start. ``None`` carries it all the way.

    Returns
    -------
    grads, grad_x, grad_initial_state
        The cell's gradients summed over the steps in a :class:`GRU`, ``∂L/∂x`` for every
        step, and ``∂L/∂h_{−1}``.

    Notes
    -----
    Going back from ``t = seq − 1`` to ``0``, with ``g_t`` the state gradient carried from
    step ``t + 1``: ``∂L/∂h_t = grad_hidden_states[:, t] + g_t`` (two paths: the output and
    the next step); then :func:`gru_cell_backward`'s equations give ``δ_r``, ``δ_z``, ``δ_n``
    and the carried ``g_{t−1} = ∂L/∂h_t ⊙ z + W_hrᵀ δ_r + W_hzᵀ δ_z + W_hnᵀ (δ_n ⊙ r)``, one
    product with the gates stacked. The input map's gradients are ``(δ_r, δ_z, δ_n)``, the state
    map's ``(δ_r, δ_z, δ_n ⊙ r)``: they differ in ``n``'s rows alone.

    The weights are shared by every step, so their gradients sum over ``seq`` as a bias's sums
    over ``batch``: ``∂L/∂W_iγ = Σ_t δ_γ,t x_tᵀ``, ``∂L/∂W_hγ = Σ_t (state map's δ_γ,t) h_{t−1}ᵀ``
    and the biases ``Σ_t Σ_b`` of the same, which are the affine layer's gradients of the
    ``(seq·batch)`` columns (:func:`~typedbackprop.nn.affine.affine_grad_params`): ONE product
    each, after the loop. ``∂L/∂x_t = Σ_γ W_iγᵀ δ_γ,t`` for every ``t`` is one product too.
    """
    hidden, seq, batch = grad_hidden_states.shape
    if truncate is not None and truncate < 1:
        raise ValueError(f"truncate must be a number of steps, at least 1; got {truncate}")
    x: Float[Array, "features seq batch"] = cache.x  # what forward saved, shapes stated
    features = x.shape[0]
    stack = _stacked(_gates(cache.layer.cell))  # rows r, z, n, as in gru_forward
    W_ih: Float[Array, "gates features"] = stack.W_ih  # "gates" is 3·hidden rows
    W_hh: Float[Array, "gates hidden"] = stack.W_hh
    gates = W_hh.shape[0]
    grad_state = (
        np.zeros((hidden, batch), dtype=grad_hidden_states.dtype)
        if grad_last_state is None
        else grad_last_state
    )
    # The gradients of every step's two affine maps, (3·hidden, seq, batch), rows r, z, n: the
    # input map's (δ_r, δ_z, δ_n) and the state map's (δ_r, δ_z, δ_n ⊙ r).
    dtype = np.result_type(grad_hidden_states, grad_state, cache.last_state, W_hh)
    grad_input_parts = np.empty((gates, seq, batch), dtype=dtype)
    grad_hidden_parts = np.empty((gates, seq, batch), dtype=dtype)
    r_rows, z_rows, n_rows = (slice(k * hidden, (k + 1) * hidden) for k in range(3))
    for t in reversed(range(seq)):
        step = cache.steps[t]
        z: Float[Array, "hidden batch"] = step.z  # the step's saved gates, shapes stated
        n: Float[Array, "hidden batch"] = step.n
        grad_h = grad_hidden_states[:, t] + grad_state  # two paths: the output, and step t + 1
        # ∂L/∂n = ∂L/∂h' ⊙ (1 − z), then δ_n = ∂L/∂n ⊙ (1 − n²)
        delta_n = tanh_backward(grad_h * (1.0 - z), n, n)
        grad_hidden_part_n = delta_n * step.r  # the state map of n was scaled by r
        grad_input_parts[n_rows, t] = delta_n
        grad_hidden_parts[n_rows, t] = grad_hidden_part_n
        # δ_r = (δ_n ⊙ (W_hn h + b_hn)) ⊙ σ'; δ_z = (∂L/∂h' ⊙ (h − n)) ⊙ σ'
        delta_r = sigmoid_backward(delta_n * step.hidden_part_n, step.r, step.r)
        delta_z = sigmoid_backward(grad_h * (step.h - n), z, z)
        grad_input_parts[r_rows, t] = grad_hidden_parts[r_rows, t] = delta_r
        grad_input_parts[z_rows, t] = grad_hidden_parts[z_rows, t] = delta_z
        # g_{t−1} = ∂L/∂h' ⊙ z + Σ_γ W_hγᵀ (state map's δ_γ)
        grad_state = grad_h * z + affine_grad_input(grad_hidden_parts[:, t], W_hh)
        if truncate is not None and t % truncate == 0 and t > 0:  # a chunk starts at t
            grad_state = np.zeros_like(grad_state)
    # The shared weights: Σ over seq, as a bias's Σ over batch, one product over the columns.
    grad_input_columns = grad_input_parts.reshape(gates, seq * batch)
    grad_hidden_columns = grad_hidden_parts.reshape(gates, seq * batch)
    grad_W_ih: Float[Array, "gates features"]  # a weight's gradient has the weight's shape
    grad_W_ih, grad_b_ih = affine_grad_params(grad_input_columns, x.reshape(features, -1))
    grad_W_hh, grad_b_hh = affine_grad_params(grad_hidden_columns, _previous_states(cache, hidden))
    grad_x = affine_grad_input(grad_input_columns, W_ih).reshape(features, seq, batch)
    grads = _split(Gate(grad_W_ih, grad_b_ih, grad_W_hh, grad_b_hh), 3)
    return GRU(GRUCell(*grads)), grad_x, grad_state


def _gates(cell: GRUCell) -> tuple[Gate, Gate, Gate]:
    """The three gates in PyTorch's order ``r, z, n``: the order of their stacked rows."""
    return (cell.reset_gate, cell.update_gate, cell.new_gate)


def _previous_states(cache: GRUCache, hidden: int) -> Array:
    """``h_{t−1}`` for every step as ``(hidden, seq·batch)`` columns: what ``W_hh`` read."""
    if not cache.steps:
        return np.zeros((hidden, 0), dtype=cache.initial_state.dtype)
    return np.stack([step.h for step in cache.steps], axis=1).reshape(hidden, -1)
