"""One-line shape mistakes in the affine layer (``typedbackprop/nn/affine.py``), flagged by name.

The question's three bugs are here: ``∂L/∂W`` as ``δ a_prev`` without the transpose (it runs
when ``inp == batch``), ``∂L/∂a_prev`` as ``W δ`` for ``Wᵀ δ`` (it runs when ``W`` is square,
``out == inp``) and ``z = W a_prev + b`` with ``b`` broadcast along the trailing axis, ``batch``
(it runs when ``out == batch``). At run time each of these is caught only when the sizes
differ; by name, ``"inp batch"`` is never ``"batch inp"``.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/affine.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "affine_forward",
        "z += b[:, np.newaxis]  # in place: the product is a fresh array, no second temporary",
        "z += b",
        "the bias added without b[:, np.newaxis], broadcast along batch instead of out",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_forward",
        "z = W @ a_prev",
        "z = W.T @ a_prev",
        "z from the transposed weights Wᵀ a_prev",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_params",
        "grad_W = grad_z @ a_prev.T",
        "grad_W = grad_z @ a_prev",
        "grad_W as δ a_prev, the transpose of a_prev missing",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_params",
        "grad_W = grad_z @ a_prev.T",
        "grad_W = a_prev @ grad_z.T",
        "grad_W as a_prev δᵀ, the factors in the wrong order (the transpose of grad_W)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_params",
        "grad_b = grad_z.sum(axis=1)",
        "grad_b = grad_z.sum(axis=0)",
        "grad_b summed over out (axis 0) instead of batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_input",
        "return W.T @ grad_z",
        "return W @ grad_z",
        "grad_a_prev as W δ, the transpose of W missing",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_grad_input",
        "return W.T @ grad_z",
        "return grad_z.T @ W",
        "grad_a_prev as δᵀ W, batch-first habit (the transpose of the gradient)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_backward",
        "grad_W, grad_b = affine_grad_params(grad_z, a_prev)",
        "grad_W, grad_b = affine_grad_params(a_prev, grad_z)",
        "the parameter gradients' arguments swapped, a_prev passed as δ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "affine_backward",
        "return grad_W, grad_b, affine_grad_input(grad_z, W)",
        "return grad_W, grad_b, affine_grad_input(grad_z, W.T)",
        "grad_a_prev from the transposed weights Wᵀ, W's transpose taken twice",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "dense_backward",
        "grad_W, grad_b = affine_grad_params(grad_z, a_prev)  # BP4: δ a_prevᵀ, BP3: δ 1",
        "grad_W, grad_b = affine_grad_params(grad_z, W)  # BP4: δ a_prevᵀ, BP3: δ 1",
        "grad_W from the cached weights W instead of the cached input a_prev",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "dense_backward",
        "grad_W, grad_b = affine_grad_params(grad_z, a_prev)  # BP4: δ a_prevᵀ, BP3: δ 1",
        "grad_W, grad_b = affine_grad_params(a_prev, grad_z)  # BP4: δ a_prevᵀ, BP3: δ 1",
        "grad_W as a_prev δᵀ, the arguments swapped (the transpose of grad_W)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "dense_backward",
        "return Dense(grad_W, grad_b), affine_grad_input(grad_z, W)  # Wᵀ δ: BP2's first half",
        "return Dense(grad_W, grad_b), affine_grad_input(grad_z, a_prev)  # Wᵀ δ: BP2's first half",
        "grad_a_prev from the cached input a_prev instead of the cached weights W",
        silent_at_runtime=True,
    ),
]
