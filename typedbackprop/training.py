"""Minibatch stochastic gradient descent over any sequence of layers.

The loop owns its parameters: it copies the caller's once, then updates its copies in place
with :meth:`~typedbackprop.optimizers.SGD.step_in_place` (``v ← μ v − η g``, ``θ ← θ + v``, no
new arrays per step), so the arrays a caller passed in are never written to, and a run is a
function of its initial layers, its data and its seed (bit-identical on the same machine). Every
update rule lives in :mod:`typedbackprop.optimizers`; this module only loops. Examples are
stored example-major once, so that a minibatch is a row gather, and handed to the network as a
features-first view.

Where the ``1/batch`` lives: every loss is a mean over its batch, so the gradients are already
``(1/batch) Σ_b ∂ℓ_b/∂θ`` and the step is ``θ ← θ − η ∂L/∂θ``. Nielsen's network.py sums the
per-example gradients and steps by ``η/len(batch)`` instead: the same step, with the ``1/batch``
in the update rather than in the loss (``tests/test_training.py`` checks that the two give the
same weights).
"""

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
from jaxtyping import Float, Int

from typedbackprop.checking import Array, IntArray, checked
from typedbackprop.models import Architecture
from typedbackprop.nn.activations import ActivationCache
from typedbackprop.nn.affine import Dense
from typedbackprop.nn.families import Mode
from typedbackprop.nn.losses import LOSSES, LossName
from typedbackprop.nn.network import (
    Layer,
    initial_states,
    mlp,
    network_forward,
    network_loss_and_grads,
)
from typedbackprop.nn.tree import leaves, map_leaves
from typedbackprop.optimizers import SGD

__all__ = [
    "Architecture",
    "History",
    "DivergedError",
    "is_classification",
    "accuracy",
    "evaluate",
    "evaluate_network",
    "train",
    "train_network",
    "train_steps",
    "warmup_cosine",
]

Targets = Float[Array, "out batch"] | Int[IntArray, " batch"]
"""Float targets ``(out, batch)``, or integer class labels ``(batch,)`` for ``cross_entropy``."""

EVALUATION = Mode(training=False)


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


def _examples(x: Array | IntArray, y: Array | IntArray) -> int:
    """The number of examples (the last axis), after checking that ``x`` and ``y`` agree on it."""
    if x.ndim < 2:
        raise ValueError(f"x must be (features, batch), one column per example; got {x.shape}")
    n_examples = int(x.shape[-1])
    if y.ndim == 0 or int(y.shape[-1]) != n_examples:
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
        Integer labels (``(batch,)``, or one per position, ``(seq, batch)``) or float targets
        ``(out, batch)``.

    Returns
    -------
    bool
        True for integer labels, and for float targets whose every entry is 0 or 1.
    """
    if y.dtype.kind in "iu":
        return True
    return bool(np.all((y == 0) | (y == 1)))


def _predicted_correctly(outputs: Array, y: Array | IntArray) -> Array:
    """One boolean per example (per position, for labels of sequences): the right class?"""
    if y.dtype.kind in "iu":  # labels: the class with the largest output
        return cast(Array, np.argmax(outputs, axis=0) == y)
    if y.shape[0] > 1 and np.all(y.sum(axis=0) == 1):  # one-hot targets: argmax against argmax
        return cast(Array, np.argmax(outputs, axis=0) == np.argmax(y, axis=0))
    # 0/1 targets: an output above ½, the midpoint of the two targets, predicts 1; an example
    # is right when every one of its outputs is.
    return cast(Array, np.all((outputs > 0.5) == (y > 0.5), axis=0))


def _loss_and_output(
    layers: Sequence[Layer],
    loss: LossName,
    x: Array | IntArray,
    y: Array | IntArray,
    states: list[Any] | None = None,
) -> tuple[float, Array]:
    """The loss from one forward pass in evaluation mode, and the network's output."""
    output, caches = network_forward(layers, x, EVALUATION, states)
    entry = LOSSES[loss]
    if entry.from_logits:
        value, _ = entry.function(cast(ActivationCache, caches[-1]).z, y)
    else:
        value, _ = entry.function(output, y)
    return value, output


