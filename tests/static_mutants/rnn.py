"""One-line shape mistakes in the tanh RNN (``typedbackprop/nn/rnn.py``) that Pyrefly must flag.

``W_hh`` is square, ``"hidden hidden"``: a mistake between two axes of the same name
(``W_hh h`` for ``W_hhᵀ h``, ``∂L/∂h = W_hh δ`` for ``W_hhᵀ δ``, ``∂L/∂W_hh = h δᵀ`` for
``δ hᵀ``) has the right shape by name too, so no mutant here stands for it: the gradient check
and the comparison with PyTorch catch those.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/rnn.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "rnn_cell_forward",
        "z = affine_forward(W_ih, cell.b_ih, x)",
        "z = affine_forward(W_ih, cell.b_ih, h)",
        "the previous state fed to the input's weights W_ih (h for x)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "rnn_cell_backward",
        "grad_W_ih, grad_b_ih = affine_grad_params(delta, x)",
        "grad_W_ih, grad_b_ih = affine_grad_params(x, delta)",
        "grad_W_ih as x δᵀ, the factors in the wrong order",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "rnn_cell_backward",
        "grad_x = affine_grad_input(delta, W_ih)",
        "grad_x = affine_grad_input(delta, W_hh)",
        "grad_x through the state's weights W_hh instead of W_ih",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "rnn_forward",
        "z += input_parts[:, t]  # + W_ih x_t + b_ih + b_hh",
        "z += input_parts[t]  # + W_ih x_t + b_ih + b_hh",
        "step t's input part indexed on the wrong axis (input_parts[t], not [:, t])",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "rnn_forward",
        ").reshape(hidden, seq, batch)",
        ").reshape(hidden, batch, seq)",
        "the input map's seq·batch columns unflattened as (batch, seq)",
        silent_at_runtime=False,  # it runs only when seq == batch, and then it is the same array
    ),
    Mutant(
        MODULE,
        "rnn_backward",
        "grad_h = grad_hidden_states[:, t] + grad_state  # two paths: the output, and step t + 1",
        "grad_h = grad_hidden_states[t] + grad_state  # two paths: the output, and step t + 1",
        "step t's output gradient indexed on the wrong axis (grad_hidden_states[t])",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "rnn_backward",
        "grad_state = affine_grad_input(delta, W_hh)  # g_{t−1} = W_hhᵀ δ_t",
        "grad_state = affine_grad_input(delta, W_ih)  # g_{t−1} = W_hhᵀ δ_t",
        "the state's gradient carried back through W_ih instead of W_hh",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "rnn_backward",
        "grad_W_ih, grad_b_ih = affine_grad_params(deltas_columns, x.reshape(features, -1))",
        "grad_W_ih, grad_b_ih = affine_grad_params(x.reshape(features, -1), deltas_columns)",
        "grad_W_ih as Σ_t x_t δ_tᵀ, the factors in the wrong order",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "rnn_backward",
        "grad_x = affine_grad_input(deltas_columns, W_ih).reshape(features, seq, batch)",
        "grad_x = affine_grad_input(deltas_columns, W_ih).reshape(features, batch, seq)",
        "grad_x's seq·batch columns unflattened as (batch, seq)",
        silent_at_runtime=False,  # it runs only when seq == batch, and then it is the same array
    ),
]
