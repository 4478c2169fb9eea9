"""Shape mistakes in GELU (``typedbackprop/nn/gelu.py``): an operand in the other layout.

GELU and its backward are elementwise on ``"features batch"``, so the shape mistake they admit
is an operand transposed, a value in the batch-first layout (PyTorch's ``(batch, features)``)
mixed into the features-first math. With as many features as examples it runs, on the wrong
numbers. The error function (``erfc``, ``normal_cdf``) indexes by boolean masks, which Pyrefly
cannot follow: it is checked at run time only, so its callers bind ``Φ(z)`` and the capped ``z``
to annotated names.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/gelu.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "gelu_forward",
        "return z * cdf",
        "return z.T * cdf",
        "GELU's z Φ(z) with the batch-first transpose zᵀ as the first factor",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gelu_backward",
        "slope *= grad_a",
        "slope *= grad_a.T",
        "upstream gradient transposed (batch-first) against gelu'(z)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gelu_backward",
        "slope *= capped * (1.0 / math.sqrt(2.0 * math.pi))  # z φ(z)",
        "slope *= capped.T * (1.0 / math.sqrt(2.0 * math.pi))  # z φ(z)",
        "z φ(z) with the transposed zᵀ as the factor z",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gelu_tanh_forward",
        "a *= z",
        "a *= z.T",
        "tanh GELU's z σ(2u) with the batch-first transpose zᵀ as the factor z",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gelu_tanh_backward",
        "grad_z *= grad_a",
        "grad_z *= grad_a.T",
        "upstream gradient transposed (batch-first) against gelu_tanh'(z)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "gelu_tanh_backward",
        "s = np.divide(a, z, out=np.full_like(a, 0.5), where=z != 0)  # ½ (1 + t), ½ at z = 0",
        "s = np.divide(a, z.T, out=np.full_like(a, 0.5), where=z != 0)  # ½ (1 + t), ½ at z = 0",
        "1 + t read off the forward's output as a/zᵀ, the input transposed",
        silent_at_runtime=True,
    ),
]
