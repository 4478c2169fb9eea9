"""Pictures of training: the loss curve, what the network learned, the hidden representation.

matplotlib (and pillow, for GIFs) are an optional extra: ``pip install "typedbackprop[plot]"``.
Every picture colours a class the same way everywhere (points, regions, legends), from one
palette, :func:`class_colours`, and names the classes in a legend.
"""

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from typedbackprop.checking import Array
from typedbackprop.datasets import Dataset, recall_dataset
from typedbackprop.nn.gate import Gate
from typedbackprop.nn.gru import GRU, GRUCell, gru_cell_backward, gru_forward
from typedbackprop.nn.lstm import LSTM, LSTMCell, lstm_cell_backward, lstm_forward
from typedbackprop.nn.network import Dense, forward, predict
from typedbackprop.nn.rnn import RNN, RNNCell, rnn_cell_backward, rnn_forward
from typedbackprop.training import Architecture, History

__all__ = [
    "require_plotting",
    "check_image_path",
    "written_atomically",
    "figure_title",
    "accuracy_limits",
    "confusion_colours",
    "robust_limits",
    "class_colours",
    "training_figure",
    "plot_training",
    "HiddenAnimation",
    "hidden_animation",
    "animate_hidden",
    "Recurrent",
    "state_gradients",
    "state_gradient_norms",
    "recurrent_at_initialisation",
    "vanishing_gradient_example",
    "vanishing_gradient_figure",
    "plot_vanishing_gradient",
]

BINARY_COLOURS = ("tab:blue", "tab:red")
"""Class 0 and class 1 of a binary task."""
MANY_COLOURS = "tab10"
"""Up to ten classes: matplotlib's qualitative palette of ten distinct colours."""


def require_plotting(animation: bool = False) -> ModuleType:
    """``matplotlib.pyplot`` with a file-only backend, or an ``ImportError`` saying what to install.

    Parameters
    ----------
    animation
        Also require pillow, which writes the GIF frames.

    Returns
    -------
    ModuleType
        ``matplotlib.pyplot``.

    Raises
    ------
    ImportError
        ``plots need matplotlib, an optional extra: pip install "typedbackprop[plot]"``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no window, no display needed
        import matplotlib.pyplot as pyplot

        if animation:
            import PIL  # noqa: F401  (matplotlib's PillowWriter needs it)
    except ImportError as error:
        what = "animations need matplotlib and pillow" if animation else "plots need matplotlib"
        raise ImportError(
            f'{what}, an optional extra: pip install "typedbackprop[plot]" (in a clone of the '
            f'repository: pip install -e ".[plot]"; {error})'
        ) from error
    return pyplot


def check_image_path(path: str | os.PathLike[str], suffixes: tuple[str, ...]) -> None:
    """Raise ``ValueError`` unless ``path`` ends in one of ``suffixes`` in an existing directory.

    Parameters
    ----------
    path
        The image file to write.
    suffixes
        The accepted file name endings, lower case with the dot (``(".png", ".pdf")``).

    Raises
    ------
    ValueError
        Before any training time is spent, rather than after: for another ending, a missing
        directory, or a path that is a directory.
    """
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise ValueError(f"{target}: the file name must end in {' or '.join(suffixes)}")
    if not target.parent.is_dir():
        raise ValueError(f"{target}: there is no directory {target.parent}")
    if target.is_dir():
        raise ValueError(f"{target} is a directory: name a file in it")


@contextmanager
def written_atomically(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary name next to ``path`` to write to; renamed to ``path`` only once it is whole.

    Parameters
    ----------
    path
        The file to write.

    Yields
    ------
    Path
        A name in the same directory, ending as ``path`` does (so that a writer that picks the
        format by the ending picks the same one): ``.d.gif.1f2e3d4c.part.gif`` for ``d.gif``.

    Notes
    -----
    If the block raises anything, ``KeyboardInterrupt`` (Ctrl-C) included, the temporary file is
    removed and ``path`` is left as it was: absent, or the previous picture, never a half-written
    one (matplotlib's movie writers write the frames grabbed so far when interrupted, which
    makes a GIF that looks whole). The rename is ``os.replace``, atomic within a directory.
    """
    target = Path(path)
    partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part{target.suffix}")
    try:
        yield partial
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def class_colours(classes: int) -> list[Any]:
    """One colour per class: blue and red for two classes, ``tab10`` for up to ten.

    Parameters
    ----------
    classes
        The number of classes.

    Returns
    -------
    list
        Matplotlib colours, class ``k``'s at index ``k``.

    Notes
    -----
    The decision regions, the points and the legends of every picture use these, so that a
    class has one colour everywhere. Past ten classes the colours repeat.
    """
    if classes <= 2:
        return list(BINARY_COLOURS[:classes])
    pyplot = require_plotting()
    palette = pyplot.get_cmap(MANY_COLOURS)
    return [palette(label % palette.N) for label in range(classes)]


def plural(count: int, word: str) -> str:
    """``"1 unit"``, ``"3 units"``."""
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _predicted_class(outputs: NDArray[Any]) -> NDArray[Any]:
    """Argmax over the output units, or an output above ½ for a single unit."""
    classes: NDArray[Any]
    if outputs.shape[0] > 1:
        classes = np.argmax(outputs, axis=0)
    else:
        classes = (outputs[0] > 0.5).astype(int)
    return classes


