"""Minibatch stochastic gradient descent over any sequence of layers.

The loop owns its parameters: it copies the caller's once, then updates its copies in place
with :meth:`~typedbackprop.optimizers.SGD.step_in_place` (``v ← μ v − η g``, ``θ ← θ + v``, no
new arrays per step), so the arrays a caller passed in are never written to, and a run is a
function of its initial layers, its data and its seed (bit-identical on the same machine). Every
update rule lives in :mod:`typedbackprop.optimizers`; this module only loops. A minibatch is
gathered from the data as the caller holds it, never from a copy of the whole set (see
:func:`_batch`).

The training metrics are running ones by default, as Keras reports them: the loss and accuracy
of each minibatch as it was trained (before its step), which the step's forward pass computes
anyway, averaged over the epoch's examples. ``train_metrics="exact"`` adds a forward pass over
the whole training set after every epoch, for its loss and accuracy at the epoch's end.

Where the ``1/batch`` lives: every loss is a mean over its batch, so the gradients are already
``(1/batch) Σ_b ∂ℓ_b/∂θ`` and the step is ``θ ← θ − η ∂L/∂θ``. Nielsen's network.py sums the
per-example gradients and steps by ``η/len(batch)`` instead: the same step, with the ``1/batch``
in the update rather than in the loss (``tests/test_training.py`` checks that the two give the
same weights).
"""

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
from jaxtyping import Float, Int

from typedbackprop.checking import CHECKS_ENABLED, Array, IntArray, checked, trusted
from typedbackprop.models import Architecture
from typedbackprop.nn.activations import Activation, ActivationCache
from typedbackprop.nn.affine import Dense
from typedbackprop.nn.families import Mode
from typedbackprop.nn.gru import GRU
from typedbackprop.nn.losses import LOSSES, LossName
from typedbackprop.nn.lstm import LSTM
from typedbackprop.nn.network import (
    Layer,
    _check_gradients,
    initial_states,
    mlp,
    network_backward,
    network_forward,
    network_loss_and_grads,
)
from typedbackprop.nn.rnn import RNN
from typedbackprop.nn.tree import leaves, map_leaves
from typedbackprop.optimizers import SGD, clip_by_global_norm

__all__ = [
    "Architecture",
    "History",
    "TrainMetrics",
    "DivergedError",
    "is_classification",
    "accuracy",
    "evaluate",
    "evaluate_network",
    "train",
    "train_network",
    "train_steps",
    "truncated",
    "warmup_cosine",
]

Targets = Float[Array, "out batch"] | Int[IntArray, " batch"]
"""Float targets ``(out, batch)``, or integer class labels ``(batch,)`` for ``cross_entropy``."""

EVALUATION = Mode(training=False)

TrainMetrics = Literal["running", "exact"] | bool
"""What :func:`train` records of the training set besides the running loss: ``"running"`` (the
default; ``True`` means the same) the running accuracy, from the forward passes the steps make;
``"exact"`` the loss and accuracy of the whole training set after every epoch, one forward pass
more per epoch; ``False`` nothing more."""


@dataclass
class History:
    """Per epoch: the mean training loss, the test loss and accuracies where they apply.

    ``train_accuracy`` and ``test_accuracy`` stay empty for a regression (targets that are not
    class labels or 0/1), where accuracy means nothing; ``test_loss`` and ``test_accuracy``
    stay empty when no test set was given; ``train_loss`` is filled only with
    ``train_metrics="exact"``.
    """

    loss: list[float] = field(default_factory=list)
    """The mean over the epoch's examples of the loss each minibatch had before its step (the
    running loss)."""
    test_loss: list[float] = field(default_factory=list)
    """The loss on the test set after the epoch."""
    train_accuracy: list[float] = field(default_factory=list)
    """The share of training examples classified correctly: by default as each minibatch was
    classified before its step (the running accuracy); with ``train_metrics="exact"``, by the
    layers at the epoch's end."""
    test_accuracy: list[float] = field(default_factory=list)
    """The share of test examples classified correctly after the epoch."""
    train_loss: list[float] = field(default_factory=list)
    """With ``train_metrics="exact"``: the loss on the whole training set after the epoch."""


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


