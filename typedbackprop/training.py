"""Minibatch stochastic gradient descent over :func:`~typedbackprop.loss_and_grads`.

Parameters are never updated in place: every step builds new :class:`~typedbackprop.Dense`
layers, so the arrays a caller passed in are never written to, and a run is a pure function
of its initial layers, its data and its seed (bit-identical on the same machine).

Where the ``1/batch`` lives: every loss is a mean over its batch, so ``loss_and_grads`` already
returns ``(1/batch) Σ_b ∂ℓ_b/∂θ`` and the step is ``θ ← θ − η ∂L/∂θ``. Nielsen's network.py
sums the per-example gradients and steps by ``η/len(batch)`` instead: the same step, with the
``1/batch`` in the update rather than in the loss (``tests/test_training.py`` checks that the
two give the same weights).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
from jaxtyping import Float, Int

from typedbackprop.checking import Array, IntArray, checked
from typedbackprop.nn.losses import binary_cross_entropy, cross_entropy, squared_error
from typedbackprop.nn.network import (
    ActivationName,
    Dense,
    LossName,
    OutputActivationName,
    check_names,
    forward,
    loss_and_grads,
)

__all__ = [
    "Architecture",
    "History",
    "DivergedError",
    "is_classification",
    "accuracy",
    "evaluate",
    "sgd_step",
    "train",
]

Targets = Float[Array, "out batch"] | Int[IntArray, " batch"]
"""Float targets ``(out, batch)``, or integer class labels ``(batch,)`` for ``cross_entropy``."""


@dataclass(frozen=True)
class Architecture:
    """Everything but the parameters that defines a network and its loss.

    Parameters
    ----------
    sizes
        ``(in_0, out_1, ..., out_L)``: the input width, then each layer's width.
    activation
        The hidden layers' activation.
    output_activation
        The last layer's activation.
    loss
        The loss; ``binary_cross_entropy`` needs a ``sigmoid`` output and ``cross_entropy`` a
        ``softmax`` one (they are computed from the logits).

    Raises
    ------
    ValueError
        For fewer than two sizes, a size below 1, or an unknown or mismatched name.
    """

    sizes: tuple[int, ...]
    activation: ActivationName = "sigmoid"
    output_activation: OutputActivationName = "identity"
    loss: LossName = "squared_error"

    def __post_init__(self) -> None:
        if len(self.sizes) < 2 or min(self.sizes) < 1:
            raise ValueError(
                f"an architecture needs at least two layer sizes, each at least 1; got {self.sizes}"
            )
        check_names(self.activation, self.output_activation, self.loss)

    def describe(self) -> str:
        """``"2-3-3-1 sigmoid/sigmoid, squared_error"``: sizes, activations and loss."""
        sizes = "-".join(str(size) for size in self.sizes)
        return f"{sizes} {self.activation}/{self.output_activation}, {self.loss}"


@dataclass
class History:
    """Per epoch: the mean training loss, the test loss and accuracies where they apply.

    ``train_accuracy`` and ``test_accuracy`` stay empty for a regression (targets that are not
    class labels or 0/1), where accuracy means nothing; ``test_loss`` and ``test_accuracy``
    stay empty when no test set was given.
    """

    loss: list[float] = field(default_factory=list)
    """The mean over the epoch's examples of the loss each minibatch had before its step."""
    test_loss: list[float] = field(default_factory=list)
    """The loss on the test set after the epoch."""
    train_accuracy: list[float] = field(default_factory=list)
    """The share of training examples classified correctly after the epoch."""
    test_accuracy: list[float] = field(default_factory=list)
    """The share of test examples classified correctly after the epoch."""


class DivergedError(FloatingPointError):
    """Raised by :func:`train` when the loss or the parameters overflow: the step was too big."""


def _examples(x: Array, y: Array | IntArray) -> int:
    """The number of examples, after checking that ``x`` and ``y`` agree on it."""
    if x.ndim != 2:
        raise ValueError(f"x must be (features, batch), one column per example; got {x.shape}")
    n_examples = int(x.shape[1])
    n_targets = int(y.shape[0] if y.ndim == 1 else y.shape[-1])
    if y.ndim not in (1, 2) or n_targets != n_examples:
        raise ValueError(
            f"x has {n_examples} examples (columns) but y has shape {y.shape}: targets are "
            f"(out, batch), labels are (batch,)"
        )
    return n_examples


