"""Batch normalization over ``"channels *spatial batch"``: a dense layer's outputs, or images.

Training normalizes each channel with the mean and variance of the batch, then scales and
shifts it: ``y = γ x̂ + β`` with ``x̂ = (x − μ) / √(σ² + ε)``. Because ``μ`` and ``σ²`` are
functions of every example of the batch, ``∂L/∂x`` has three terms (the famous backward).
Evaluation uses running statistics instead, fixed numbers, and its backward is one term.

The running statistics are *state*, not parameters: training does not step them along a
gradient; each training batch moves them towards its own statistics (``momentum``). They live
in their own record, :class:`BatchNormState`, apart from the parameter record
:class:`BatchNorm` (``γ``, ``β``), and pass through the network beside the layers (see
:func:`~typedbackprop.nn.network.network_forward`'s ``states``).

One family for both: the statistics are taken over every axis but ``channels``. After a dense
layer the input is ``(channels, batch)`` (no ``*spatial`` axes, each feature a channel); on
images, ``(channels, height, width, batch)``, each channel is normalized over every pixel of
every image. In C order that is the math below, written over ``"features batch"``, on the view
``(channels, height·width·batch)``.
"""

from dataclasses import dataclass

import numpy as np
from jaxtyping import Float

from typedbackprop.checking import (
    Array,
    checked,
    checked_record,
    runtime_shapes_only,
    static_jaxtyping,
)
from typedbackprop.nn.layer import Layer
from typedbackprop.nn.specs import Spec

__all__ = [
    "BatchNorm",
    "BatchNormState",
    "BatchNormCache",
    "batchnorm_statistics",
    "batchnorm_normalize",
    "batchnorm_scale_shift",
    "batchnorm_grad_params",
    "batchnorm_grad_input",
    "batchnorm_grad_input_fixed",
    "batchnorm_running_statistics",
    "batchnorm_forward",
    "batchnorm_forward_eval",
    "batchnorm_backward",
    "batchnorm_initial_state",
    "batchnorm_update_state",
]


# --- the math, over "features batch" -----------------------------------------------------------


@checked
@static_jaxtyping("features batch")
def batchnorm_statistics(
    x: Float[Array, "features batch"],
) -> tuple[Float[Array, " features"], Float[Array, " features"]]:
    """The mean and the (biased) variance of each feature over the batch.

    Parameters
    ----------
    x
        The layer's input, one column per example.

    Returns
    -------
    mean, var
        ``μ_f = (1/batch) Σ_b x_{fb}`` and ``σ²_f = (1/batch) Σ_b (x_{fb} − μ_f)²``.

    Notes
    -----
    The biased variance (divided by ``batch``, not ``batch − 1``) is the one the batch is
    normalized with, as in PyTorch; the running variance uses the unbiased one
    (:func:`batchnorm_running_statistics`).
    """
    mean = x.mean(axis=1)
    centered = x - mean[:, np.newaxis]
    return mean, np.einsum("fb,fb->f", centered, centered) / x.shape[1]


@checked
@static_jaxtyping("features batch")
def batchnorm_normalize(
    x: Float[Array, "features batch"],
    mean: Float[Array, " features"],
    var: Float[Array, " features"],
    eps: float,
) -> tuple[Float[Array, "features batch"], Float[Array, " features"]]:
    """``x̂ = (x − μ) / √(σ² + ε)``, and ``1 / √(σ² + ε)`` for the backward pass.

    Parameters
    ----------
    x
        The layer's input.
    mean, var
        The statistics to normalize with (the batch's in training, the running ones in
        evaluation).
    eps
        Added to the variance, so that a constant feature does not divide by zero.

    Returns
    -------
    x_hat, rstd
        The normalized input, and ``1 / √(σ²_f + ε)`` per feature: the reciprocal standard
        deviation, ``rstd`` as llm.c and layer norm name it.

    Notes
    -----
    ``x̂_{fb} = (x_{fb} − μ_f) / √(σ²_f + ε)``; ``μ`` and ``1/√(σ² + ε)`` are broadcast along
    ``batch`` (``[:, np.newaxis]``, as the dense layer's bias).
    """
    rstd = 1.0 / np.sqrt(var + eps)
    x_hat = x - mean[:, np.newaxis]
    x_hat *= rstd[:, np.newaxis]
    return x_hat, rstd


