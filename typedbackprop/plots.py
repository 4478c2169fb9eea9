"""Pictures of training: the loss curve, the decision boundary, the hidden representation.

matplotlib (and pillow, for GIFs) are an optional extra: ``pip install "typedbackprop[plot]"``.
"""

import os
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from typedbackprop.datasets import Dataset
from typedbackprop.nn.network import Dense, forward, predict
from typedbackprop.training import Architecture, History

__all__ = ["require_plotting", "check_image_path", "plot_training", "animate_hidden"]


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
            f'{what}, an optional extra: pip install "typedbackprop[plot]" ({error})'
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
        Before any training time is spent, rather than after.
    """
    target = Path(path)
    if target.suffix.lower() not in suffixes:
        raise ValueError(f"{target}: the file name must end in {' or '.join(suffixes)}")
    if not target.parent.is_dir():
        raise ValueError(f"{target}: there is no directory {target.parent}")


def _class_of(outputs: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    classes: np.ndarray[Any, Any]
    if outputs.shape[0] > 1:
        classes = np.argmax(outputs, axis=0)
    else:
        classes = (outputs[0] > 0.5).astype(int)
    return classes


def _labels(data: Dataset) -> np.ndarray[Any, Any]:
    y = data.y_train
    return y if y.ndim == 1 else (y[0] > 0.5).astype(int)


def plot_training(
    path: str | os.PathLike[str],
    history: History,
    layers: list[Dense],
    architecture: Architecture,
    data: Dataset,
) -> None:
    """Draw the loss per epoch and, for one or two input features, what the network learned.

    Parameters
    ----------
    path
        The image file to write; its ending picks the format (PNG, PDF, SVG, ...).
    history
        The training history.
    layers
        The trained network.
    architecture
        Its activations and loss.
    data
        The data it was trained on.

    Notes
    -----
    The left panel has the training and test loss per epoch (log scale) and the test accuracy.
    For two features the right panel shades the class the network predicts at every point of
    the plane, its decision boundary, under the training points; for one feature it draws the
    network's output against the input.
    """
    pyplot = require_plotting()
    features = data.x_train.shape[0]
    extra = features in (1, 2)
    figure, axes = pyplot.subplots(1, 2 if extra else 1, figsize=(11 if extra else 6, 4.5))
    loss_axis = axes[0] if extra else axes
    epochs = np.arange(1, len(history.loss) + 1)
    loss_axis.plot(epochs, history.loss, label="training loss")
    if history.test_loss:
        loss_axis.plot(epochs, history.test_loss, label="test loss", linestyle="--")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel(architecture.loss)
    if len(history.loss) and min(history.loss) > 0:
        loss_axis.set_yscale("log")
    loss_axis.set_title(f"{data.name} {architecture.describe()}", fontsize=10)
    loss_axis.grid(alpha=0.3)
    handles, names = loss_axis.get_legend_handles_labels()
    legend_axis = loss_axis
    if history.test_accuracy:
        accuracy_axis = loss_axis.twinx()
        accuracy_axis.plot(epochs, history.test_accuracy, color="tab:green", label="test accuracy")
        accuracy_axis.set_ylabel("test accuracy")
        accuracy_axis.set_ylim(0, 1.02)
        more_handles, more_names = accuracy_axis.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
        legend_axis = accuracy_axis  # drawn last, so its legend is not hidden under a curve
    legend_axis.legend(handles, names, loc="center right", framealpha=0.9)
    if features == 2:
        axis = axes[1]
        x = data.x_train
        low, high = x.min(axis=1) - 0.3, x.max(axis=1) + 0.3
        grid_0, grid_1 = np.meshgrid(
            np.linspace(low[0], high[0], 200), np.linspace(low[1], high[1], 200)
        )
        points = np.stack([grid_0.ravel(), grid_1.ravel()])  # (2, points): features first
        outputs = predict(layers, points, architecture.activation, architecture.output_activation)
        axis.contourf(grid_0, grid_1, _class_of(outputs).reshape(grid_0.shape), alpha=0.25)
        axis.scatter(x[0], x[1], c=_labels(data), s=8, cmap="coolwarm")
        axis.set_title("decision boundary (training data)")
        axis.set_xlabel("$x_1$")
        axis.set_ylabel("$x_2$")
    elif features == 1:
        axis = axes[1]
        x = data.x_train
        inputs = np.linspace(x.min() - 0.5, x.max() + 0.5, 400)[np.newaxis, :]  # (1, points)
        outputs = predict(layers, inputs, architecture.activation, architecture.output_activation)
        axis.scatter(x[0], _labels(data), s=6, alpha=0.4, color="tab:gray", label="training data")
        for unit in range(outputs.shape[0]):
            axis.plot(inputs[0], outputs[unit], label=f"output {unit}" if unit else "output")
        axis.set_title("the network's output")
        axis.set_xlabel("$x$")
        axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


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
    one column per example) as points: its units directly when it has two or three (the first
    two of three), the one unit against zero when it has one, and otherwise its first two
    principal components at the end of training, the same projection in every frame. Watching
    the classes pull apart is watching the network make the data linearly separable for its
    output layer.
    """
    pyplot = require_plotting(animation=True)
    from matplotlib.animation import FuncAnimation, PillowWriter

    if len(architecture.sizes) < 3:
        raise ValueError("a network without hidden layers has no hidden representation to draw")
    if not snapshots:
        raise ValueError("no snapshots to animate")
    hidden = [
        forward(layers, data.x_train, architecture.activation, architecture.output_activation)[-2].a
        for layers in snapshots
    ]
    units = hidden[0].shape[0]
    axis_names = ("hidden unit 1", "hidden unit 2")
    if units == 1:
        hidden = [np.vstack([h, np.zeros_like(h)]) for h in hidden]
        axis_names = ("hidden unit 1", "")
    elif units > 3:
        final = hidden[-1] - hidden[-1].mean(axis=1, keepdims=True)
        basis = np.linalg.svd(final, full_matrices=False)[0][:, :2]  # (units, 2)
        hidden = [basis.T @ (h - h.mean(axis=1, keepdims=True)) for h in hidden]
        axis_names = ("principal component 1", "principal component 2")
    captions = labels or [f"snapshot {index}" for index in range(len(hidden))]
    classes = _labels(data)
    figure, axis = pyplot.subplots(figsize=(5, 5))
    scatter = axis.scatter(hidden[0][0], hidden[0][1], c=classes, s=8, cmap="coolwarm")
    low = min(float(h[:2].min()) for h in hidden)
    high = max(float(h[:2].max()) for h in hidden)
    margin = 0.05 * (high - low) + 1e-3
    axis.set_xlim(low - margin, high + margin)
    axis.set_ylim(low - margin, high + margin)
    axis.set_xlabel(axis_names[0])
    axis.set_ylabel(axis_names[1])

    def draw(frame: int) -> tuple[Any]:
        scatter.set_offsets(hidden[frame][:2].T)
        axis.set_title(f"{data.name}: last hidden layer, {captions[frame]}")
        return (scatter,)

    animation = FuncAnimation(figure, draw, frames=len(hidden), blit=False)
    animation.save(os.fspath(path), writer=PillowWriter(fps=8))
    pyplot.close(figure)
