"""Shape mistakes in the layers at the top of a sequence model (``typedbackprop/nn/sequence.py``).

The token cross-entropy's softmax sums over ``classes``, axis 0, where NumPy's habit and
PyTorch's ``dim=-1`` take the last axis; the token-wise dense layer is the affine layer with every
token a column, and has its mistakes (a transposed ``W``, ``grad_W``'s factors swapped), each
running silently when ``W`` is square. ``keep_last_forward`` cutting the wrong axis runs only
when it keeps every token, and then its numbers are right: it is flagged, but not silent.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/sequence.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "token_cross_entropy",
        "total = shifted.sum(axis=0)",
        "total = shifted.sum(axis=-1)",
        "the softmax's normalising sum taken over the last axis (batch), not classes",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "token_dense_forward",
        "z = affine_forward(W, b, x.reshape(features, seq * batch))",
        "z = affine_forward(W.T, b, x.reshape(features, seq * batch))",
        "z from the transposed weights Wᵀ x",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "token_dense_backward",
        "grad_W, grad_b = affine_grad_params(delta, x.reshape(features, seq * batch))",
        "grad_W, grad_b = affine_grad_params(x.reshape(features, seq * batch), delta)",
        "grad_W as x δᵀ, the factors in the wrong order (the transpose of grad_W)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "token_dense_backward",
        "grad_x = affine_grad_input(delta, W)",
        "grad_x = affine_grad_input(delta, W.T)",
        "grad_x from the transposed weights Wᵀ, W's transpose taken twice",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "keep_last_forward",
        "return x[:, seq - layer.count :, :], KeepLastCache(layer, x)",
        "return x[:, :, seq - layer.count :], KeepLastCache(layer, x)",
        "the last tokens cut from the batch axis instead of seq",
    ),
]