@checked
@static_jaxtyping("features batch")
def batchnorm_scale_shift(
    x_hat: Float[Array, "features batch"],
    gamma: Float[Array, " features"],
    beta: Float[Array, " features"],
) -> Float[Array, "features batch"]:
    """``y = γ x̂ + β``: each normalized feature scaled and shifted by its own parameters.

    Parameters
    ----------
    x_hat
        The normalized input.
    gamma, beta
        The scale and the shift of each feature.

    Returns
    -------
    y
        ``y_{fb} = γ_f x̂_{fb} + β_f``; ``γ`` and ``β`` broadcast along ``batch``.
    """
    y = x_hat * gamma[:, np.newaxis]
    y += beta[:, np.newaxis]
    return y


@checked
@static_jaxtyping("features batch")
def batchnorm_grad_params(
    grad_y: Float[Array, "features batch"], x_hat: Float[Array, "features batch"]
) -> tuple[Float[Array, " features"], Float[Array, " features"]]:
    """Gradients of the loss with respect to ``γ`` and ``β``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    x_hat
        The normalized input the forward pass computed.

    Returns
    -------
    grad_gamma, grad_beta
        ``∂L/∂γ`` and ``∂L/∂β``, one per feature.

    Notes
    -----
    ``∂L/∂gamma_{f} = Σ_b ∂L/∂y_{fb} x_hat_{fb}`` and ``∂L/∂beta_{f} = Σ_b ∂L/∂y_{fb}``.
    ``γ`` and ``β`` are broadcast along ``batch`` in ``y = γ x̂ + β``, so their gradients sum
    over ``batch``, like the dense layer's bias.
    """
    return np.einsum("fb,fb->f", grad_y, x_hat), grad_y.sum(axis=1)


BATCHNORM_GRAD_GAMMA = Spec("grad_gamma", "fb,fb->f", ("grad_y", "x_hat"))
"""``∂L/∂gamma_{f} = Σ_b ∂L/∂y_{fb} x_hat_{fb}``: what :func:`batchnorm_grad_params` computes."""

BATCHNORM_GRAD_BETA = Spec("grad_beta", "fb->f", ("grad_y",))
"""``∂L/∂beta_{f} = Σ_b ∂L/∂y_{fb}``: ``grad_y.sum(axis=1)``."""


@checked
@static_jaxtyping("features batch")
def batchnorm_grad_input(
    grad_y: Float[Array, "features batch"],
    x_hat: Float[Array, "features batch"],
    gamma: Float[Array, " features"],
    rstd: Float[Array, " features"],
) -> Float[Array, "features batch"]:
    """``∂L/∂x`` in training, where the statistics are functions of the batch: three terms.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    x_hat
        The normalized input.
    gamma
        The scale.
    rstd
        ``1 / √(σ² + ε)`` of the batch.

    Returns
    -------
    grad_x
        ``∂L/∂x``.

    Notes
    -----
    With ``N = batch`` and ``rstd_{f} = 1/√(σ²_f + ε)``, three terms:

    ``∂L/∂x_{fb} = ∂L/∂y_{fb} gamma_{f} rstd_{f}
    − Σ_b′ ∂L/∂y_{fb′} gamma_{f} rstd_{f} (1/N)
    − Σ_b′ ∂L/∂y_{fb′} x_hat_{fb′} x_hat_{fb} gamma_{f} rstd_{f} (1/N)``,

    or, with ``g = ∂L/∂x̂ = γ ⊙ ∂L/∂y`` (per feature), the same three terms as

    ``∂L/∂x_{fb} = (1/√(σ²_f + ε))
    (g_{fb} − (1/N) Σ_b′ g_{fb′} − x̂_{fb} (1/N) Σ_b′ g_{fb′} x̂_{fb′})``.

    The first term is the path through ``x_{fb}`` itself; the second the path through ``μ_f``,
    which every example of the batch moves; the third the path through ``σ²_f``. The two sums
    are ``∂L/∂β`` and ``∂L/∂γ`` (times ``γ``). An upstream gradient of all ones is the
    gradient of ``L = Σ y = batch Σ_f β_f``, which does not depend on ``x`` (``x̂`` sums to
    zero along ``batch``): its ``∂L/∂x`` is exactly zero, and a test with it cannot tell the
    three terms from a backward that drops the variance term, or returns zeros.
    """
    batch = grad_y.shape[1]
    grad_gamma, grad_beta = batchnorm_grad_params(grad_y, x_hat)
    # γ rstd (∂L/∂y − (∂L/∂β + x̂ ∂L/∂γ) / N), the three terms, built in one array: the two
    # sums' terms first, then ∂L/∂y minus them in place (no temporary as large as x̂)
    grad_x: Float[Array, "features batch"] = x_hat * (grad_gamma / batch)[:, np.newaxis]
    grad_x += (grad_beta / batch)[:, np.newaxis]
    np.subtract(grad_y, grad_x, out=grad_x)
    grad_x *= (gamma * rstd)[:, np.newaxis]
    return grad_x


