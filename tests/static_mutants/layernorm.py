"""Shape mistakes in layer normalization (``typedbackprop/nn/layernorm.py``): the wrong axis.

Layer norm reduces over ``features``, the first axis, and broadcasts the per-feature ``gamma``
down every position; the parameter gradients sum over every position. Each mistake here reduces
over, or broadcasts along, the trailing ``batch`` axis instead, which NumPy accepts when there
are as many features as examples (a dense network's ``"features batch"``, ``*positions``
empty). By name ``" features"`` never lines up with ``batch``.

Pyrefly does not follow everything here: a broadcast between two arrays that both carry the
variadic ``*positions`` gives a shapeless array rather than an error, so a mean over ``batch``
inside ``∂L/∂x`` (``g.mean(axis=-1)``) is not flagged by name; the runtime check and the
gradient check remain its defence.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/layernorm.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "layernorm_statistics",
        "mean = x.mean(axis=0)",
        "mean = x.mean(axis=-1)",
        "each column's mean taken over batch (axis -1, the batch-first habit) instead of "
        "over features",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "layernorm_statistics",
        "variance = np.mean(centred * centred, axis=0)",
        "variance = np.mean(centred * centred, axis=-1)",
        "each column's variance taken over batch (axis -1) instead of over features",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "layernorm_normalize",
        "return x_hat * _down_features(gamma, x.ndim) + _down_features(beta, x.ndim)",
        "return x_hat * gamma + _down_features(beta, x.ndim)",
        "gamma multiplied as it is, broadcast along batch (the trailing axis) instead of "
        "down each feature",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "layernorm_grads",
        'g: Float[Array, " features *positions batch"] = grad_y * _down_features(gamma, x.ndim)',
        'g: Float[Array, " features *positions batch"] = grad_y * gamma',
        "γ ⊙ ∂L/∂y with gamma broadcast along batch (the trailing axis) instead of features",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "layernorm_grads",
        "grad_beta = np.sum(grad_y, axis=position_axes)",
        "grad_beta = np.sum(grad_y, axis=0)",
        "grad_beta summed over features (axis 0) instead of over every position",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "layernorm_grads",
        "grad_gamma = np.sum(grad_y * x_hat, axis=position_axes)",
        "grad_gamma = np.sum(grad_y * x_hat, axis=0)",
        "grad_gamma summed over features (axis 0) instead of over every position",
        silent_at_runtime=True,
    ),
]
