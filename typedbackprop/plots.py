"""Pictures of training: the loss curve, the decision boundary, the hidden representation.

matplotlib (and pillow, for GIFs) are an optional extra: ``pip install "typedbackprop[plot]"``.
"""

import os
from types import ModuleType
from typing import Any

import numpy as np

from typedbackprop.datasets import Dataset
from typedbackprop.network import Dense, forward, predict
from typedbackprop.training import Architecture, History

__all__ = ["plot_training", "animate_hidden"]


def _pyplot() -> ModuleType:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no window, no display needed
        import matplotlib.pyplot as pyplot
    except ImportError as error:
        raise ImportError('plots need matplotlib: pip install "typedbackprop[plot]"') from error
    return pyplot


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
    """Draw the loss per epoch and, for two input features, the learned decision boundary.

    Parameters
    ----------
    path
        The image file to write (PNG).
    history
        The training history.
    layers
        The trained network.
    architecture
        Its activations and loss.
    data
        The data it was trained on.
    """
    pyplot = _pyplot()
    two_d = data.x_train.shape[0] == 2
    figure, axes = pyplot.subplots(1, 2 if two_d else 1, figsize=(11 if two_d else 6, 4.5))
    loss_axis = axes[0] if two_d else axes
    epochs = np.arange(1, len(history.loss) + 1)
    loss_axis.plot(epochs, history.loss, label="training loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel(architecture.loss)
    loss_axis.set_yscale("log")
    loss_axis.set_title(f"{data.name}: loss per epoch")
    loss_axis.grid(alpha=0.3)
    if history.test_accuracy:
        accuracy_axis = loss_axis.twinx()
        accuracy_axis.plot(epochs, history.test_accuracy, color="tab:green", label="test accuracy")
        accuracy_axis.set_ylabel("test accuracy")
        accuracy_axis.set_ylim(0, 1.02)
    if two_d:
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
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def animate_hidden(
    path: str | os.PathLike[str],
    snapshots: list[list[Dense]],
    architecture: Architecture,
    data: Dataset,
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

    Notes
    -----
    Each frame plots the columns of the last hidden activation ``a_{L-1}``, features first, as
    points: its first two units directly when it has two or three, otherwise its first two
    principal components. Watching the classes pull apart is watching the network make the
    data linearly separable for its output layer.
    """
    pyplot = _pyplot()
    from matplotlib.animation import FuncAnimation, PillowWriter

    if len(architecture.sizes) < 3:
        raise ValueError("a network without hidden layers has no hidden representation to draw")
    hidden = [
        forward(layers, data.x_train, architecture.activation, architecture.output_activation)[-2].a
        for layers in snapshots
    ]
    if hidden[0].shape[0] > 3:
        final = hidden[-1] - hidden[-1].mean(axis=1, keepdims=True)
        basis = np.linalg.svd(final, full_matrices=False)[0][:, :2]  # (units, 2)
        hidden = [basis.T @ (h - h.mean(axis=1, keepdims=True)) for h in hidden]
    labels = _labels(data)
    figure, axis = pyplot.subplots(figsize=(5, 5))
    scatter = axis.scatter(hidden[0][0], hidden[0][1], c=labels, s=8, cmap="coolwarm")
    low = min(float(h[:2].min()) for h in hidden)
    high = max(float(h[:2].max()) for h in hidden)
    margin = 0.05 * (high - low + 1e-12)
    axis.set_xlim(low - margin, high + margin)
    axis.set_ylim(low - margin, high + margin)
    axis.set_xlabel("hidden unit 1")
    axis.set_ylabel("hidden unit 2")

    def draw(frame: int) -> tuple[Any]:
        scatter.set_offsets(hidden[frame][:2].T)
        axis.set_title(f"{data.name}: last hidden layer, snapshot {frame}/{len(hidden) - 1}")
        return (scatter,)

    animation = FuncAnimation(figure, draw, frames=len(hidden), blit=False)
    animation.save(os.fspath(path), writer=PillowWriter(fps=8))
    pyplot.close(figure)