def evaluate_network(
    layers: Sequence[Layer],
    loss: LossName,
    x: Array | IntArray,
    y: Array | IntArray,
    states: list[Any] | None = None,
) -> tuple[float, float | None]:
    """The loss of any sequence of layers on ``(x, y)``, and the accuracy where there is one.

    Parameters
    ----------
    layers
        The network (evaluation mode: no dropout, batch norm's running statistics).
    loss
        The loss's name.
    x
        Inputs, one example per position of the last axis.
    y
        Targets or labels, as the loss takes them.
    states
        The layers' state (batch norm's running statistics), from
        :func:`~typedbackprop.nn.network.initial_states` updated by training; needed by a
        network that keeps state.

    Returns
    -------
    loss, accuracy
        The loss (one forward pass, no backward pass), and the share of examples (of positions,
        for labelled sequences) classified correctly, or ``None`` for targets that are not
        classes (see :func:`is_classification`).
    """
    _examples(x, y)
    value, output = _loss_and_output(layers, loss, x, y, states)
    if not is_classification(y):
        return value, None
    return value, float(np.mean(_predicted_correctly(output, y)))


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
    sequence = mlp(layers, architecture.activation, architecture.output_activation)
    output, _ = network_forward(sequence, x, EVALUATION)
    return float(np.mean(_predicted_correctly(output, y)))


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
    if LOSSES[architecture.loss].labels != (y.dtype.kind in "iu" and y.ndim == 1):
        raise TypeError(
            f"{architecture.loss} takes "
            + ("integer labels (batch,)" if LOSSES[architecture.loss].labels else "float targets")
            + f"; got {y.dtype} {y.shape}"
        )
    sequence = mlp(layers, architecture.activation, architecture.output_activation)
    return evaluate_network(sequence, architecture.loss, x, y)


def _owned_copy(layer: Layer) -> Layer:
    """The layer with copies of its parameter arrays (the training loop updates them in place)."""
    if not leaves(layer):
        return layer
    return map_leaves(lambda value: value.copy(), layer)


def _example_major(values: Array | IntArray) -> Array | IntArray:
    """A copy with the examples (the last axis) first, contiguous: a minibatch is a row gather."""
    return cast(Array | IntArray, np.ascontiguousarray(np.moveaxis(values, -1, 0)))


def _batch(rows: Array | IntArray, indices: IntArray) -> Array | IntArray:
    """The examples ``indices`` of example-major ``rows``, as a view with the examples last."""
    return np.moveaxis(rows[indices], 0, -1)


def _check_settings(epochs: int, batch_size: int, learning_rate: float, momentum: float) -> None:
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(
            f"epochs, batch_size and learning_rate must be positive; got {epochs}, "
            f"{batch_size}, {learning_rate}"
        )
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1); got {momentum}")