def _is_one_hot(y: Array | IntArray) -> bool:
    """Whether float targets are one-hot columns (compared by argmax rather than by ½)."""
    return y.dtype.kind not in "iu" and y.shape[0] > 1 and bool(np.all(y.sum(axis=0) == 1))


def _predicted_correctly(outputs: Array, y: Array | IntArray, one_hot: bool | None = None) -> Array:
    """One boolean per example (per position, for labels of sequences): the right class?

    ``one_hot`` is :func:`_is_one_hot` of the whole target set, when ``y`` is a minibatch of
    it (the rule is the set's, not the batch's); ``None`` decides from ``y`` itself.
    """
    if y.dtype.kind in "iu":  # labels: the class with the largest output
        return cast(Array, np.argmax(outputs, axis=0) == y)
    if one_hot is None:
        one_hot = _is_one_hot(y)
    if one_hot:  # one-hot targets: argmax against argmax
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
    x: Float[Array, "inp batch"],
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
    x: Float[Array, "inp batch"],
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


def _batch(values: Array | IntArray, indices: IntArray) -> Array | IntArray:
    """The examples ``indices`` (positions of the last axis) of ``values``, examples last.

    Only the minibatch is copied, never the data set, whatever its layout. Stored example-major
    (the examples' axis outermost in memory, as ``X.T`` of a scikit-learn array is), each
    example is a contiguous block: the gather is a row gather of the examples-first view, handed
    back as a view with the examples last. Otherwise (features first and C-contiguous, as
    :func:`~typedbackprop.datasets.load_dataset` gives it) ``np.take`` along the last axis
    gathers the columns. On 784 × 10,000 float64 inputs and batches of 128 the column gather
    costs about 0.4 ms a batch, 32 ms an epoch, against 31 ms for an example-major copy of the
    whole set plus 5 ms of row gathers: the same time, without a second copy of the data in
    memory (``np.take`` along an axis that is not outermost in memory, on the other hand, is
    100 times slower: hence the two cases).
    """
    if values.ndim > 1 and abs(values.strides[-1]) == max(abs(step) for step in values.strides):
        return np.moveaxis(np.moveaxis(values, -1, 0)[indices], 0, -1)
    return cast(Array | IntArray, np.take(values, indices, axis=-1))


def _check_output_layer(layers: Sequence[Layer], loss: LossName) -> None:
    """A loss from logits needs its activation last (as ``network_loss_and_grads`` asks)."""
    entry = LOSSES.get(loss)
    if entry is None:
        raise ValueError(f"unknown loss {loss!r}; choose one of {tuple(LOSSES)}")
    last = layers[-1] if layers else None
    if entry.from_logits and (
        not isinstance(last, Activation) or last.name != entry.output_activation
    ):
        raise ValueError(
            f"loss {loss!r} is computed from the logits of a {entry.output_activation} output "
            f"layer: the last layer must be Activation({entry.output_activation!r})"
        )


def _train_batch(
    layers: Sequence[Layer],
    loss: LossName,
    x: Array | IntArray,
    y: Array | IntArray,
    mode: Mode,
    states: list[Any],
) -> tuple[float, list[Layer | None], Array]:
    """One step's loss and gradients, and the network's output on the batch (for its metrics).

    :func:`~typedbackprop.nn.network.network_loss_and_grads`, keeping the output it throws
    away: one forward pass over every layer; a loss from logits reads the last activation's
    input ``z`` (its cache) and gives ``δ = ∂L/∂z``, where the backward pass starts, below that
    activation (whose output, the probabilities, costs one small elementwise map and is what
    the running accuracy reads, by the rule :func:`evaluate_network` follows).
    """
    entry = LOSSES[loss]
    output, caches = network_forward(layers, x, mode, states)
    if entry.from_logits:
        value, delta = entry.function(cast(ActivationCache, caches[-1]).z, y)
        grads, _ = network_backward(layers[:-1], caches[:-1], delta)
        grads.append(None)
    else:
        value, grad_output = entry.function(output, y)
        grads, _ = network_backward(layers, caches, grad_output)
    if CHECKS_ENABLED and not trusted():
        _check_gradients(layers, grads)
    return value, grads, output