BATCHNORM_GRAD_X = Spec(
    "grad_x",
    "fb,f,f - fB,f,f, - fB,fB,fb,f,f,->fb",
    (
        *("grad_y", "gamma", "rstd"),
        *("grad_y", "gamma", "rstd", "1/N"),
        *("grad_y", "x_hat", "x_hat", "gamma", "rstd", "1/N"),
    ),
)
"""The three terms of :func:`batchnorm_grad_input`: through ``x_{fb}``, ``μ_f`` and ``σ²_f``."""


@checked
@static_jaxtyping("features batch")
def batchnorm_grad_input_fixed(
    grad_y: Float[Array, "features batch"],
    gamma: Float[Array, " features"],
    rstd: Float[Array, " features"],
) -> Float[Array, "features batch"]:
    """``∂L/∂x`` in evaluation, where the statistics are constants: one term.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    gamma
        The scale.
    rstd
        ``1 / √(σ² + ε)`` of the running variance.

    Returns
    -------
    grad_x
        ``∂L/∂x``.

    Notes
    -----
    ``∂L/∂x_{fb} = ∂L/∂y_{fb} gamma_{f} rstd_{f}``, with ``rstd_{f} = 1 / √(σ²_f + ε)``:
    upstream gradient times local gradient, ``∂y_{fb}/∂x_{fb} = γ_f / √(σ²_f + ε)``.
    """
    return grad_y * (gamma * rstd)[:, np.newaxis]


BATCHNORM_GRAD_X_FIXED = Spec("grad_x", "fb,f,f->fb", ("grad_y", "gamma", "rstd"))
"""``∂L/∂x_{fb} = ∂L/∂y_{fb} gamma_{f} rstd_{f}``: :func:`batchnorm_grad_input_fixed`."""


@checked
@static_jaxtyping("features")
def batchnorm_running_statistics(
    running_mean: Float[Array, " features"],
    running_var: Float[Array, " features"],
    mean: Float[Array, " features"],
    var: Float[Array, " features"],
    count: int,
    momentum: float,
) -> tuple[Float[Array, " features"], Float[Array, " features"]]:
    """The running statistics after one training batch, as PyTorch updates them.

    Parameters
    ----------
    running_mean, running_var
        The running statistics before the batch.
    mean, var
        The batch's statistics (the variance biased, as the batch was normalized with it).
    count
        How many values each statistic was computed from (``batch``; for images,
        ``height · width · batch``).
    momentum
        How far to move towards the batch: ``0`` keeps the running statistics, ``1`` replaces
        them.

    Returns
    -------
    running_mean, running_var
        ``(1 − m) μ_run + m μ`` and ``(1 − m) σ²_run + m σ² N / (N − 1)``: the variance is
        made unbiased first, as PyTorch does.
    """
    unbiased = var * (count / (count - 1))
    return (
        (1.0 - momentum) * running_mean + momentum * mean,
        (1.0 - momentum) * running_var + momentum * unbiased,
    )


def _check_settings(eps: float, momentum: float) -> None:
    if not eps > 0 or not 0 <= momentum <= 1:
        raise ValueError(f"eps must be positive and momentum in [0, 1]; got {eps=}, {momentum=}")


def _check_count(count: int) -> None:
    if count < 2:
        raise ValueError(
            f"batch norm in training needs at least 2 values per feature, got {count}: the "
            "variance of one value is 0 and its unbiased estimate undefined"
        )


# --- the batchnorm family: "channels *spatial batch" ---------------------------------------------


@checked_record()
@dataclass(frozen=True, slots=True)
class BatchNorm(Layer):
    """A batch-norm layer's parameters (or their gradients) and settings, dense or spatial.

    Parameters
    ----------
    gamma
        The scale of each channel after normalization (PyTorch's ``weight``); a dense layer's
        outputs are its channels.
    beta
        The shift of each channel (PyTorch's ``bias``).
    eps
        Added to the variance before the square root.
    momentum
        How far each training batch moves the running statistics towards its own.

    Raises
    ------
    ValueError
        For ``eps ≤ 0`` or a momentum outside ``[0, 1]``.
    """

    gamma: Float[Array, " channels"]
    beta: Float[Array, " channels"]
    eps: float = 1e-5
    momentum: float = 0.1

    def __post_init__(self) -> None:
        _check_settings(self.eps, self.momentum)


