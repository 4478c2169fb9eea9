"""The affine layer laid out batch first, ``z = a_prev W + b``: the twin of :mod:`.affine`.

Most NumPy tutorials, CS231n and seeds 002 and 003 of this project store one example per *row*,
``a_prev: (batch, inp)``, and the weights as ``W: (inp, out)``, so that a layer is
``a_prev @ W + b``. These functions are that layout, typed and checked like the rest of the
package. They compute exactly the numbers of their features-first twins, transposed:
``affine_forward_batch_first(W.T, b, a_prev.T)`` is ``affine_forward(W, b, a_prev).T``.

The rule that decides every transpose is the same in both layouts: every gradient carries exactly
the annotation of its value. ``W`` is now ``"inp out"``, so ``grad_W`` must be ``"inp out"`` too,
and from ``a_prev: "batch inp"`` and ``δ: "batch out"`` the only product of that shape is
``a_prev.T @ grad_z``. In index form nothing changes at all: the specs below are the
features-first ones with each operand's indices in its storage order.
"""

from jaxtyping import Float

from typedbackprop.checking import Array, checked, static_jaxtyping
from typedbackprop.nn.specs import Spec

__all__ = [
    "affine_forward_batch_first",
    "affine_grad_params_batch_first",
    "affine_grad_input_batch_first",
    "affine_backward_batch_first",
]


@checked
@static_jaxtyping("batch inp out")
def affine_forward_batch_first(
    W: Float[Array, "inp out"],
    b: Float[Array, " out"],
    a_prev: Float[Array, "batch inp"],
) -> Float[Array, "batch out"]:
    """Apply the affine map ``z = a_prev W + b`` to a batch of rows.

    Parameters
    ----------
    W
        Weights; column ``o`` holds the weights into output unit ``o``.
    b
        Biases, one per output unit.
    a_prev
        The previous layer's activations, one row per example.

    Returns
    -------
    z
        Pre-activations, one row per example.

    Notes
    -----
    Index form: ``z_{bo} = Σ_i a_prev_{bi} W_{io} + b_o``.

    Matrix form: ``z = a_prev W + 1 bᵀ``: the bias is added to every row. ``b`` has shape
    ``(out,)`` and NumPy broadcasting aligns trailing axes; ``out`` is the last axis of
    ``(batch, out)``, so ``a_prev @ W + b`` adds ``b_o`` along ``batch``, as it should. (In the
    features-first layout ``out`` comes first, and the bias needs ``b[:, np.newaxis]``.)
    """
    z = a_prev @ W
    z += b  # out is the trailing axis: b broadcasts along batch
    return z


@checked
@static_jaxtyping("batch inp out")
def affine_grad_params_batch_first(
    grad_z: Float[Array, "batch out"],
    a_prev: Float[Array, "batch inp"],
) -> tuple[Float[Array, "inp out"], Float[Array, " out"]]:
    """Gradients of the loss with respect to ``W`` and ``b``, batch first.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ`` in the equations), one row per example.
    a_prev
        The input the forward pass saw.

    Returns
    -------
    grad_W
        ``∂L/∂W``; it has the shape of ``W``, ``(inp, out)``.
    grad_b
        ``∂L/∂b``; it has the shape of ``b``, ``(out,)``.

    Notes
    -----
    Index form: ``∂L/∂W_{io} = Σ_b δ_{bo} a_prev_{bi}`` and ``∂L/∂b_{o} = Σ_b δ_{bo}``: the
    1-D rule, upstream gradient times local gradient (``∂z_{bo}/∂W_{io} = a_prev_{bi}``),
    summed over the examples.

    Matrix form: ``∂L/∂W = a_prevᵀ δ`` and ``∂L/∂b = δᵀ 1``. The shape argument: ``grad_W``
    must be ``(inp, out)``; from ``a_prev: (batch, inp)`` and ``δ: (batch, out)`` the sum runs
    over ``batch``, the first axis of both, and the result starts with ``inp``, which only
    ``a_prev`` has: ``(inp, batch) @ (batch, out)``, ``a_prev.T @ grad_z``. The bias was
    broadcast along ``batch``, axis 0 here, so its gradient sums over axis 0.
    """
    grad_W = a_prev.T @ grad_z
    grad_b = grad_z.sum(axis=0)
    return grad_W, grad_b