def _metrics(train_metrics: TrainMetrics) -> Literal["running", "exact", "none"]:
    if train_metrics is True or train_metrics == "running":
        return "running"
    if train_metrics is False:
        return "none"
    if train_metrics == "exact":
        return "exact"
    raise ValueError(f"train_metrics must be 'running', 'exact' or a bool; got {train_metrics!r}")


def _check_settings(epochs: int, batch_size: int, learning_rate: float, momentum: float) -> None:
    if epochs < 1 or batch_size < 1 or not learning_rate > 0:
        raise ValueError(
            f"epochs, batch_size and learning_rate must be positive; got {epochs}, "
            f"{batch_size}, {learning_rate}"
        )
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must lie in [0, 1); got {momentum}")


def _check_clip(clip: float | None) -> None:
    """Refuse a ``clip`` that :func:`~typedbackprop.optimizers.clip_by_global_norm` would,
    before the first step."""
    if clip is not None and not (math.isfinite(clip) and clip > 0):
        raise ValueError(f"clip is a max_norm: positive and finite, or None; got {clip}")


def truncated(layers: Sequence[Layer], truncate: int | None) -> list[Layer]:
    """The layers with every recurrent layer's ``truncate`` setting set to ``truncate``.

    Parameters
    ----------
    layers
        Any layers; those with a ``truncate`` setting (:class:`~typedbackprop.nn.rnn.RNN`,
        :class:`~typedbackprop.nn.lstm.LSTM`, :class:`~typedbackprop.nn.gru.GRU`) are
        replaced, the others kept as they are.
    truncate
        Steps per chunk of truncated BPTT; ``None`` returns the layers unchanged (each keeps
        its own setting).

    Returns
    -------
    list
        The layers, the recurrent ones with ``truncate`` set (new records sharing the arrays).
    """
    if truncate is None:
        return list(layers)
    return [
        dataclasses.replace(layer, truncate=truncate)
        if isinstance(layer, RNN | LSTM | GRU)
        else layer
        for layer in layers
    ]


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
    train_metrics: TrainMetrics = "running",
    states: list[Any] | None = None,
    clip: float | None = None,
    truncate: int | None = None,
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
        ``"running"`` (the default, or ``True``): the running accuracy, the share of the
        epoch's examples that their minibatch's forward pass classified correctly, at no extra
        cost; ``"exact"``: the training set's loss and accuracy after every epoch (one more
        forward pass over the whole set, in evaluation mode); ``False``: no training accuracy.
        The running loss is recorded in every case.
    states
        The layers' state that is not a parameter (batch norm's running statistics), one entry
        per layer, as :func:`~typedbackprop.nn.network.initial_states` makes it: every training
        step updates it in place, and evaluation reads it. By default the loop starts from
        ``initial_states(layers)`` and keeps its states to itself.
    clip
        Clip the gradients by their global norm before every step
        (:func:`~typedbackprop.optimizers.clip_by_global_norm`, this ``max_norm``); ``None``
        (the default): no clipping.
    truncate
        Truncated BPTT: every recurrent layer (RNN, LSTM, GRU) is trained, and returned, with
        this ``truncate`` setting (:func:`truncated`), which the network's backward pass hands
        to its backpropagation through time; ``None`` (the default) keeps each layer's own.

    Returns
    -------
    layers, history
        The trained layers, and the loss and accuracies per epoch.

    Raises
    ------
    ValueError, DivergedError
        As for :func:`train`; ``ValueError`` also for a ``clip`` that is not positive and
        finite.
    """
    _check_settings(epochs, batch_size, learning_rate, momentum)
    _check_clip(clip)
    layers = truncated(layers, truncate)
    n_examples = _examples(x, y)
    if n_examples == 0:
        raise ValueError("no training examples")
    test = x_test is not None and y_test is not None
    if test:
        _examples(cast(Array, x_test), cast(Array, y_test))
    _check_output_layer(layers, loss)
    metrics = _metrics(train_metrics)
    classes = metrics != "none" and is_classification(y)
    running = classes and metrics == "running"
    one_hot = _is_one_hot(y)
    owned = [_owned_copy(layer) for layer in layers]
    optimizer = SGD(learning_rate, momentum)
    sgd_state = optimizer.init(owned)
    mode = Mode(training=True, rng=rng)
    if states is None:
        states = initial_states(owned)
    history = History()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n_examples)
        total = 0.0
        correct = 0
        predictions = 0
        try:
            # Overflow is the one floating-point error a sound network raises only when the
            # steps are too big: make it an exception, rather than a warning and then NaNs.
            # The evaluations after the epoch are included: the last step can be the one that
            # makes the parameters overflow on other examples.
            with np.errstate(over="raise", invalid="raise"):
                for start in range(0, n_examples, batch_size):
                    batch = order[start : start + batch_size]
                    y_batch = _batch(y, batch)
                    value, grads, output = _train_batch(
                        owned, loss, _batch(x, batch), y_batch, mode, states
                    )
                    if not math.isfinite(value):
                        raise FloatingPointError(f"the loss is {value}")
                    if running:  # before the step: the batch as it was trained
                        right = _predicted_correctly(output, y_batch, one_hot)
                        correct += int(np.count_nonzero(right))
                        predictions += right.size
                    if clip is not None:
                        grads, _ = clip_by_global_norm(grads, clip)
                    optimizer.step_in_place(owned, grads, sgd_state)
                    total += value * len(batch)
                history.loss.append(total / n_examples)
                if running:
                    history.train_accuracy.append(correct / predictions)
                elif classes:
                    train_loss, train_accuracy = evaluate_network(owned, loss, x, y, states)
                    history.train_loss.append(train_loss)
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
    x: Float[Array, "inp n_train"],
    y: Float[Array, "out n_train"] | Int[IntArray, " n_train"],
    *,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    momentum: float = 0.0,
    rng: np.random.Generator,
    x_test: Float[Array, "inp n_test"] | None = None,
    y_test: Float[Array, "out n_test"] | Int[IntArray, " n_test"] | None = None,
    on_epoch: Callable[[int, list[Dense], History], None] | None = None,
    train_metrics: TrainMetrics = "running",
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
        ``"running"`` (the default): the running accuracy, as each minibatch was classified
        before its step, from the forward passes training makes anyway (Keras's training
        metrics); ``"exact"``: the training set's loss and accuracy after every epoch, at the
        cost of one more forward pass over it; ``False``: no training accuracy. The running
        loss, ``history.loss``, is recorded in every case.

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
    clip: float | None = None,
    truncate: int | None = None,
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
    clip
        Clip the gradients by their global norm before every step
        (:func:`~typedbackprop.optimizers.clip_by_global_norm`, this ``max_norm``), before the
        optimizer sees them; ``None`` (the default): no clipping.
    truncate
        Truncated BPTT for every recurrent layer, as for :func:`train_network`.

    Returns
    -------
    layers, history
        The trained layers, and ``history.loss``: the loss of every step's minibatch.

    Raises
    ------
    ValueError
        For fewer than one step or example per batch, or a ``clip`` that is not positive and
        finite.
    DivergedError
        If the loss or a parameter overflows.
    """
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive; got {steps}, {batch_size}")
    _check_clip(clip)
    n_examples = _examples(x, y)
    current = truncated(layers, truncate)
    state = optimizer(1).init(current)
    mode = Mode(training=True, rng=rng)
    history = History()
    with np.errstate(over="raise", invalid="raise"):
        for step in range(1, steps + 1):
            batch = rng.integers(0, n_examples, size=batch_size)
            try:
                value, grads = network_loss_and_grads(
                    current, _batch(x, batch), _batch(y, batch), loss, mode, states
                )
                if not math.isfinite(value):
                    raise FloatingPointError(f"the loss is {value}")
                if clip is not None:
                    grads, _ = clip_by_global_norm(grads, clip)
                current, state = optimizer(step).step(current, grads, state)
            except FloatingPointError as error:
                raise DivergedError(f"training diverged at step {step} ({error})") from error
            history.loss.append(value)
            if on_step is not None:
                on_step(step, value)
    return current, history