@dataclass(frozen=True, slots=True)
class BatchNormState:
    """The running statistics of a :class:`BatchNorm` layer: state, not parameters."""

    mean: Float[Array, " channels"]
    """The running mean of each channel."""
    var: Float[Array, " channels"]
    """The running (unbiased) variance of each channel."""


@dataclass(frozen=True, slots=True)
class BatchNormCache:
    """What :func:`batchnorm_forward` and :func:`batchnorm_forward_eval` save for backward."""

    layer: BatchNorm
    """The parameters and settings (backward needs ``γ``)."""
    x_hat: Float[Array, "channels *spatial batch"]
    """The normalized input."""
    mean: Float[Array, " channels"]
    """The mean it was normalized with (the batch's, or the running one)."""
    var: Float[Array, " channels"]
    """The variance it was normalized with (the batch's, biased, or the running one)."""
    rstd: Float[Array, " channels"]
    """``1 / √(var + eps)``."""
    batch_statistics: bool
    """Whether ``mean`` and ``var`` are the batch's (training): backward then has three terms."""


_MERGED = (
    "the view (channels, spatial·batch) merges the variadic *spatial and batch into one axis, "
    "which Pyrefly sizes as a plain int, so no name is left to check there; the math it calls "
    "is declared over features batch"
)


def _columns(values: Array) -> Array:
    """``(channels, *spatial, batch)`` as ``(channels, spatial·batch)``: every value of a
    channel in its row, the ``"features batch"`` of the math above (a view when ``values`` is
    C-contiguous, a copy otherwise; the array itself without ``*spatial``)."""
    return values if values.ndim == 2 else values.reshape(values.shape[0], -1)


@checked
@runtime_shapes_only(_MERGED)
def batchnorm_forward(
    layer: BatchNorm, x: Float[Array, "channels *spatial batch"]
) -> tuple[Float[Array, "channels *spatial batch"], BatchNormCache]:
    """Batch norm in training: normalize with the batch's statistics, then scale and shift.

    Parameters
    ----------
    layer
        ``γ``, ``β`` and the settings.
    x
        The layer's input: ``(channels, batch)`` after a dense layer (no ``*spatial`` axes),
        ``(channels, height, width, batch)`` images after a convolution.

    Returns
    -------
    y, cache
        ``γ x̂ + β``, and the :class:`BatchNormCache` (its ``mean`` and ``var`` are the batch's,
        which :func:`batchnorm_update_state` folds into the running statistics).

    Raises
    ------
    ValueError
        For a single value per channel (one example, and one pixel if images).

    Notes
    -----
    ``y_{c…b} = γ_c (x_{c…b} − μ_c) / √(σ²_c + ε) + β_c`` with ``μ_c`` and ``σ²_c`` the mean and
    biased variance of channel ``c`` over every other axis: ``…b``, each pixel of each image
    (or each example) one value. That is the math above on the C-order view
    ``(channels, spatial·batch)``.
    """
    columns = _columns(x)
    _check_count(columns.shape[1])
    mean, var = batchnorm_statistics(columns)
    x_hat, rstd = batchnorm_normalize(columns, mean, var, layer.eps)
    y = batchnorm_scale_shift(x_hat, layer.gamma, layer.beta)
    cache = BatchNormCache(layer, x_hat.reshape(x.shape), mean, var, rstd, True)
    return y.reshape(x.shape), cache


@checked
@runtime_shapes_only(_MERGED)
def batchnorm_forward_eval(
    layer: BatchNorm, x: Float[Array, "channels *spatial batch"], state: BatchNormState
) -> tuple[Float[Array, "channels *spatial batch"], BatchNormCache]:
    """Batch norm in evaluation: normalize with the running statistics.

    Parameters
    ----------
    layer
        ``γ``, ``β`` and the settings.
    x
        The layer's input; any number of examples, each normalized on its own.
    state
        The running statistics.

    Returns
    -------
    y, cache
        ``γ x̂ + β``, and the :class:`BatchNormCache`.

    Notes
    -----
    ``y_{c…b} = γ_c (x_{c…b} − μ^run_c) / √(σ²^run_c + ε) + β_c``: an affine map of each
    value alone.
    """
    columns = _columns(x)
    x_hat, rstd = batchnorm_normalize(columns, state.mean, state.var, layer.eps)
    y = batchnorm_scale_shift(x_hat, layer.gamma, layer.beta)
    cache = BatchNormCache(layer, x_hat.reshape(x.shape), state.mean, state.var, rstd, False)
    return y.reshape(x.shape), cache


