"""Pictures of training: the loss curve, what the network learned, the hidden representation.

matplotlib (and pillow, for GIFs) are an optional extra: ``pip install "typedbackprop[plot]"``.
Every picture colours a class the same way everywhere (points, regions, legends), from one
palette, :func:`class_colours`, and names the classes in a legend.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from typedbackprop.datasets import Dataset
from typedbackprop.nn.network import Dense, forward, predict
from typedbackprop.training import Architecture, History

__all__ = [
    "require_plotting",
    "check_image_path",
    "class_colours",
    "training_figure",
    "plot_training",
    "HiddenAnimation",
    "hidden_animation",
    "animate_hidden",
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


LOG_SCALE_RANGE = 10.0
"""The loss axis is logarithmic when the largest loss is at least this many times the smallest:
a decade or more to show; within less, its ticks read better as plain numbers."""


def _loss_panel(axis: Any, history: History, architecture: Architecture) -> None:
    from matplotlib.ticker import MaxNLocator

    epochs = np.arange(1, len(history.loss) + 1)
    marker = "o" if len(epochs) <= 30 else None  # a few epochs: show each one as a point
    axis.plot(epochs, history.loss, marker=marker, markersize=3, label="training loss")
    if history.test_loss:
        axis.plot(
            epochs, history.test_loss, marker=marker, markersize=3, linestyle="--",
            label="test loss",
        )  # fmt: skip
    axis.set_xlabel("epoch")
    # Epochs are whole numbers: ticks at whole numbers, in steps of 1, 2, 5 or 10 (times 10^k),
    # and half an epoch of room either side of a few (one epoch: the single tick 1).
    axis.xaxis.set_major_locator(MaxNLocator(integer=True, steps=[1, 2, 5, 10], min_n_ticks=1))
    if len(epochs) <= 30:
        axis.set_xlim(0.5, len(epochs) + 0.5)
    axis.set_ylabel(f"{architecture.loss.replace('_', ' ')} (mean per example)")
    losses = history.loss + history.test_loss
    if min(losses) > 0 and max(losses) >= LOG_SCALE_RANGE * min(losses):
        axis.set_yscale("log")
    else:  # within a factor of ten: plain numbers (a log axis would label 1.265×10⁻¹ ...)
        axis.ticklabel_format(axis="y", style="plain", useOffset=False)
    axis.grid(alpha=0.3)
    handles, names = axis.get_legend_handles_labels()
    if history.test_accuracy:
        accuracy_axis = axis.twinx()
        accuracy_axis.plot(
            epochs, history.test_accuracy, marker=marker, markersize=3, color="tab:green",
            label="test accuracy",
        )  # fmt: skip
        accuracy_axis.set_ylabel("test accuracy")
        accuracy_axis.set_ylim(0, 1.02)
        more_handles, more_names = accuracy_axis.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    # Above the panel, so that it covers no curve.
    axis.legend(
        handles, names, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(names),
        frameon=False,
    )  # fmt: skip


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
    axis.legend(loc="best", framealpha=0.9, title="class (region: predicted)")


def _output_panel(
    axis: Any, layers: list[Dense], architecture: Architecture, data: Dataset
) -> None:
    x = data.x_train
    colours = class_colours(data.classes)
    inputs = np.linspace(x.min() - 0.5, x.max() + 0.5, 400)[np.newaxis, :]  # (1, points)
    outputs = predict(layers, inputs, architecture.activation, architecture.output_activation)
    labels = _labels(data.y_train)
    for label in range(data.classes):
        chosen = labels == label
        axis.scatter(
            x[0, chosen], labels[chosen], s=6, alpha=0.5, color=colours[label],
            label=f"training data: {data.class_name(label)}",
        )  # fmt: skip
    for unit in range(outputs.shape[0]):
        name = "network output" + (f" {unit}" if outputs.shape[0] > 1 else "")
        axis.plot(inputs[0], outputs[unit], color="black", linewidth=1.5, label=name)
    axis.set_title("the network's output")
    axis.set_xlabel("$x$")
    axis.set_ylabel("output; target class")
    axis.legend(loc="upper left", framealpha=0.9)


def _confusion_panel(
    axis: Any, layers: list[Dense], architecture: Architecture, data: Dataset
) -> None:
    outputs = predict(layers, data.x_test, architecture.activation, architecture.output_activation)
    predicted, true = _predicted_class(outputs), _labels(data.y_test)
    counts = np.zeros((data.classes, data.classes), dtype=int)
    np.add.at(counts, (true, predicted), 1)
    totals = np.maximum(counts.sum(axis=1, keepdims=True), 1)
    axis.imshow(counts / totals, cmap="Blues", vmin=0, vmax=1)
    small = data.classes > 5
    for (row, column), count in np.ndenumerate(counts):
        if count:
            dark = counts[row, column] / totals[row, 0] > 0.6
            axis.text(
                column, row, str(count), ha="center", va="center",
                fontsize=7 if small else 10, color="white" if dark else "black",
            )  # fmt: skip
    names = [data.class_name(label) for label in range(data.classes)]
    if small:
        axis.set_xticks(range(data.classes), names)
    else:  # a few long names (iris's species): slanted, so that they do not overlap
        axis.set_xticks(range(data.classes), names, rotation=30, ha="right")
    axis.set_yticks(range(data.classes), names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    share = float(np.trace(counts)) / max(int(counts.sum()), 1)
    axis.set_title(f"test set: {int(np.trace(counts))} of {int(counts.sum())} right ({share:.3f})")


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
        One or two panels: the loss per epoch (only if there was an epoch), and what the
        network learned (see :func:`plot_training`).
    """
    pyplot = require_plotting()
    learned = LEARNED_PANELS.get(data.x_train.shape[0], _confusion_panel)
    panels: list[Callable[[Any], None]] = []
    if history.loss:  # nothing trained (a loaded checkpoint): no empty loss panel
        panels.append(lambda axis: _loss_panel(axis, history, architecture))
    panels.append(lambda axis: learned(axis, layers, architecture, data))
    figure, axes = pyplot.subplots(
        1, len(panels), figsize=(5.5 * len(panels), 4.8), layout="constrained", squeeze=False
    )
    figure.suptitle(f"{data.name}: {architecture.describe()}", fontsize=11)
    for axis, panel in zip(axes[0], panels, strict=True):
        panel(axis)
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
    The left panel has the training and test loss per epoch (log scale), the test accuracy,
    and whole-number epochs; with no epoch trained it is left out, rather than drawn empty.
    The right panel shows what the network learned: for two features, the class it predicts
    at every point of the plane (its decision regions, in the colours of the classes' points)
    under the training points; for one feature, its output against the input; otherwise, the
    confusion matrix of the test set (true class against predicted class).
    """
    pyplot = require_plotting()
    figure = training_figure(history, layers, architecture, data)
    figure.savefig(path, dpi=100)
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
    figure = pyplot.figure(figsize=(6, 5.5), layout="constrained")
    axis = figure.add_subplot(projection="3d" if dimensions == 3 else None)
    everything = np.concatenate([c for c in coordinates], axis=1)
    low, high = everything.min(axis=1), everything.max(axis=1)
    margin = 0.05 * (high - low) + 1e-3
    if dimensions == 1:
        # One unit: its value along x, and each class on a row of its own.
        rows = classes + np.random.default_rng(0).uniform(-0.2, 0.2, size=classes.shape)
        scatter = axis.scatter(coordinates[0][0], rows, c=point_colours, s=8)
        axis.set_yticks(range(data.classes), [data.class_name(k) for k in range(data.classes)])
        axis.set_xlim(low[0] - margin[0], high[0] + margin[0])
        axis.set_ylim(-0.5, data.classes - 0.5)
        axis.set_ylabel("class")
    elif dimensions == 2:
        scatter = axis.scatter(coordinates[0][0], coordinates[0][1], c=point_colours, s=8)
        axis.set_xlim(low[0] - margin[0], high[0] + margin[0])
        axis.set_ylim(low[1] - margin[1], high[1] + margin[1])
        axis.set_ylabel(axis_names[1])
    else:
        scatter = axis.scatter(*coordinates[0], c=point_colours, s=6, depthshade=False)
        axis.set_xlim(low[0] - margin[0], high[0] + margin[0])
        axis.set_ylim(low[1] - margin[1], high[1] + margin[1])
        axis.set_zlim(low[2] - margin[2], high[2] + margin[2])
        axis.set_ylabel(axis_names[1])
        axis.set_zlabel(axis_names[2])
        axis.set_box_aspect(None, zoom=0.85)  # room for the third axis's label
        for side in (axis.xaxis, axis.yaxis, axis.zaxis):
            side.set_major_locator(MaxNLocator(5))  # few enough that they never overlap
    axis.set_xlabel(axis_names[0])
    handles = [
        axis.scatter([], [], color=colours[label], s=20, label=data.class_name(label))
        for label in range(data.classes)
    ]
    figure.legend(
        handles=handles, loc="outside right upper", title="class", frameon=False,
    )  # fmt: skip

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
        axis.set_title(
            f"{data.name}: last hidden layer ({plural(hidden[0].shape[0], 'unit')}), "
            f"{captions[frame]}",
            fontsize=10,
        )
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
    layer.
    """
    pyplot = require_plotting(animation=True)
    from matplotlib.animation import FuncAnimation, PillowWriter

    animation = hidden_animation(snapshots, architecture, data, labels)
    movie = FuncAnimation(animation.figure, animation.draw, frames=animation.frames, blit=False)
    movie.save(os.fspath(path), writer=PillowWriter(fps=8))
    pyplot.close(animation.figure)
