"""Shape mistakes in the elementwise activations: an operand in the other layout.

An elementwise function and its backward have one shape throughout, ``"features batch"``, so the
one shape mistake they admit is an operand transposed: a value in the batch-first layout
(PyTorch's ``(batch, features)``) mixed into the features-first math. With as many features as
examples the shapes agree and it runs, on the wrong numbers.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/activations.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "sigmoid_forward",
        "minus_z = np.negative(z)",
        "minus_z = np.negative(z.T)",
        "sigmoid of the batch-first transpose zᵀ, returned as the features-first a",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "sigmoid_forward",
        "numerator /= e",
        "numerator /= e.T",
        "stable sigmoid's denominator 1 + exp(-|z|) transposed",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "sigmoid_backward",
        "return grad_a * a * (1.0 - a)",
        "return grad_a * a.T * (1.0 - a.T)",
        "σ'(z) = a(1 − a) from the transposed output aᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "tanh_forward",
        "return np.tanh(z)",
        "return np.tanh(z.T)",
        "tanh of the batch-first transpose zᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "tanh_backward",
        "return grad_a * (1.0 - a * a)",
        "return grad_a.T * (1.0 - a * a)",
        "upstream gradient transposed (batch-first) against tanh'(z) = 1 − a²",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "relu_forward",
        "return np.maximum(z, 0.0)",
        "return np.maximum(z.T, 0.0)",
        "ReLU of the batch-first transpose zᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "relu_backward",
        "grad_z = grad_a * (z > 0)",
        "grad_z = grad_a * (z.T > 0)",
        "ReLU's mask [z > 0] from the transposed input zᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "leaky_relu_backward",
        "return grad_a * derivative",
        "return grad_a.T * derivative",
        "upstream gradient transposed (batch-first) against leaky ReLU's derivative",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "identity_forward",
        "return z",
        "return z.T",
        "the identity returning the batch-first transpose zᵀ",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "identity_backward",
        "return grad_a",
        "return grad_a.T",
        "the identity's gradient returned transposed",
        silent_at_runtime=True,
    ),
]
