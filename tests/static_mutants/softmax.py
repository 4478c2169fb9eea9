"""Shape mistakes in the softmax over classes (``typedbackprop/nn/softmax.py``): the wrong axis.

Softmax runs down each column, over ``classes``; its forward and backward each reduce over that
axis once or twice. A reduction over ``batch`` instead (``axis=1``, the batch-first habit of
``axis=-1``) gives one number per class, which broadcasts against ``"classes batch"`` only when
there are as many classes as examples: then it runs, normalizing across the batch. By name a
``" classes"`` vector never lines up with the trailing ``batch`` axis.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/softmax.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "softmax_forward",
        "largest = z.max(axis=0)",
        "largest = z.max(axis=1)",
        "softmax's stabilizing max taken over batch (axis 1) instead of over classes: the shift "
        "no longer fits each column, and exp overflows for large logits",
        # It runs when classes == batch, and then gives the same probabilities (a shift per
        # column cancels) unless a logit is large, where exp overflows with a warning.
        silent_at_runtime=False,
    ),
    Mutant(
        MODULE,
        "softmax_forward",
        "e /= e.sum(axis=0)",
        "e /= e.sum(axis=1)",
        "softmax normalized by a sum over batch (axis 1) instead of over classes",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "softmax_backward",
        'grad_z: Float[Array, "classes batch"] = grad_a - weighted.sum(axis=0)',
        'grad_z: Float[Array, "classes batch"] = grad_a - weighted.sum(axis=1)',
        "softmax backward's Σ a ⊙ ∂L/∂a taken over batch (axis 1) instead of over classes",
        silent_at_runtime=True,
    ),
]