def train_network(
    layers: Sequence[Layer],
    loss: LossName,
    x: Array | IntArray,
    y: Array | IntArray,
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    momentum: float = 0.0,
    rng: np.random.Generator,
    x_test: Array | IntArray | None = None,
    y_test: Array | IntArray | None = None,
    on_epoch: Callable[[int, list[Layer], History], None] | None = None,
    train_metrics: bool = True,
    states: list[Any] | None = None,
) -> tuple[list[Layer], History]:
    """Train any sequence of layers with minibatch SGD, shuffling the examples every epoch.

    Parameters
    ----------
    layers
        The initial layers (not modified: the loop trains copies).
    loss
        The loss's name (a key of :data:`~typedbackprop.nn.losses.LOSSES`).
    x
        Training inputs, one example per position of the last axis.
    y
        Training targets or labels, one per position of the last axis.
    epochs, batch_size, learning_rate, momentum, rng, x_test, y_test
        As for :func:`train`; ``rng`` also draws dropout's masks.
    on_epoch
        Called after every epoch with the epoch number (from 1), a copy of the layers and the
        history.
    train_metrics
        Whether to compute the training-set accuracy after every epoch (a forward pass over the
        whole training set); the mean training loss is recorded either way.
    states
        The layers' state that is not a parameter (batch norm's running statistics), one entry
        per layer, as :func:`~typedbackprop.nn.network.initial_states` makes it: every training
        step updates it in place, and evaluation reads it. By default the loop starts from
        ``initial_states(layers)`` and keeps its states to itself.

    Returns
    -------
    layers, history
        The trained layers, and the loss and accuracies per epoch.

    Raises
    ------
    ValueError, DivergedError
        As for :func:`train`.
    """
    _check_settings(epochs, batch_size, learning_rate, momentum)
    n_examples = _examples(x, y)
    if n_examples == 0:
        raise ValueError("no training examples")
    test = x_test is not None and y_test is not None
    if test:
        _examples(cast(Array, x_test), cast(Array, y_test))
    classes = train_metrics and is_classification(y)
    owned = [_owned_copy(layer) for layer in layers]
    optimizer = SGD(learning_rate, momentum)
    sgd_state = optimizer.init(owned)
    x_rows, y_rows = _example_major(x), _example_major(y)
    mode = Mode(training=True, rng=rng)
    if states is None:
        states = initial_states(owned)
    history = History()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n_examples)
        total = 0.0
        try:
            # Overflow is the one floating-point error a sound network raises only when the
            # steps are too big: make it an exception, rather than a warning and then NaNs.
            # The evaluations after the epoch are included: the last step can be the one that
            # makes the parameters overflow on other examples.
            with np.errstate(over="raise", invalid="raise"):
                for start in range(0, n_examples, batch_size):
                    batch = order[start : start + batch_size]
                    value, grads = network_loss_and_grads(
                        owned, _batch(x_rows, batch), _batch(y_rows, batch), loss, mode, states
                    )
                    if not math.isfinite(value):
                        raise FloatingPointError(f"the loss is {value}")
                    optimizer.step_in_place(owned, grads, sgd_state)
                    total += value * len(batch)
                history.loss.append(total / n_examples)
                if classes:
                    _, train_accuracy = evaluate_network(owned, loss, x, y, states)
                    history.train_accuracy.append(cast(float, train_accuracy))
                if test:
                    test_loss, test_accuracy = evaluate_network(
                        owned, loss, cast(Array, x_test), cast(Array, y_test), states
                    )
                    if not math.isfinite(test_loss):
                        raise FloatingPointError(f"the test loss is {test_loss}")
                    history.test_loss.append(test_loss)
                    if test_accuracy is not None:
                        history.test_accuracy.append(test_accuracy)
        except FloatingPointError as error:
            raise DivergedError(
                f"training diverged in epoch {epoch} ({error}); try a smaller learning rate "
                f"than {learning_rate:g}"
            ) from error
        if on_epoch is not None:
            on_epoch(epoch, [_owned_copy(layer) for layer in owned], history)
    return owned, history


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
    train_metrics: bool = True,
) -> tuple[list[Dense], History]:
    """Train a multilayer perceptron with minibatch SGD, shuffling the examples every epoch.

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
        ``μ`` in ``[0, 1)``: the step is :class:`~typedbackprop.optimizers.SGD`'s.
    rng
        Shuffles the examples (one ``rng.permutation`` per epoch); the same seed gives
        bit-identical training.
    x_test, y_test
        A held-out set, for the test loss and accuracy in the history.
    on_epoch
        Called after every epoch with the epoch number (from 1), the layers and the history,
        for progress bars and animations.
    train_metrics
        Whether to record the training-set accuracy after every epoch.

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
    slices of ``batch_size``. Each step is the loss and gradients of the slice, then
    :class:`~typedbackprop.optimizers.SGD`'s step (``v ← μ v − η g``, ``θ ← θ + v``, ``v = 0``
    at the start). This is :func:`train_network` on
    :func:`~typedbackprop.nn.network.mlp` of the layers.
    """
    _check_settings(epochs, batch_size, learning_rate, momentum)
    _examples(x, y)
    if LOSSES[architecture.loss].labels != (y.dtype.kind in "iu"):
        kind = "integer labels (batch,)" if LOSSES[architecture.loss].labels else "float targets"
        raise TypeError(f"{architecture.loss} takes {kind}; got {y.dtype} {y.shape}")
    sequence = mlp(layers, architecture.activation, architecture.output_activation)

    def dense_only(epoch: int, current: list[Layer], history: History) -> None:
        if on_epoch is not None:
            on_epoch(epoch, cast(list[Dense], current[0::2]), history)

    trained, history = train_network(
        sequence,
        architecture.loss,
        x,
        y,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        momentum=momentum,
        rng=rng,
        x_test=x_test,
        y_test=y_test,
        on_epoch=dense_only if on_epoch is not None else None,
        train_metrics=train_metrics,
    )
    return cast(list[Dense], trained[0::2]), history