def _labels(y: NDArray[Any]) -> NDArray[Any]:
    """Class labels ``(batch,)`` from labels or from 0/1 targets ``(1, batch)``."""
    return y if y.ndim == 1 else (y[0] > 0.5).astype(int)


ACTIVATION_WORDS: dict[str, str] = {
    "sigmoid": "sigmoid",
    "tanh": "tanh",
    "relu": "ReLU",
    "leaky_relu": "leaky ReLU",
    "identity": "linear",
    "softmax": "softmax",
}
"""How a picture names each activation of a perceptron (its code name is ``leaky_relu``)."""

LOSS_WORDS: dict[str, str] = {
    "squared_error": "squared error",
    "binary_cross_entropy": "binary cross-entropy",
    "cross_entropy": "cross-entropy",
    "token_cross_entropy": "cross-entropy per token",
}
"""How a picture names each loss."""


def figure_title(architecture: Architecture, data: Dataset) -> str:
    """The network and its data set in words, as a figure in a report would caption it.

    Parameters
    ----------
    architecture
        The network's sizes, activations and loss.
    data
        The data set it was trained on.

    Returns
    -------
    str
        ``"Digits: 64 inputs, one hidden layer of 64 ReLU units, 10 softmax outputs;
        cross-entropy loss"``, where :meth:`Architecture.describe` says
        ``"64-64-10 relu/softmax, cross_entropy"``.
    """
    *_, outputs = architecture.sizes
    inputs, *hidden = architecture.sizes[:-1]
    unit = f"{ACTIVATION_WORDS[architecture.activation]} unit"
    if not hidden:
        layers = "no hidden layer"
    elif len(hidden) == 1:
        layers = f"one hidden layer of {plural(hidden[0], unit)}"
    else:
        sizes = ", ".join(str(size) for size in hidden[:-1])
        layers = f"hidden layers of {sizes} and {hidden[-1]} {unit}s"
    output = plural(outputs, f"{ACTIVATION_WORDS[architecture.output_activation]} output")
    loss = LOSS_WORDS[architecture.loss]
    return f"{data.name.capitalize()}: {plural(inputs, 'input')}, {layers}, {output}; {loss} loss"


LOG_SCALE_RANGE = 10.0
"""The loss axis is logarithmic when the largest loss is at least this many times the smallest:
a decade or more to show; within less, its ticks read better as plain numbers."""

ACCURACY_MARGIN = 0.1
"""Room above and below the accuracy curve, as a share of its range (at least one point in a
hundred): the axis spans the accuracies reached, not 0 to 1, where 93% and 97% would touch."""


def accuracy_limits(accuracies: list[float]) -> tuple[float, float]:
    """The accuracy axis's limits: the accuracies reached, with a margin, never below 0.

    Parameters
    ----------
    accuracies
        The test accuracy per epoch, each in ``[0, 1]``.

    Returns
    -------
    tuple of float
        ``(low, high)``: ``min - margin`` and ``max + margin``, the margin
        :data:`ACCURACY_MARGIN` of the range or 0.01, whichever is larger; but never below 0,
        nor more than a quarter margin above 1 (room for a curve at 100%, not a tick at 101%).
    """
    low, high = min(accuracies), max(accuracies)
    margin = max(ACCURACY_MARGIN * (high - low), 0.01)
    return max(low - margin, 0.0), min(high + margin, 1.0 + margin / 4)


def _epoch_axis(axis: Any, epochs: int) -> None:
    from matplotlib.ticker import MaxNLocator

    # Epochs are whole numbers: ticks at whole numbers, in steps of 1, 2, 5 or 10 (times 10^k),
    # and half an epoch of room either side of a few (one epoch: the single tick 1).
    axis.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    if epochs <= 30:
        axis.set_xlim(0.5, epochs + 0.5)
    axis.grid(alpha=0.3)


def _loss_panel(axis: Any, history: History, architecture: Architecture) -> None:
    epochs = np.arange(1, len(history.loss) + 1)
    marker = "o" if len(epochs) <= 30 else None  # a few epochs: show each one as a point
    axis.plot(epochs, history.loss, marker=marker, markersize=3, label="training loss")
    if history.test_loss:
        axis.plot(
            epochs, history.test_loss, marker=marker, markersize=3, linestyle="--",
            label="test loss",
        )  # fmt: skip
    _epoch_axis(axis, len(epochs))
    axis.set_ylabel(f"{LOSS_WORDS[architecture.loss]}\n(mean per example)")
    losses = history.loss + history.test_loss
    if min(losses) > 0 and max(losses) >= LOG_SCALE_RANGE * min(losses):
        axis.set_yscale("log")
    else:  # within a factor of ten: plain numbers (a log axis would label 1.265×10⁻¹ ...)
        axis.ticklabel_format(axis="y", style="plain", useOffset=False)
    # Above the panel, so that it covers no curve.
    axis.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)