BATCH_FIRST_GRAD_W = Spec("grad_W", "bo,bi->io", ("grad_z", "a_prev"))
"""``∂L/∂W_{io} = Σ_b δ_{bo} a_prev_{bi}``: what :func:`affine_grad_params_batch_first` computes
as ``a_prev.T @ grad_z``."""

BATCH_FIRST_GRAD_B = Spec("grad_b", "bo->o", ("grad_z",))
"""``∂L/∂b_{o} = Σ_b δ_{bo}``: ``grad_z.sum(axis=0)``."""


@checked
@static_jaxtyping("batch inp out")
def affine_grad_input_batch_first(
    grad_z: Float[Array, "batch out"],
    W: Float[Array, "inp out"],
) -> Float[Array, "batch inp"]:
    """Gradient of the loss with respect to the layer's input ``a_prev``, batch first.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ`` in the equations), one row per example.
    W
        The weights the forward pass used.

    Returns
    -------
    grad_a_prev
        ``∂L/∂a_prev``; it has the shape of ``a_prev``, ``(batch, inp)``.

    Notes
    -----
    Index form: ``∂L/∂a_prev_{bi} = Σ_o δ_{bo} W_{io}``: the 1-D rule, upstream gradient times
    local gradient (``∂z_{bo}/∂a_prev_{bi} = W_{io}``), summed over the outputs.

    Matrix form: ``∂L/∂a_prev = δ Wᵀ``. The shape argument: the result must be
    ``(batch, inp)``; the sum runs over ``out``, the *last* axis of both ``δ`` and ``W``. The
    result starts with ``batch``, which only ``δ`` has, so ``δ`` goes first and ``W`` is
    transposed to bring ``out`` to the front: ``(batch, out) @ (out, inp)``,
    ``grad_z @ W.T``. Here the matrix product keeps the 1-D order, upstream first; the
    features-first twin, ``W.T @ grad_z``, is this line transposed.
    """
    return grad_z @ W.T


BATCH_FIRST_GRAD_A_PREV = Spec("grad_a_prev", "bo,io->bi", ("grad_z", "W"))
"""``∂L/∂a_prev_{bi} = Σ_o δ_{bo} W_{io}``: what :func:`affine_grad_input_batch_first` computes
as ``grad_z @ W.T``."""


@checked
@static_jaxtyping("batch inp out")
def affine_backward_batch_first(
    grad_z: Float[Array, "batch out"],
    W: Float[Array, "inp out"],
    a_prev: Float[Array, "batch inp"],
) -> tuple[Float[Array, "inp out"], Float[Array, " out"], Float[Array, "batch inp"]]:
    """All three gradients of the batch-first affine layer: ``(grad_W, grad_b, grad_a_prev)``.

    Parameters
    ----------
    grad_z
        ``∂L/∂z``, the upstream gradient (``δ`` in the equations), one row per example.
    W
        The weights the forward pass used.
    a_prev
        The input the forward pass saw.

    Returns
    -------
    grad_W, grad_b, grad_a_prev
        One gradient per array input of :func:`affine_forward_batch_first`, each with that
        input's shape.

    Notes
    -----
    ``∂L/∂W = a_prevᵀ δ``, ``∂L/∂b = δᵀ 1``, ``∂L/∂a_prev = δ Wᵀ``; see
    :func:`affine_grad_params_batch_first` and :func:`affine_grad_input_batch_first`.
    """
    grad_W, grad_b = affine_grad_params_batch_first(grad_z, a_prev)
    return grad_W, grad_b, affine_grad_input_batch_first(grad_z, W)