def warmup_cosine(peak: float, steps: int, warmup: float = 0.1) -> Callable[[int], float]:
    """A learning-rate schedule: a linear warm-up to ``peak``, then a cosine decay to 0.

    Parameters
    ----------
    peak
        The largest learning rate.
    steps
        The number of steps of the whole run.
    warmup
        The share of the steps over which the rate rises linearly from 0.

    Returns
    -------
    Callable
        ``rate(step)`` for ``step`` from 1 to ``steps``: ``peak · min(1, step / (warmup ·
        steps)) · ½ (1 + cos(π step / steps))``, never below ``1e-12``.
    """

    def rate(step: int) -> float:
        rising = min(1.0, step / max(warmup * steps, 1.0))
        return max(peak * rising * 0.5 * (1.0 + math.cos(math.pi * step / steps)), 1e-12)

    return rate


def train_steps(
    layers: Sequence[Layer],
    loss: LossName,
    x: Array | IntArray,
    y: Array | IntArray,
    *,
    steps: int,
    batch_size: int,
    rng: np.random.Generator,
    optimizer: Callable[[int], Any],
    on_step: Callable[[int, float], None] | None = None,
    states: list[Any] | None = None,
) -> tuple[list[Layer], History]:
    """Train for a number of steps with any optimizer, each step on a minibatch drawn at random.

    Parameters
    ----------
    layers
        The initial layers (not modified).
    loss
        The loss's name.
    x, y
        Training inputs and targets, one example per position of the last axis.
    steps
        How many steps.
    batch_size
        Examples per step, drawn with replacement (``rng.integers``).
    rng
        Draws the minibatches (and dropout's masks).
    optimizer
        ``optimizer(step)`` gives the optimizer for a step (from 1), such as
        ``lambda step: AdamW(learning_rate=schedule(step))``: an object with ``init(layers)``
        and ``step(layers, grads, state) -> (layers, state)`` (see
        :mod:`typedbackprop.optimizers`).
    on_step
        Called after every step with the step number and the minibatch's loss.
    states
        The layers' state (batch norm's running statistics), updated in place.

    Returns
    -------
    layers, history
        The trained layers, and ``history.loss``: the loss of every step's minibatch.

    Raises
    ------
    ValueError
        For fewer than one step or example per batch.
    DivergedError
        If the loss or a parameter overflows.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive; got {steps}, {batch_size}")
    n_examples = _examples(x, y)
    current = list(layers)
    state = optimizer(1).init(current)
    x_rows, y_rows = _example_major(x), _example_major(y)
    mode = Mode(training=True, rng=rng)
    history = History()
    with np.errstate(over="raise", invalid="raise"):
        for step in range(1, steps + 1):
            batch = rng.integers(0, n_examples, size=batch_size)
            try:
                value, grads = network_loss_and_grads(
                    current, _batch(x_rows, batch), _batch(y_rows, batch), loss, mode, states
                )
                if not math.isfinite(value):
                    raise FloatingPointError(f"the loss is {value}")
                current, state = optimizer(step).step(current, grads, state)
            except FloatingPointError as error:
                raise DivergedError(f"training diverged at step {step} ({error})") from error
            history.loss.append(value)
            if on_step is not None:
                on_step(step, value)
    return current, history