def _accuracy_panel(axis: Any, history: History) -> None:
    from matplotlib.ticker import PercentFormatter

    epochs = np.arange(1, len(history.test_accuracy) + 1)
    marker = "o" if len(epochs) <= 30 else None
    axis.plot(
        epochs, history.test_accuracy, marker=marker, markersize=3, color="tab:green",
        label="test accuracy",
    )  # fmt: skip
    _epoch_axis(axis, len(epochs))
    axis.set_xlabel("epoch")
    axis.set_ylabel("test accuracy")
    low, high = accuracy_limits(history.test_accuracy)
    axis.set_ylim(low, high)
    # Percentages with as many decimals as the ticks' spacing needs: 92%, or 98.5% on a
    # narrow range.
    decimals = 0 if high - low >= 0.05 else 1 if high - low >= 0.005 else 2
    axis.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=decimals))


def _regions_panel(
    axis: Any, layers: list[Dense], architecture: Architecture, data: Dataset
) -> None:
    from matplotlib.colors import ListedColormap

    x = data.x_train
    colours = class_colours(data.classes)
    low, high = x.min(axis=1) - 0.3, x.max(axis=1) + 0.3
    grid_0, grid_1 = np.meshgrid(
        np.linspace(low[0], high[0], 200), np.linspace(low[1], high[1], 200)
    )
    points = np.stack([grid_0.ravel(), grid_1.ravel()])  # (2, points): features first
    outputs = predict(layers, points, architecture.activation, architecture.output_activation)
    predicted = _predicted_class(outputs).reshape(grid_0.shape)
    levels = np.arange(data.classes + 1) - 0.5  # one band per class, whole numbers inside
    axis.contourf(grid_0, grid_1, predicted, levels=levels, cmap=ListedColormap(colours), alpha=0.2)
    axis.contour(grid_0, grid_1, predicted, levels=levels[1:-1], colors="0.3", linewidths=0.8)
    labels = _labels(data.y_train)
    for label in range(data.classes):
        chosen = labels == label
        axis.scatter(
            x[0, chosen], x[1, chosen], s=8, color=colours[label], label=data.class_name(label)
        )
    axis.set_title("decision regions, training data")
    axis.set_xlabel("$x_1$")
    axis.set_ylabel("$x_2$")
    axis.set_aspect("equal")  # a circle drawn as a circle
    _legend_beside(axis, "class\n(region: predicted)")


JITTER = 0.05
"""How far up or down a training point of the 1-D picture is drawn from its target, at most."""


def _output_panel(
    axis: Any, layers: list[Dense], architecture: Architecture, data: Dataset
) -> None:
    x = data.x_train
    colours = class_colours(data.classes)
    inputs = np.linspace(x.min() - 0.5, x.max() + 0.5, 400)[np.newaxis, :]  # (1, points)
    outputs = predict(layers, inputs, architecture.activation, architecture.output_activation)
    labels = _labels(data.y_train)
    # Wherever the network is right its output lies on the targets, 0 or 1: the points are
    # spread a little up and down about their target (jittered, and said so), faint, under
    # the line, so that both are seen.
    spread = np.random.default_rng(0).uniform(-JITTER, JITTER, size=labels.shape)
    for label in range(data.classes):
        chosen = labels == label
        axis.scatter(
            x[0, chosen], labels[chosen] + spread[chosen], s=6, alpha=0.4, color=colours[label],
            linewidths=0, zorder=2,
            label=f"{data.class_name(label)}: target {label}",
        )  # fmt: skip
    for unit in range(outputs.shape[0]):
        name = "network output" + (f" {unit}" if outputs.shape[0] > 1 else "")
        axis.plot(inputs[0], outputs[unit], color="black", linewidth=1.5, label=name, zorder=3)
    axis.set_ylim(-0.1, 1.1)  # room around the targets 0 and 1, which are not on the frame
    axis.set_title("the network's output")
    axis.set_xlabel("$x$")
    axis.set_ylabel("network output; training target")
    axis.grid(alpha=0.3)
    _legend_beside(axis, f"training data\n(jittered ±{JITTER:g})")


def _legend_beside(axis: Any, title: str) -> None:
    """The legend to the right of the panel, not on it: inside, it would cover points."""
    axis.legend(
        loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False,
        title=title, alignment="left", markerscale=2,
    )  # fmt: skip


CONFUSION_FONT_SIZE = 10
"""The size of every count in the confusion matrix, right or wrong: a single mistake is what a
reader looks for, so it is as large as the diagonal's counts."""

MISTAKE_FLOOR = 0.3
"""The lightest shade of red a cell of mistakes gets (of the ``Reds`` colour map), so that one
mistake among 35 is seen, not a near-white square."""


def confusion_colours(counts: NDArray[Any]) -> NDArray[Any]:
    """The colour of each cell of a confusion matrix: blue for right, red for mistakes.

    Parameters
    ----------
    counts
        ``counts[true, predicted]``, examples per pair of classes.

    Returns
    -------
    ndarray
        RGBA ``(classes, classes, 4)``: the diagonal in ``Blues`` by the share of its row it
        holds; a nonzero cell off it in ``Reds``, from :data:`MISTAKE_FLOOR` up by its share;
        an empty cell white.
    """
    pyplot = require_plotting()
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    shares = counts / totals
    right = pyplot.get_cmap("Blues")(shares)
    wrong = pyplot.get_cmap("Reds")(MISTAKE_FLOOR + (1 - MISTAKE_FLOOR) * shares)
    diagonal = np.eye(len(counts), dtype=bool)[..., np.newaxis]
    colours: NDArray[Any] = np.where(diagonal, right, wrong)
    colours[counts == 0] = (1.0, 1.0, 1.0, 1.0)
    return colours


