"""Shape mistakes in the batch-first affine twin (``typedbackprop/nn/batch_first.py``).

The mirror images of the affine layer's: ``∂L/∂W = a_prevᵀ δ`` written ``a_prev δ`` (runs when
``inp == batch``) or ``δᵀ a_prev`` (``grad_W``'s transpose, which runs when ``W`` is square),
``∂L/∂a_prev = δ Wᵀ`` written ``δ W`` (runs when ``W`` is square), the bias gradient summed over
``out`` and the features-first habit ``b[:, np.newaxis]`` carried over (each runs when
``out == batch``).
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/batch_first.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "affine_forward_batch_first",
        "z += b  # out is the trailing axis: b broadcasts along batch",
        "z += b[:, None]",
        "the bias as a column b[:, None], the features-first habit: broadcast along out",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_forward_batch_first",
        "z = a_prev @ W",
        "z = a_prev @ W.T",
        "z from the transposed weights a_prev Wᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_params_batch_first",
        "grad_W = a_prev.T @ grad_z",
        "grad_W = a_prev @ grad_z",
        "grad_W as a_prev δ, the transpose of a_prev missing",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_params_batch_first",
        "grad_W = a_prev.T @ grad_z",
        "grad_W = grad_z.T @ a_prev",
        "grad_W as δᵀ a_prev, the factors in the wrong order (the transpose of grad_W)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_params_batch_first",
        "grad_b = grad_z.sum(axis=0)",
        "grad_b = grad_z.sum(axis=1)",
        "grad_b summed over out (axis 1) instead of batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_input_batch_first",
        "return grad_z @ W.T",
        "return grad_z @ W",
        "grad_a_prev as δ W, the transpose of W missing",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_backward_batch_first",
        "grad_W, grad_b = affine_grad_params_batch_first(grad_z, a_prev)",
        "grad_W, grad_b = affine_grad_params_batch_first(a_prev, grad_z)",
        "the parameter gradients' arguments swapped, a_prev passed as δ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_backward_batch_first",
        "return grad_W, grad_b, affine_grad_input_batch_first(grad_z, W)",
        "return grad_W, grad_b, affine_grad_input_batch_first(grad_z, W.T)",
        "grad_a_prev from the transposed weights Wᵀ",
        silent_at_runtime=True,
    ),
]