def is_classification(y: Array | IntArray) -> bool:
    """Whether accuracy means something for targets ``y``: class labels or 0/1 targets.

    Parameters
    ----------
    y
        Integer labels ``(batch,)`` or float targets ``(out, batch)``.

    Returns
    -------
    bool
        True for integer labels, and for float targets whose every entry is 0 or 1.
    """
    if y.ndim == 1:
        return y.dtype.kind in "iu"
    return bool(np.all((y == 0) | (y == 1)))


def _predicted_correctly(outputs: Array, y: Array | IntArray) -> Array:
    """One boolean per example: does the network's output give the right class?"""
    if y.ndim == 1:  # labels: the class with the largest output
        return cast(Array, np.argmax(outputs, axis=0) == y)
    if y.shape[0] > 1 and np.all(y.sum(axis=0) == 1):  # one-hot targets: argmax against argmax
        return cast(Array, np.argmax(outputs, axis=0) == np.argmax(y, axis=0))
    # 0/1 targets: an output above ½, the midpoint of the two targets, predicts 1; an example
    # is right when every one of its outputs is.
    return cast(Array, np.all((outputs > 0.5) == (y > 0.5), axis=0))


@checked
def accuracy(
    layers: list[Dense],
    architecture: Architecture,
    x: Float[Array, "in batch"],
    y: Targets,
) -> float:
    """The share of examples classified correctly.

    Parameters
    ----------
    layers
        The network.
    architecture
        Its activations.
    x
        Inputs, one column per example.
    y
        Integer labels ``(batch,)``: the predicted class is the argmax of the outputs (a
        softmax output layer). Or 0/1 targets ``(out, batch)``: one-hot columns are compared
        by argmax; otherwise an output above ½ (the midpoint of the two targets, a sigmoid
        output layer) predicts 1, and an example counts as right when all its outputs are.

    Returns
    -------
    float
        Between 0 and 1.

    Raises
    ------
    ValueError
        For targets that are neither labels nor 0/1 (a regression has no accuracy), or an
        empty batch.
    """
    if not is_classification(y):
        raise ValueError("accuracy needs class labels or 0/1 targets; these targets are not")
    n_examples = _examples(x, y)
    if n_examples == 0:
        raise ValueError("empty batch: the accuracy of 0 examples is undefined")
    caches = forward(layers, x, architecture.activation, architecture.output_activation)
    return float(np.mean(_predicted_correctly(caches[-1].a, y)))


@checked
def evaluate(
    layers: list[Dense],
    architecture: Architecture,
    x: Float[Array, "in batch"],
    y: Targets,
) -> tuple[float, float | None]:
    """The loss of ``layers`` on ``(x, y)``, and the accuracy where there is one.

    Parameters
    ----------
    layers
        The network.
    architecture
        Its activations and loss.
    x
        Inputs, one column per example.
    y
        Targets or labels, as :func:`~typedbackprop.loss_and_grads` takes them.

    Returns
    -------
    loss, accuracy
        The mean loss over the examples (from one forward pass, no backward pass), and the
        share classified correctly, or ``None`` for targets that are not classes (see
        :func:`is_classification`).
    """
    _examples(x, y)
    caches = forward(layers, x, architecture.activation, architecture.output_activation)
    output = caches[-1]
    if architecture.loss == "cross_entropy":
        if y.ndim != 1 or y.dtype.kind not in "iu":
            raise TypeError(f"cross_entropy takes integer labels (batch,); got {y.dtype} {y.shape}")
        value, _ = cross_entropy(output.z, cast(IntArray, y))
    elif architecture.loss == "binary_cross_entropy":
        value, _ = binary_cross_entropy(output.z, cast(Array, y))
    else:
        value, _ = squared_error(output.a, cast(Array, y))
    if not is_classification(y):
        return value, None
    return value, float(np.mean(_predicted_correctly(output.a, y)))


def sgd_step(
    layers: list[Dense],
    grads: list[Dense],
    velocities: list[Dense],
    learning_rate: float,
    momentum: float = 0.0,
) -> tuple[list[Dense], list[Dense]]:
    """One step of gradient descent with (classical) momentum, returning new layers.

    Parameters
    ----------
    layers
        The current parameters.
    grads
        ``∂L/∂W`` and ``∂L/∂b`` for each layer.
    velocities
        The previous step's velocities (zeros at the start).
    learning_rate
        ``η``.
    momentum
        ``μ``; 0 gives plain gradient descent.

    Returns
    -------
    layers, velocities
        New arrays; none of the arguments is written to.

    Notes
    -----
    For every parameter ``θ`` (each ``W`` and ``b``): ``v ← μ v − η ∂L/∂θ``, then
    ``θ ← θ + v``. With ``μ = 0`` this is ``θ ← θ − η ∂L/∂θ``. Each velocity has the shape of
    its parameter, as each gradient does.
    """
    new_layers, new_velocities = [], []
    for layer, grad, velocity in zip(layers, grads, velocities, strict=True):
        v_W = momentum * velocity.W - learning_rate * grad.W
        v_b = momentum * velocity.b - learning_rate * grad.b
        new_velocities.append(Dense(v_W, v_b))
        new_layers.append(Dense(layer.W + v_W, layer.b + v_b))
    return new_layers, new_velocities