def _confusion_panel(
    axis: Any, layers: list[Dense], architecture: Architecture, data: Dataset
) -> None:
    outputs = predict(layers, data.x_test, architecture.activation, architecture.output_activation)
    predicted, true = _predicted_class(outputs), _labels(data.y_test)
    counts = np.zeros((data.classes, data.classes), dtype=int)
    np.add.at(counts, (true, predicted), 1)
    colours = confusion_colours(counts)
    axis.imshow(colours)
    for (row, column), count in np.ndenumerate(counts):
        if count:
            red, green, blue, _ = colours[row, column]
            dark = 0.299 * red + 0.587 * green + 0.114 * blue < 0.5  # perceived brightness
            axis.text(
                column, row, str(count), ha="center", va="center",
                fontsize=CONFUSION_FONT_SIZE, color="white" if dark else "black",
            )  # fmt: skip
    names = [data.class_name(label) for label in range(data.classes)]
    if data.classes > 5:
        axis.set_xticks(range(data.classes), names)
    else:  # a few long names (iris's species): slanted, so that they do not overlap
        axis.set_xticks(range(data.classes), names, rotation=30, ha="right")
    axis.set_yticks(range(data.classes), names)
    axis.tick_params(length=0)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    right, total = int(np.trace(counts)), int(counts.sum())
    title = f"test set: {right} of {total} right ({right / max(total, 1):.1%})"
    if right < total:
        title += f"; {plural(total - right, 'mistake')} in red"
    axis.set_title(title)


LEARNED_PANELS: dict[int, Callable[[Any, list[Dense], Architecture, Dataset], None]] = {
    1: _output_panel,
    2: _regions_panel,
}
"""What the network learned, by number of input features; the confusion matrix otherwise."""


def training_figure(
    history: History, layers: list[Dense], architecture: Architecture, data: Dataset
) -> Any:
    """The figure :func:`plot_training` writes (a matplotlib ``Figure``; close it when done).

    Parameters
    ----------
    history
        The training history; empty when nothing was trained (a loaded checkpoint).
    layers
        The trained network.
    architecture
        Its activations and loss.
    data
        The data it was trained on.

    Returns
    -------
    matplotlib.figure.Figure
        Up to three panels: the loss per epoch and below it the test accuracy per epoch (only
        if there was an epoch), and to their right what the network learned (see
        :func:`plot_training`). Its title is :func:`figure_title`.
    """
    pyplot = require_plotting()
    learned = LEARNED_PANELS.get(data.x_train.shape[0], _confusion_panel)
    # The left column: the loss per epoch above the test accuracy per epoch (only what there
    # is: nothing trained, a loaded checkpoint, has neither); the right: what was learned.
    left = (["loss"] if history.loss else []) + (["accuracy"] if history.test_accuracy else [])
    if left:
        mosaic = [[name, "learned"] for name in left]
        ratios = [3, 2] if len(left) == 2 else [1]
        figure, axes = pyplot.subplot_mosaic(
            mosaic, figsize=(11, 4.8), layout="constrained", height_ratios=ratios,
            sharex=False,
        )  # fmt: skip
    else:
        figure, axes = pyplot.subplot_mosaic(
            [["learned"]], figsize=(5.5, 4.8), layout="constrained"
        )
    figure.suptitle(figure_title(architecture, data), fontsize=11)
    if "loss" in axes:
        _loss_panel(axes["loss"], history, architecture)
    if "accuracy" in axes:
        _accuracy_panel(axes["accuracy"], history)
        if "loss" in axes:  # one epoch axis for both: its label under the lower one
            axes["accuracy"].sharex(axes["loss"])
            axes["loss"].tick_params(labelbottom=False)
    if "loss" in axes and "accuracy" not in axes:
        axes["loss"].set_xlabel("epoch")
    learned(axes["learned"], layers, architecture, data)
    return figure


def plot_training(
    path: str | os.PathLike[str],
    history: History,
    layers: list[Dense],
    architecture: Architecture,
    data: Dataset,
) -> None:
    """Draw the loss per epoch and what the network learned, to an image file.

    Parameters
    ----------
    path
        The image file to write; its ending picks the format (PNG, PDF, SVG, ...).
    history
        The training history; empty when nothing was trained (a loaded checkpoint).
    layers
        The trained network.
    architecture
        Its activations and loss.
    data
        The data it was trained on.

    Notes
    -----
    The left column has the training and test loss per epoch (log scale over a decade or
    more) and under it the test accuracy per epoch, on an axis that spans the accuracies
    reached (:func:`accuracy_limits`), with whole-number epochs; with no epoch trained it is
    left out, rather than drawn empty. The right panel shows what the network learned: for two
    features, the class it predicts at every point of the plane (its decision regions, in the
    colours of the classes' points) under the training points; for one feature, its output
    drawn over the training points, jittered about their targets; otherwise, the confusion
    matrix of the test set (true class against predicted class; mistakes in red, every count
    at one readable size). Legends sit beside a panel, never on its points. The title says
    what was trained in words (:func:`figure_title`). The file is written under a temporary
    name and renamed once whole (:func:`written_atomically`): Ctrl-C leaves no half a file.
    """
    pyplot = require_plotting()
    figure = training_figure(history, layers, architecture, data)
    try:
        with written_atomically(path) as partial:
            figure.savefig(partial, dpi=100)
    finally:
        pyplot.close(figure)


