"""One-line shape mistakes in batch norm (``typedbackprop/nn/batchnorm.py``), flagged by name.

The math is written over ``"features batch"``, each feature's statistics taken along ``batch``;
the classic mistakes take them along the wrong axis (``axis=0``, the habit of batch-first code)
or broadcast a per-feature vector along ``batch`` by leaving out ``[:, np.newaxis]``. Each of
those runs without an error when ``features == batch``, and is wrong; by name,
``ndarray[[features]]`` never lines up with ``batch``.
"""

from static_mutants import Mutant

MODULE = "typedbackprop/nn/batchnorm.py"

MUTANTS: list[Mutant] = [
    Mutant(
        MODULE,
        "batchnorm_statistics",
        "mean = x.mean(axis=1)",
        "mean = x.mean(axis=0)",
        "the mean taken over features (axis 0) instead of batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_statistics",
        "centered = x - mean[:, np.newaxis]",
        "centered = x - mean",
        "the mean subtracted without [:, np.newaxis], broadcast along batch instead of features",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_normalize",
        "x_hat = x - mean[:, np.newaxis]",
        "x_hat = x - mean",
        "x̂ centred without [:, np.newaxis], the mean broadcast along batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_normalize",
        "x_hat *= rstd[:, np.newaxis]",
        "x_hat *= rstd",
        "x̂ scaled by 1/√(σ² + ε) without [:, np.newaxis], broadcast along batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_scale_shift",
        "y = x_hat * gamma[:, np.newaxis]",
        "y = x_hat * gamma",
        "γ multiplied without [:, np.newaxis], broadcast along batch instead of features",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_scale_shift",
        "y += beta[:, np.newaxis]",
        "y += beta",
        "β added without [:, np.newaxis], broadcast along batch (the dense layer's bias bug)",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_grad_params",
        'return np.einsum("fb,fb->f", grad_y, x_hat), grad_y.sum(axis=1)',
        'return np.einsum("fb,fb->f", grad_y, x_hat), grad_y.sum(axis=0)',
        "grad_beta summed over features (axis 0) instead of batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_grad_input",
        'grad_x: Float[Array, "features batch"] = x_hat * (grad_gamma / batch)[:, np.newaxis]',
        'grad_x: Float[Array, "features batch"] = x_hat * (grad_gamma / batch)',
        "the variance term's x̂ ∂L/∂γ / N without [:, np.newaxis], ∂L/∂γ broadcast along batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_grad_input",
        "grad_x += (grad_beta / batch)[:, np.newaxis]",
        "grad_x += grad_beta / batch",
        "the mean term ∂L/∂β / N added without [:, np.newaxis], broadcast along batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_grad_input",
        "grad_x *= (gamma * rstd)[:, np.newaxis]",
        "grad_x *= gamma * rstd",
        "the three terms scaled by γ/√(σ² + ε) without [:, np.newaxis], along batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_grad_input_fixed",
        "return grad_y * (gamma * rstd)[:, np.newaxis]",
        "return grad_y * (gamma * rstd)",
        "∂L/∂y scaled by γ/√(σ² + ε) without [:, np.newaxis], broadcast along batch",
        silent_at_runtime=True,
    ),
    Mutant(
        MODULE,
        "batchnorm_running_statistics",
        "(1.0 - momentum) * running_mean + momentum * mean,",
        "(1.0 - momentum) * running_mean + momentum * mean[:, np.newaxis],",
        "the batch's mean folded in as a column (mean[:, np.newaxis]): a features × features "
        "running mean",
    ),
]