@checked
def train(
    layers: list[Dense],
    architecture: Architecture,
    x: Float[Array, "in n_train"],
    y: Float[Array, "out n_train"] | Int[IntArray, " n_train"],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    momentum: float = 0.0,
    rng: np.random.Generator,
    x_test: Float[Array, "in n_test"] | None = None,
    y_test: Float[Array, "out n_test"] | Int[IntArray, " n_test"] | None = None,
    on_epoch: Callable[[int, list[Dense], History], None] | None = None,
) -> tuple[list[Dense], History]:
    """Train with minibatch SGD, shuffling the examples every epoch.

    Parameters
    ----------
    layers
        The initial parameters (not modified).
    architecture
        Activations and loss.
    x
        Training inputs, one column per example.
    y
        Training targets ``(out, n_train)`` or labels ``(n_train,)``.
    epochs
        Passes over the training set.
    batch_size
        Examples per step; the last batch of an epoch may be smaller.
    learning_rate
        ``η``.
    momentum
        ``μ`` for :func:`sgd_step`, in ``[0, 1)``.
    rng
        Shuffles the examples (one ``rng.permutation`` per epoch); the same seed gives
        bit-identical training.
    x_test, y_test
        A held-out set, for the test loss and accuracy in the history.
    on_epoch
        Called after every epoch with the epoch number (from 1), the layers and the history,
        for progress bars and animations.

    Returns
    -------
    layers, history
        The trained parameters, and the loss and accuracies per epoch.

    Raises
    ------
    ValueError
        For a non-positive number of epochs, batch size or learning rate, a momentum outside
        ``[0, 1)``, or ``x`` and ``y`` that disagree on the number of examples.
    DivergedError
        If the loss or a parameter overflows (a ``FloatingPointError``): the learning rate is
        too large for this network and data.

    Notes
    -----
    Each epoch visits the examples in the order ``rng.permutation(n_train)``, in consecutive
    slices of ``batch_size``. Each step is :func:`~typedbackprop.loss_and_grads` on the slice,
    then :func:`sgd_step`.
    """
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(
            f"epochs, batch_size and learning_rate must be positive; got {epochs}, "
            f"{batch_size}, {learning_rate}"
        )
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1); got {momentum}")
    n_examples = _examples(x, y)
    if n_examples == 0:
        raise ValueError("no training examples")
    test = x_test is not None and y_test is not None
    if test:
        _examples(cast(Array, x_test), cast(Array, y_test))
    classes = is_classification(y)
    velocities = [Dense(np.zeros_like(layer.W), np.zeros_like(layer.b)) for layer in layers]
    history = History()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n_examples)
        total = 0.0
        try:
            # Overflow is the one floating-point error a sound network raises only when the
            # steps are too big: make it an exception, rather than a warning and then NaNs.
            with np.errstate(over="raise", invalid="raise"):
                for start in range(0, n_examples, batch_size):
                    batch = order[start : start + batch_size]
                    y_batch = y[batch] if y.ndim == 1 else y[:, batch]
                    value, grads = loss_and_grads(
                        layers,
                        x[:, batch],
                        y_batch,
                        architecture.activation,
                        architecture.output_activation,
                        architecture.loss,
                    )
                    if not math.isfinite(value):
                        raise FloatingPointError(f"the loss is {value}")
                    layers, velocities = sgd_step(
                        layers, grads, velocities, learning_rate, momentum
                    )
                    total += value * len(batch)
        except FloatingPointError as error:
            raise DivergedError(
                f"training diverged in epoch {epoch} ({error}); try a smaller learning rate "
                f"than {learning_rate:g}"
            ) from error
        history.loss.append(total / n_examples)
        if classes:
            history.train_accuracy.append(accuracy(layers, architecture, x, y))
        if test:
            test_loss, test_accuracy = evaluate(
                layers, architecture, cast(Array, x_test), cast(Array, y_test)
            )
            history.test_loss.append(test_loss)
            if test_accuracy is not None:
                history.test_accuracy.append(test_accuracy)
        if on_epoch is not None:
            on_epoch(epoch, layers, history)
    return layers, history
