"""One-line shape mistakes in the GRU (``typedbackprop/nn/gru.py``) that Pyrefly must flag.

Every elementwise operand of a GRU step is ``"hidden batch"`` and ``W_hh`` is square, so many
GRU slips have the right shape by name: ``z`` and ``1 − z`` swapped in ``h' = (1 − z) ⊙ n +
z ⊙ h``, ``∂L/∂z`` from ``n − h`` instead of ``h − n``, the reset gate applied to ``input_part``
instead of ``hidden_part``, ``δ_n`` for ``δ_n ⊙ r`` as the state map's gradient, two gates' rows
swapped. No mutant here stands for them: the gradient check and the comparison with PyTorch
catch those.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/gru.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "gru_cell_backward",
        "grad_reset, grad_x_r, grad_h_r = gate_backward(delta_r, delta_r, cell.reset_gate, x, h)",
        "grad_reset, grad_x_r, grad_h_r = gate_backward(delta_r, delta_r, cell.reset_gate, h, x)",
        "the reset gate's backward given x and h swapped",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gru_cell_backward",
        "grad_x = grad_x_r + grad_x_z + grad_x_n  # x feeds all three gates",
        "grad_x = grad_x_r + grad_x_z + grad_h_n  # x feeds all three gates",
        "the candidate's state gradient summed into grad_x",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gru_forward",
        "hidden_parts = affine_forward(W_hh, stack.b_hh, h)  # W_hγ h + b_hγ, γ = r, z, n",
        "hidden_parts = affine_forward(W_ih, stack.b_hh, h)  # W_hγ h + b_hγ, γ = r, z, n",
        "the state's map with the input's weights W_ih",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gru_forward",
        "gates, seq, batch",
        "gates, batch, seq",
        "the input map's seq·batch columns unflattened as (batch, seq)",
        silent_at_runtime=False,  # it runs only when seq == batch, and then it is the same array
    ),
    Mutant(
        MODULE,
        "gru_forward",
        "hidden_part_n = hidden_parts[2 * hidden : 3 * hidden]",
        "hidden_part_n = hidden_parts[hidden : 3 * hidden]",
        "the candidate's slice of the stacked rows two gates long",
    ),
    Mutant(
        MODULE,
        "gru_backward",
        "grad_h = grad_hidden_states[:, t] + grad_state  # two paths: the output, and step t + 1",
        "grad_h = grad_hidden_states[t] + grad_state  # two paths: the output, and step t + 1",
        "step t's output gradient indexed on the wrong axis (grad_hidden_states[t])",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gru_backward",
        "grad_state = grad_h * z + affine_grad_input(grad_hidden_parts[:, t], W_hh)",
        "grad_state = grad_h * z + affine_grad_input(grad_hidden_parts[t], W_hh)",
        "step t's stacked state-map gradient indexed on the wrong axis",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gru_backward",
        "grad_state = grad_h * z + affine_grad_input(grad_hidden_parts[:, t], W_hh)",
        "grad_state = grad_h * z + affine_grad_input(grad_hidden_parts[:, t], W_ih)",
        "the state's gradient carried back through W_ih instead of W_hh",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gru_backward",
        "grad_W_ih, grad_b_ih = affine_grad_params(grad_input_columns, x.reshape(features, -1))",
        "grad_W_ih, grad_b_ih = affine_grad_params(x.reshape(features, -1), grad_input_columns)",
        "grad_W_ih as Σ_t x_t δ_tᵀ, the factors in the wrong order",
        silent_at_runtime=True,
    ),
]
