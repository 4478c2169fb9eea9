"""One-line shape mistakes in the LSTM (``typedbackprop/nn/lstm.py``) that Pyrefly must flag.

Every elementwise operand of an LSTM step is ``"hidden batch"`` and ``W_hh`` is square, so the
LSTM's most common slips have the right shape by name: ``f ⊙ h`` for ``f ⊙ c``, ``∂L/∂f``
from the new ``c'`` instead of the previous ``c``, two gates' rows swapped in the stacked
slices (``i`` read from ``f``'s rows), ``W_hh`` transposed. No mutant here stands for them: the
gradient check and the comparison with PyTorch catch those.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/lstm.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "lstm_cell_forward",
        "i = sigmoid_forward(_preactivation(cell.input_gate, x, h))",
        "i = sigmoid_forward(_preactivation(cell.input_gate, h, x))",
        "the input gate fed the state as its input and the input as its state (x and h swapped)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "_preactivation",
        "preactivation = affine_forward(W_ih, gate.b_ih, x)",
        "preactivation = affine_forward(W_ih, gate.b_ih, h)",
        "the previous state fed to the gate's input weights W_ih (h for x)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "lstm_cell_backward",
        "grad_gate, grad_x_gate, grad_h_gate = gate_backward(delta, delta, gate, x, h)",
        "grad_gate, grad_x_gate, grad_h_gate = gate_backward(delta, delta, gate, h, x)",
        "each gate's backward given x and h swapped",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "lstm_cell_backward",
        "grad_x += grad_x_gate  # x feeds all four gates: its gradient sums theirs",
        "grad_x += grad_h_gate  # x feeds all four gates: its gradient sums theirs",
        "the state's gradient summed into grad_x",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "lstm_forward",
        "preactivation += input_parts[:, t]  # + W_iγ x_t + b_iγ + b_hγ",
        "preactivation += input_parts[t]  # + W_iγ x_t + b_iγ + b_hγ",
        "step t's input part indexed on the wrong axis (input_parts[t], not [:, t])",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "lstm_forward",
        "preactivation = W_hh @ h  # W_hγ h for the four gates γ: (4·hidden, batch)",
        "preactivation = W_ih @ h  # W_hγ h for the four gates γ: (4·hidden, batch)",
        "the state multiplied by the input's weights W_ih",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "lstm_forward",
        "f = sigmoid_forward(preactivation[hidden : 2 * hidden])",
        "f = sigmoid_forward(preactivation[hidden : 3 * hidden])",
        "the forget gate's slice of the stacked rows two gates long",
    ),
    Mutant(
        MODULE,
        "lstm_backward",
        "grad_h = grad_hidden_states[:, t] + grad_h_next  # two paths: the output, and step t + 1",
        "grad_h = grad_hidden_states[t] + grad_h_next  # two paths: the output, and step t + 1",
        "step t's output gradient indexed on the wrong axis (grad_hidden_states[t])",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "lstm_backward",
        "grad_h_next = affine_grad_input(delta, W_hh)  # g_{t−1} = Σ_γ W_hγᵀ δ_γ",
        "grad_h_next = affine_grad_input(delta, W_ih)  # g_{t−1} = Σ_γ W_hγᵀ δ_γ",
        "the state's gradient carried back through W_ih instead of W_hh",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "lstm_backward",
        "grad_W_ih, grad_b_ih = affine_grad_params(deltas_columns, x.reshape(features, -1))",
        "grad_W_ih, grad_b_ih = affine_grad_params(x.reshape(features, -1), deltas_columns)",
        "grad_W_ih as Σ_t x_t δ_tᵀ, the factors in the wrong order",
        silent_at_runtime=True,
    ),
]
