"""Shape mistakes in the losses: targets in the other layout, reductions over the wrong axis.

The targets of a regression or a multi-label problem come, as often as not, batch-first
(``(batch, out)``, one row per example, as a CSV file or PyTorch holds them), and the softmax of
the cross-entropy sums over ``classes``, axis 0, where NumPy's habit and PyTorch's ``dim=-1`` sum
over the last axis. With as many outputs (classes) as examples each runs, on the wrong numbers.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/losses.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "squared_error",
        "residual = a - y",
        "residual = a - y.T",
        "residual against batch-first targets yᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "binary_cross_entropy",
        "losses = np.maximum(z, 0.0) - z * y + np.log1p(e)",
        "losses = np.maximum(z, 0.0) - z * y.T + np.log1p(e)",
        "loss term z·y with batch-first targets yᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "binary_cross_entropy",
        "grad_z -= y",
        "grad_z -= y.T",
        "gradient σ(z) − y with batch-first targets yᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "cross_entropy",
        "total = e.sum(axis=0)",
        "total = e.sum(axis=1)",
        "softmax normalized over the wrong axis (a sum over batch, not classes)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "cross_entropy",
        "largest = z.max(axis=0)",
        "largest = z.max(axis=1)",
        "log-sum-exp's shift taken over the wrong axis (each class's largest over the batch), "
        "which no longer keeps exp from overflowing",
        silent_at_runtime=True,
    ),
]