@dataclass(frozen=True)
class HiddenAnimation:
    """The figure of :func:`animate_hidden` and the function that draws each frame.

    Parameters
    ----------
    figure
        The matplotlib ``Figure``.
    draw
        ``draw(frame)`` updates the figure to snapshot ``frame``.
    frames
        The number of frames (snapshots).
    """

    figure: Any
    draw: Any
    frames: int


def _share(fraction: float) -> str:
    """``"37%"``; ``"<1%"`` for a share that rounds to 0 but is not 0."""
    return "<1%" if 0 < fraction < 0.005 else f"{fraction:.0%}"


def _representation(
    hidden: list[NDArray[Any]],
) -> tuple[list[NDArray[Any]], list[tuple[str, ...]]]:
    """The coordinates to draw for each snapshot's hidden activations, and its axis names.

    One, two or three units are drawn as they are; more are projected on the first two
    principal components of the last snapshot (the same projection in every frame), and each
    frame's axis names say how much of that frame's variance each component holds (a direction
    that holds most of it at the end may hold little at the start).
    """
    units = hidden[0].shape[0]
    if units <= 3:
        units_named = tuple(f"hidden unit {unit + 1}" for unit in range(units))
        return hidden, [units_named] * len(hidden)
    final = hidden[-1] - hidden[-1].mean(axis=1, keepdims=True)
    basis, _, _ = np.linalg.svd(final, full_matrices=False)
    projected: list[NDArray[Any]] = []
    names: list[tuple[str, ...]] = []
    for h in hidden:
        centred = h - h.mean(axis=1, keepdims=True)
        coordinates = basis[:, :2].T @ centred
        total = max(float(np.sum(centred**2)), np.finfo(float).tiny)
        projected.append(coordinates)
        names.append(
            tuple(
                f"principal component {k + 1} of the last frame "
                f"({_share(float(np.sum(coordinates[k] ** 2)) / total)} of this frame's variance)"
                for k in range(2)
            )
        )
    return projected, names


ROBUST_QUANTILE = 0.005
"""The axes of the hidden representation span the points between this quantile and its
complement (pooled over every frame), reaching out further only as far as :data:`ROBUST_REACH`."""

ROBUST_REACH = 0.25
"""How far past the quantiles the axes may reach to take in more points, as a share of the span
between them: a tail is shown whole, a few outliers far away are not (they would squash the
rest into a third of the picture)."""

THREE_D_TICKS = 4
"""At most this many ticks on each axis of the 3-D picture, so that their labels never touch."""

THREE_D_LABEL_PAD = 12
"""The room between a 3-D axis's tick labels and its name, in points."""