@checked
@runtime_shapes_only(_MERGED)
def batchnorm_backward(
    grad_y: Float[Array, "channels *spatial batch"], cache: BatchNormCache
) -> tuple[BatchNorm, Float[Array, "channels *spatial batch"]]:
    """Gradients of batch norm: ``(BatchNorm(grad_gamma, grad_beta), grad_x)``.

    Parameters
    ----------
    grad_y
        ``∂L/∂y``, the upstream gradient.
    cache
        What the forward pass saved.

    Returns
    -------
    grads, grad_x
        ``∂L/∂γ`` and ``∂L/∂β`` in a :class:`BatchNorm` (with the layer's settings), and
        ``∂L/∂x``: three terms after training's forward pass
        (:func:`batchnorm_grad_input`), one after evaluation's
        (:func:`batchnorm_grad_input_fixed`), on the view ``(channels, spatial·batch)``: the
        sums over ``batch`` there are sums over every pixel of every image here.

    Notes
    -----
    On images, after training's forward pass, with ``N = height · width · batch`` and ``r′``,
    ``w′``, ``b′`` running over ``height``, ``width`` and ``batch`` inside the sums, the three
    terms of :func:`batchnorm_grad_input` are

    ``∂L/∂x_{crwb} = ∂L/∂y_{crwb} gamma_{c} rstd_{c}
    − Σ_{r′,w′,b′} ∂L/∂y_{cr′w′b′} gamma_{c} rstd_{c} (1/N)
    − Σ_{r′,w′,b′} ∂L/∂y_{cr′w′b′} x_hat_{cr′w′b′} x_hat_{crwb} gamma_{c} rstd_{c} (1/N)``.
    """
    layer = cache.layer
    grad_columns = _columns(grad_y)
    x_hat = _columns(cache.x_hat)
    grad_gamma, grad_beta = batchnorm_grad_params(grad_columns, x_hat)
    grads = BatchNorm(grad_gamma, grad_beta, layer.eps, layer.momentum)
    if cache.batch_statistics:
        grad_x = batchnorm_grad_input(grad_columns, x_hat, layer.gamma, cache.rstd)
    else:
        grad_x = batchnorm_grad_input_fixed(grad_columns, layer.gamma, cache.rstd)
    return grads, grad_x.reshape(grad_y.shape)


BATCHNORM_IMAGES_GRAD_X = Spec(
    "grad_x",
    "crwb,c,c - cRWB,c,c, - cRWB,cRWB,crwb,c,c,->crwb",
    (
        *("grad_y", "gamma", "rstd"),
        *("grad_y", "gamma", "rstd", "1/N"),
        *("grad_y", "x_hat", "x_hat", "gamma", "rstd", "1/N"),
    ),
)
""":data:`BATCHNORM_GRAD_X` over every pixel: what :func:`batchnorm_backward` computes in
training on images (an einsum cannot sum a variadic group in one term and keep it in another,
so the spatial axes are written out)."""


@checked
def batchnorm_initial_state(layer: BatchNorm) -> BatchNormState:
    """Running mean 0 and variance 1 for every channel, as PyTorch starts them.

    Parameters
    ----------
    layer
        The layer, for its number of channels and its dtype.

    Returns
    -------
    state
        The initial :class:`BatchNormState`.
    """
    return BatchNormState(np.zeros_like(layer.gamma), np.ones_like(layer.gamma))


@checked
def batchnorm_update_state(state: BatchNormState, cache: BatchNormCache) -> BatchNormState:
    """The running statistics after a training batch, from that batch's cache.

    Parameters
    ----------
    state
        The running statistics before the batch.
    cache
        What :func:`batchnorm_forward` saved for the batch.

    Returns
    -------
    state
        A new :class:`BatchNormState` (``state`` is not modified); after an evaluation pass,
        ``state`` itself.
    """
    if not cache.batch_statistics:
        return state
    count = cache.x_hat.size // cache.x_hat.shape[0]  # every value of a channel: N
    mean, var = batchnorm_running_statistics(
        state.mean, state.var, cache.mean, cache.var, count, cache.layer.momentum
    )
    return BatchNormState(mean, var)
