"""Minibatch stochastic gradient descent over :func:`~typedbackprop.loss_and_grads`.

Parameters are never updated in place: every step builds new :class:`~typedbackprop.Dense`
layers, so the arrays a caller passed in are never written to, and a run is a pure function
of its initial layers, its data and its seed (bit-identical on the same machine).
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from typedbackprop.checking import Array, IntArray
from typedbackprop.network import (
    ActivationName,
    Dense,
    LossName,
    OutputActivationName,
    loss_and_grads,
    predict,
)

__all__ = ["Architecture", "History", "accuracy", "evaluate", "sgd_step", "train"]


@dataclass(frozen=True)
class Architecture:
    """Everything but the parameters that defines a network and its loss."""

    sizes: tuple[int, ...]
    activation: ActivationName = "sigmoid"
    output_activation: OutputActivationName = "identity"
    loss: LossName = "squared_error"


@dataclass
class History:
    """Per epoch: the mean training loss, and accuracies where a test set was given."""

    loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)


def accuracy(
    layers: list[Dense], architecture: Architecture, x: Array, y: Array | IntArray
) -> float:
    """The share of examples classified correctly.

    Parameters
    ----------
    layers
        The network.
    architecture
        Its activations and loss.
    x
        Inputs, one column per example.
    y
        Integer labels ``(batch,)`` (the predicted class is the argmax of the outputs), or
        targets in ``{0, 1}`` of shape ``(1, batch)`` (the prediction is an output above ½,
        the midpoint of the two targets).

    Returns
    -------
    float
        Between 0 and 1.
    """
    outputs = predict(layers, x, architecture.activation, architecture.output_activation)
    if y.ndim == 1:
        return float(np.mean(np.argmax(outputs, axis=0) == y))
    return float(np.mean((outputs > 0.5) == (y > 0.5)))


def evaluate(
    layers: list[Dense], architecture: Architecture, x: Array, y: Array | IntArray
) -> tuple[float, float]:
    """The loss and the accuracy of ``layers`` on ``(x, y)``.

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
        The mean loss over the examples, and the share classified correctly.
    """
    value, _ = loss_and_grads(
        layers, x, y, architecture.activation, architecture.output_activation, architecture.loss
    )
    return value, accuracy(layers, architecture, x, y)


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
        ``v ← μ v − η ∂L/∂θ`` and ``θ ← θ + v``, for every ``W`` and ``b``.
    """
    new_layers, new_velocities = [], []
    for layer, grad, velocity in zip(layers, grads, velocities, strict=True):
        v_W = momentum * velocity.W - learning_rate * grad.W
        v_b = momentum * velocity.b - learning_rate * grad.b
        new_velocities.append(Dense(v_W, v_b))
        new_layers.append(Dense(layer.W + v_W, layer.b + v_b))
    return new_layers, new_velocities


def train(
    layers: list[Dense],
    architecture: Architecture,
    x: Array,
    y: Array | IntArray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    momentum: float = 0.0,
    rng: np.random.Generator,
    x_test: Array | None = None,
    y_test: Array | IntArray | None = None,
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
        Training targets or labels.
    epochs
        Passes over the training set.
    batch_size
        Examples per step; the last batch of an epoch may be smaller.
    learning_rate
        ``η``.
    momentum
        ``μ`` for :func:`sgd_step`.
    rng
        Shuffles the examples; the same seed gives bit-identical training.
    x_test, y_test
        A held-out set for the test accuracy in the history.
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
        For a non-positive number of epochs, batch size or learning rate.
    """
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(
            f"epochs, batch_size and learning_rate must be positive; got {epochs}, "
            f"{batch_size}, {learning_rate}"
        )
    n_examples = x.shape[1]
    velocities = [Dense(np.zeros_like(layer.W), np.zeros_like(layer.b)) for layer in layers]
    history = History()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n_examples)
        total = 0.0
        for start in range(0, n_examples, batch_size):
            batch = order[start : start + batch_size]
            x_batch = x[:, batch]
            y_batch = y[batch] if y.ndim == 1 else y[:, batch]
            value, grads = loss_and_grads(
                layers,
                x_batch,
                cast(Array, y_batch),
                architecture.activation,
                architecture.output_activation,
                architecture.loss,
            )
            total += value * len(batch)
            layers, velocities = sgd_step(layers, grads, velocities, learning_rate, momentum)
        history.loss.append(total / n_examples)
        history.train_accuracy.append(accuracy(layers, architecture, x, y))
        if x_test is not None and y_test is not None:
            history.test_accuracy.append(accuracy(layers, architecture, x_test, y_test))
        if on_epoch is not None:
            on_epoch(epoch, layers, history)
    return layers, history