def robust_limits(points: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
    """Axis limits for ``points`` that a few outliers do not stretch.

    Parameters
    ----------
    points
        ``(dimensions, n)``: one row per axis, one column per point.

    Returns
    -------
    tuple of ndarray
        ``(low, high)``, one limit per axis: the :data:`ROBUST_QUANTILE` quantile and its
        complement, reaching out by up to :data:`ROBUST_REACH` of the span between them where
        there are points to take in (never past the outermost point), plus a 5% margin.
    """
    quantile_low, quantile_high = np.quantile(
        points, [ROBUST_QUANTILE, 1 - ROBUST_QUANTILE], axis=1
    )
    reach = ROBUST_REACH * (quantile_high - quantile_low)
    low = np.maximum(points.min(axis=1), quantile_low - reach)
    high = np.minimum(points.max(axis=1), quantile_high + reach)
    margin = 0.05 * (high - low) + 1e-3
    return low - margin, high + margin


def hidden_animation(
    snapshots: list[list[Dense]],
    architecture: Architecture,
    data: Dataset,
    labels: list[str] | None = None,
) -> HiddenAnimation:
    """The figure :func:`animate_hidden` writes, and its frame-drawing function.

    Parameters
    ----------
    snapshots
        The network at successive moments of training, first the initial one.
    architecture
        Its activations and loss.
    data
        The training data, coloured by class.
    labels
        A caption per snapshot (``"epoch 20"``); by default its index.

    Returns
    -------
    HiddenAnimation
        The figure (close it when done), ``draw(frame)``, and the number of frames.

    Raises
    ------
    ValueError
        For a network without hidden layers, or no snapshots.
    """
    pyplot = require_plotting(animation=True)
    from matplotlib.ticker import MaxNLocator

    if len(architecture.sizes) < 3:
        raise ValueError("a network without hidden layers has no hidden representation to draw")
    if not snapshots:
        raise ValueError("no snapshots to animate")
    hidden = [
        forward(layers, data.x_train, architecture.activation, architecture.output_activation)[-2].a
        for layers in snapshots
    ]
    coordinates, frame_axis_names = _representation(hidden)
    axis_names = frame_axis_names[0]
    dimensions = len(axis_names)
    captions = labels or [f"snapshot {index}" for index in range(len(hidden))]
    classes = _labels(data.y_train)
    colours = class_colours(data.classes)
    point_colours = [colours[label] for label in classes]
    everything = np.concatenate(coordinates, axis=1)  # every frame's points: fixed axes
    low, high = robust_limits(everything)
    if dimensions == 3:
        # Laid out by hand: constrained layout leaves a 3-D cube small in a corner. The cube
        # fills the left, the legend the top right; the tick labels and axis names are kept
        # apart by few ticks and a wide label pad.
        figure = pyplot.figure(figsize=(6.4, 5.4))
        axis = figure.add_axes((0.03, 0.07, 0.94, 0.77), projection="3d")
        scatter = axis.scatter(
            *coordinates[0], c=point_colours, s=6, depthshade=False, axlim_clip=True
        )
        axis.set_ylim(low[1], high[1])
        axis.set_zlim(low[2], high[2])
        axis.set_ylabel(axis_names[1], labelpad=THREE_D_LABEL_PAD)
        axis.set_zlabel(axis_names[2], labelpad=THREE_D_LABEL_PAD)
        axis.set_box_aspect(None, zoom=1.1)
        for side in (axis.xaxis, axis.yaxis, axis.zaxis):
            side.set_major_locator(MaxNLocator(THREE_D_TICKS))
    else:
        figure = pyplot.figure(figsize=(6, 5.5), layout="constrained")
        axis = figure.add_subplot()
    if dimensions == 1:
        # One unit: its value along x, and each class on a row of its own.
        rows = classes + np.random.default_rng(0).uniform(-0.2, 0.2, size=classes.shape)
        scatter = axis.scatter(coordinates[0][0], rows, c=point_colours, s=8)
        axis.set_yticks(range(data.classes), [data.class_name(k) for k in range(data.classes)])
        axis.set_ylim(-0.5, data.classes - 0.5)
        axis.set_ylabel("class")
    elif dimensions == 2:
        scatter = axis.scatter(coordinates[0][0], coordinates[0][1], c=point_colours, s=8)
        axis.set_ylim(low[1], high[1])
        axis.set_ylabel(axis_names[1])
    axis.set_xlim(low[0], high[0])
    axis.set_xlabel(axis_names[0], labelpad=THREE_D_LABEL_PAD if dimensions == 3 else None)
    handles = [
        axis.scatter([], [], color=colours[label], s=20, label=data.class_name(label))
        for label in range(data.classes)
    ]
    if dimensions == 3:  # a row above the cube, under the title, leaving the cube the width
        figure.legend(
            handles=handles, loc="upper center", bbox_to_anchor=(0.5, 1.0), frameon=False,
            ncol=min(data.classes, 5), title="class", title_fontsize=9, fontsize=9,
        )  # fmt: skip
    else:
        figure.legend(handles=handles, loc="outside right upper", title="class", frameon=False)
    shown = [
        np.all((points >= low[:, np.newaxis]) & (points <= high[:, np.newaxis]), axis=0)
        for points in coordinates
    ]
    name = data.name.capitalize()

    def draw(frame: int) -> tuple[Any]:
        points = coordinates[frame]
        axis.set_xlabel(frame_axis_names[frame][0])
        if dimensions == 1:
            scatter.set_offsets(np.column_stack([points[0], rows]))
        elif dimensions == 2:
            scatter.set_offsets(points.T)
            axis.set_ylabel(frame_axis_names[frame][1])
        else:
            scatter._offsets3d = (points[0], points[1], points[2])
            axis.view_init(elev=20, azim=-60 + 90 * frame / max(len(coordinates) - 1, 1))
        title = (
            f"{name}: the last hidden layer ({plural(hidden[0].shape[0], 'unit')}), "
            f"{captions[frame]}"
        )
        beyond = int(np.sum(~shown[frame]))
        if beyond:
            title += f"\n{beyond} of {plural(points.shape[1], 'point')} lie beyond the axes"
        axis.set_title(title, fontsize=10)
        return (scatter,)

    draw(0)
    return HiddenAnimation(figure, draw, len(coordinates))


def animate_hidden(
    path: str | os.PathLike[str],
    snapshots: list[list[Dense]],
    architecture: Architecture,
    data: Dataset,
    labels: list[str] | None = None,
) -> None:
    """Animate how the last hidden layer represents the training data as training goes on.

    Parameters
    ----------
    path
        The GIF file to write.
    snapshots
        The network at successive moments of training, first the initial one.
    architecture
        Its activations and loss.
    data
        The training data, coloured by class.
    labels
        A caption per snapshot (``"epoch 20"``); by default its index.

    Raises
    ------
    ValueError
        For a network without hidden layers, or no snapshots.

    Notes
    -----
    Each frame plots the columns of the last hidden activation ``a_{L-1}`` (features first, so
    one column per example) as points, coloured by class with a legend of the classes: every
    unit when it has one (its value, a row per class), two, or three (in 3-D, turning slowly);
    otherwise its first two principal components at the end of training, the same projection
    in every frame, each axis saying how much of that frame's variance it holds. Watching the
    classes pull apart is watching the network make the data linearly separable for its output
    layer. The axes are the same in every frame, from :func:`robust_limits` over all of them,
    so that a few outliers do not squash the rest; a frame with points beyond them says how
    many. The GIF is written under a temporary name and renamed once every frame is in it
    (:func:`written_atomically`): interrupted, it leaves no GIF that looks whole but is not.
    """
    pyplot = require_plotting(animation=True)
    from matplotlib.animation import FuncAnimation, PillowWriter

    animation = hidden_animation(snapshots, architecture, data, labels)
    movie = FuncAnimation(animation.figure, animation.draw, frames=animation.frames, blit=False)
    try:
        with written_atomically(path) as partial:
            movie.save(os.fspath(partial), writer=PillowWriter(fps=8))
    finally:
        pyplot.close(animation.figure)


# --- The vanishing gradient: ‖∂L/∂h_t‖ against t, for the recurrent layers ----------------------

Recurrent = RNN | LSTM | GRU
"""A recurrent sequence layer: the tanh RNN, the LSTM or the GRU."""


def _rnn_step_back(grad_state: tuple[Array, ...], step: Any) -> tuple[Array, ...]:
    return (rnn_cell_backward(grad_state[0], step)[2],)


def _lstm_step_back(grad_state: tuple[Array, ...], step: Any) -> tuple[Array, ...]:
    grad_h, grad_c = lstm_cell_backward((grad_state[0], grad_state[1]), step)[2]
    return grad_h, grad_c


def _gru_step_back(grad_state: tuple[Array, ...], step: Any) -> tuple[Array, ...]:
    return (gru_cell_backward(grad_state[0], step)[2],)


RECURRENT_STEPS: dict[type, tuple[Callable[..., Any], Callable[..., tuple[Array, ...]], int]] = {
    RNN: (rnn_forward, _rnn_step_back, 1),
    LSTM: (lstm_forward, _lstm_step_back, 2),
    GRU: (gru_forward, _gru_step_back, 1),
}
"""Each recurrent layer's forward pass, one step of its backward pass (the cell's backward,
returning the previous state's gradient), and how many arrays its state holds."""


def state_gradients(layer: Recurrent, x: Array, grad_last_state: Array) -> list[Array]:
    """``∂L/∂h_t`` for every step ``t``, for a loss that reads the last hidden state alone.

    Parameters
    ----------
    layer
        An :class:`~typedbackprop.nn.rnn.RNN`, :class:`~typedbackprop.nn.lstm.LSTM` or
        :class:`~typedbackprop.nn.gru.GRU`.
    x
        The input sequence, ``"features seq batch"``.
    grad_last_state
        ``∂L/∂h_{seq−1}``, ``"hidden batch"``: the loss reads no other output (for the LSTM,
        not the last cell state either).

    Returns
    -------
    list of arrays
        ``∂L/∂h_t`` for ``t = 0, …, seq − 1``, each ``"hidden batch"``.

    Notes
    -----
    The loop of the layer's backward pass (:func:`~typedbackprop.nn.rnn.rnn_backward` and its
    twins) with no gradient on the outputs but the last: each step's cell backward carries
    ``∂L/∂h_t`` to ``∂L/∂h_{t−1}`` (the LSTM's carries ``∂L/∂c_t`` too, from 0 at the last
    step), so the list is what that loop holds in ``grad_state`` step after step. For the tanh
    RNN ``∂L/∂h_{t−1} = W_hhᵀ ((1 − h_t²) ⊙ ∂L/∂h_t)``: a product of ``seq − 1 − t`` such
    Jacobians, whose norm shrinks geometrically when they contract.
    """
    forward, step_back, arrays = RECURRENT_STEPS[type(layer)]
    _, cache = forward(layer, x)
    grad_state = (grad_last_state, *(np.zeros_like(grad_last_state) for _ in range(arrays - 1)))
    grads = [grad_last_state]
    for t in reversed(range(1, x.shape[1])):
        grad_state = step_back(grad_state, cache.steps[t])
        grads.append(grad_state[0])
    return grads[::-1]


def state_gradient_norms(layer: Recurrent, x: Array, grad_last_state: Array) -> NDArray[Any]:
    """``‖∂L/∂h_t‖`` (the Frobenius norm over hidden and batch) for ``t = 0, …, seq − 1``; see
    :func:`state_gradients`."""
    return np.array([np.linalg.norm(grad) for grad in state_gradients(layer, x, grad_last_state)])


def recurrent_at_initialisation(
    kind: str, features: int, hidden: int, rng: np.random.Generator, forget_bias: float = 0.0
) -> Recurrent:
    """A fresh ``"rnn"``, ``"lstm"`` or ``"gru"`` layer, initialised as PyTorch initialises one.

    Parameters
    ----------
    kind
        ``"rnn"``, ``"lstm"`` or ``"gru"``.
    features, hidden
        The sizes of the input and of the state.
    rng
        Draws the weights.
    forget_bias
        Added to the LSTM forget gate's ``b_ih`` (so to ``b_if + b_hf``); ignored otherwise.

    Returns
    -------
    RNN, LSTM or GRU
        Every weight and bias drawn uniformly from ``[−1/√hidden, 1/√hidden]``, as
        ``torch.nn.RNN``, ``LSTM`` and ``GRU`` draw theirs.
    """
    bound = 1.0 / np.sqrt(hidden)

    def gate(bias: float = 0.0) -> Gate:
        W_ih, b_ih, W_hh, b_hh = (
            rng.uniform(-bound, bound, size)
            for size in ((hidden, features), hidden, (hidden, hidden), hidden)
        )
        return Gate(W_ih, b_ih + bias, W_hh, b_hh)

    if kind == "rnn":
        only = gate()
        return RNN(RNNCell(only.W_ih, only.b_ih, only.W_hh, only.b_hh))
    if kind == "lstm":
        return LSTM(LSTMCell(gate(), gate(forget_bias), gate(), gate()))
    if kind == "gru":
        return GRU(GRUCell(gate(), gate(), gate()))
    raise ValueError(f"unknown recurrent layer {kind!r}: rnn, lstm or gru")


def vanishing_gradient_example(
    seq: int = 30, hidden: int = 32, batch: int = 16, seed: int = 0
) -> tuple[dict[str, Recurrent], Array, Array]:
    """The layers, input and last-state gradient of the docs' figure of the vanishing gradient.

    Parameters
    ----------
    seq, hidden, batch
        The recall task's sequence length, the state's size, and how many sequences.
    seed
        Seeds the data, the weights and the gradient.

    Returns
    -------
    layers, x, grad_last_state
        A tanh RNN, a GRU and an LSTM at PyTorch's initialisation, and two LSTMs with a
        forget-gate bias of 1 and 3 (:func:`recurrent_at_initialisation`), by their label;
        ``batch`` recall sequences (:func:`~typedbackprop.datasets.recall_dataset`) one-hot,
        ``"vocab seq batch"``; and a random ``∂L/∂h_{seq−1}`` of norm 1, the gradient of the loss
        ``L = Σ grad_last_state ⊙ h_{seq−1}``, which reads the last state alone.
    """
    rng = np.random.default_rng(seed)
    data = recall_dataset(length=seq, n_train=batch, n_test=1, seed=seed)
    vocab = data.vocab
    x = np.eye(vocab)[data.x_train].transpose(2, 0, 1)  # (seq, batch) ids -> (vocab, seq, batch)
    layers = {
        "tanh RNN": recurrent_at_initialisation("rnn", vocab, hidden, rng),
        "GRU": recurrent_at_initialisation("gru", vocab, hidden, rng),
        "LSTM, forget bias 0": recurrent_at_initialisation("lstm", vocab, hidden, rng),
        "LSTM, forget bias 1": recurrent_at_initialisation("lstm", vocab, hidden, rng, 1.0),
        "LSTM, forget bias 3": recurrent_at_initialisation("lstm", vocab, hidden, rng, 3.0),
    }
    grad_last_state = rng.standard_normal((hidden, batch))
    return layers, x, grad_last_state / np.linalg.norm(grad_last_state)


def vanishing_gradient_figure(norms: dict[str, NDArray[Any]]) -> Any:
    """The figure :func:`plot_vanishing_gradient` writes (a matplotlib ``Figure``; close it).

    Parameters
    ----------
    norms
        ``‖∂L/∂h_t‖`` for ``t = 0, …, seq − 1`` (:func:`state_gradient_norms`), by the line's
        label.

    Returns
    -------
    matplotlib.figure.Figure
        One panel: a line per model against the step ``t`` on a log scale, the legend beside it.
    """
    pyplot = require_plotting()
    figure, axis = pyplot.subplots(figsize=(9, 4.8), layout="constrained")
    seq = max(len(values) for values in norms.values())
    for label, values in norms.items():
        axis.plot(np.arange(len(values)), values, marker="o", markersize=3, label=label)
    axis.set_yscale("log")
    axis.set_xlabel("step t")
    axis.set_ylabel(r"$\|\partial L / \partial h_t\|$ (log scale)")
    axis.set_xlim(-0.5, seq - 0.5)
    axis.grid(alpha=0.3, which="major")
    axis.set_title(
        f"How much gradient reaches the state $h_t$ from a loss on the last step (t = {seq - 1}), "
        "at initialisation",
        fontsize=11,
    )
    _legend_beside(axis, "model")
    return figure


def plot_vanishing_gradient(
    path: str | os.PathLike[str], layers: dict[str, Recurrent], x: Array, grad_last_state: Array
) -> None:
    """Draw ``‖∂L/∂h_t‖`` against ``t`` for each layer, on a log scale, to an image file.

    Parameters
    ----------
    path
        The image file to write; its ending picks the format (PNG, PDF, SVG, ...).
    layers
        Recurrent layers by their legend's label, all with the same ``hidden``: the same
        ``grad_last_state`` starts every line.
    x
        The input sequence, ``"features seq batch"``.
    grad_last_state
        ``∂L/∂h_{seq−1}``: the loss reads the last state alone.

    Notes
    -----
    Each line is :func:`state_gradient_norms`: how much of the loss's gradient reaches step
    ``t``, the signal by which the weights learn what the input at ``t`` should leave in the
    state. Written under a temporary name and renamed once whole (:func:`written_atomically`).
    """
    pyplot = require_plotting()
    figure = vanishing_gradient_figure(
        {label: state_gradient_norms(layer, x, grad_last_state) for label, layer in layers.items()}
    )
    try:
        with written_atomically(path) as partial:
            figure.savefig(partial, dpi=100)
    finally:
        pyplot.close(figure)
