"""Tests for typedbackprop.plots: what each picture draws, read back from the figure."""

import re

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba

from typedbackprop import (
    Architecture,
    History,
    accuracy,
    forward,
    init_layers,
    load_dataset,
    train,
)
from typedbackprop.plots import class_colours, hidden_animation, training_figure

matplotlib.use("Agg")
import matplotlib.pyplot as pyplot  # noqa: E402


@pytest.fixture(autouse=True)
def close_figures():
    yield
    pyplot.close("all")


def trained(name, hidden, epochs, activation="sigmoid", output="sigmoid", loss="squared_error"):
    data = load_dataset(name, seed=0)
    architecture = Architecture(
        (data.x_train.shape[0], *hidden, data.outputs), activation, output, loss
    )
    rng = np.random.default_rng(0)
    layers = init_layers(architecture.sizes, rng)
    snapshots = [layers]
    layers, history = train(
        layers, architecture, data.x_train, data.y_train, epochs=epochs, batch_size=10,
        learning_rate=1.0, momentum=0.9, rng=rng, x_test=data.x_test, y_test=data.y_test,
        on_epoch=lambda epoch, current, history: snapshots.append(current),
    )  # fmt: skip
    return data, architecture, layers, history, snapshots


def learned_panel(figure):
    """The panel of what the network learned: the one with a title (the loss panel has none)."""
    (axis,) = [axis for axis in figure.axes if axis.get_title()]
    return axis


def inside_figure(figure, artist):
    """Whether ``artist`` is drawn wholly inside the figure (not cut off at an edge)."""
    renderer = figure.canvas.get_renderer()
    box = artist.get_window_extent(renderer)
    return box.x0 >= 0 and box.y0 >= 0 and box.x1 <= figure.bbox.x1 and box.y1 <= figure.bbox.y1


def test_the_loss_panel_legend_names_exactly_the_lines_drawn_and_epochs_are_whole():
    data, architecture, layers, history, _ = trained("circles", (3, 3), 10)
    figure = training_figure(history, layers, architecture, data)
    loss_axis = figure.axes[0]
    texts = [text.get_text() for text in loss_axis.get_legend().get_texts()]
    assert texts == ["training loss", "test loss", "test accuracy"]
    drawn = [line.get_label() for axis in figure.axes for line in axis.get_lines()]
    assert sorted(drawn) == sorted(texts)
    figure.canvas.draw()
    low, high = loss_axis.get_xlim()
    ticks = [tick for tick in loss_axis.get_xticks() if low <= tick <= high]
    assert len(ticks) >= 3 and all(float(tick).is_integer() for tick in ticks)


def test_no_empty_loss_panel_when_nothing_was_trained():
    data, architecture, layers, _, _ = trained("circles", (3, 3), 2)
    figure = training_figure(History(), layers, architecture, data)
    assert len(figure.axes) == 1  # the decision regions alone
    assert figure.axes[0].get_title() == "decision regions, training data"
    assert not figure.axes[0].get_lines()


def test_decision_regions_have_the_colours_of_their_classes_points():
    data, architecture, layers, history, _ = trained("circles", (3, 3), 30)
    figure = training_figure(history, layers, architecture, data)
    regions = learned_panel(figure)
    legend = [text.get_text() for text in regions.get_legend().get_texts()]
    assert legend == ["outer circle", "inner circle"]
    filled = regions.collections[0]  # contourf: one band per class, class 0 first
    band_colours = [tuple(colour) for colour in filled.cmap(filled.norm(filled.levels[:-1] + 0.5))]
    points = [collection for collection in regions.collections if collection.get_label() in legend]
    point_colours = [tuple(collection.get_facecolor()[0]) for collection in points]
    assert [colour[:3] for colour in band_colours] == [colour[:3] for colour in point_colours]
    assert point_colours[0][:3] == to_rgba("tab:blue")[:3]
    assert point_colours[1][:3] == to_rgba("tab:red")[:3]


def test_the_step_draws_the_output_against_the_input():
    data, architecture, layers, history, _ = trained("step", (4,), 3)
    figure = training_figure(history, layers, architecture, data)
    output_axis = learned_panel(figure)
    assert [line.get_label() for line in output_axis.get_lines()] == ["network output"]
    legend = [text.get_text() for text in output_axis.get_legend().get_texts()]
    assert legend == ["training data: x ≤ 0", "training data: x > 0", "network output"]


def test_many_features_draw_the_test_confusion_matrix():
    data, architecture, layers, history, _ = trained(
        "iris", (5,), 3, activation="relu", output="softmax", loss="cross_entropy"
    )
    figure = training_figure(history, layers, architecture, data)
    matrix = learned_panel(figure)
    counts = [int(text.get_text()) for text in matrix.texts]
    assert sum(counts) == data.x_test.shape[1]
    assert [label.get_text() for label in matrix.get_yticklabels()] == list(data.class_names)
    share = accuracy(layers, architecture, data.x_test, data.y_test)
    right, total = round(share * data.x_test.shape[1]), data.x_test.shape[1]
    assert matrix.get_title() == f"test set: {right} of {total} right ({share:.3f})"


def test_three_hidden_units_are_drawn_in_three_dimensions():
    data, architecture, _, _, snapshots = trained("circles", (3, 3), 2)
    animation = hidden_animation(snapshots, architecture, data)
    axis = animation.figure.axes[0]
    assert axis.name == "3d" and animation.frames == 3
    for frame in range(animation.frames):
        animation.draw(frame)
        x, y, z = axis.collections[0]._offsets3d
        hidden = forward(snapshots[frame], data.x_train, "sigmoid", "sigmoid")[-2].a
        np.testing.assert_array_equal(np.stack([x, y, z]), hidden)  # every unit, every example
    labels = [axis.get_xlabel(), axis.get_ylabel(), axis.get_zlabel()]
    assert labels == ["hidden unit 1", "hidden unit 2", "hidden unit 3"]


@pytest.mark.parametrize(("hidden", "x_label", "y_label"), [
    ((1,), "hidden unit 1", "class"),
    ((2,), "hidden unit 1", "hidden unit 2"),
    ((4,), "principal component 1", "principal component 2"),
])  # fmt: skip
def test_the_axis_labels_are_never_cut_off(hidden, x_label, y_label):
    data, architecture, _, _, snapshots = trained("step", hidden, 2)
    animation = hidden_animation(snapshots, architecture, data)
    axis = animation.figure.axes[0]
    animation.figure.canvas.draw()
    assert axis.get_xlabel().startswith(x_label) and axis.get_ylabel().startswith(y_label)
    assert inside_figure(animation.figure, axis.xaxis.label)
    assert inside_figure(animation.figure, axis.yaxis.label)
    assert inside_figure(animation.figure, animation.figure.legends[0])


def test_ten_classes_get_ten_colours_and_a_legend():
    data, architecture, _, _, snapshots = trained(
        "digits", (8,), 1, activation="relu", output="softmax", loss="cross_entropy"
    )
    animation = hidden_animation(snapshots, architecture, data)
    legend = animation.figure.legends[0]
    assert [text.get_text() for text in legend.get_texts()] == [str(digit) for digit in range(10)]
    colours = {tuple(np.round(colour, 6)) for colour in class_colours(10)}
    assert len(colours) == 10
    points = animation.figure.axes[0].collections[0].get_facecolors()
    assert {tuple(np.round(colour, 6)) for colour in points} == colours


def test_class_colours_are_blue_and_red_for_two_classes():
    assert [to_rgba(colour) for colour in class_colours(2)] == [
        to_rgba("tab:blue"),
        to_rgba("tab:red"),
    ]


def visible_ticks(axis, which):
    """The tick positions inside the axis's limits (matplotlib also returns some outside)."""
    low, high = getattr(axis, f"get_{which}lim")()
    return [tick for tick in getattr(axis, f"get_{which}ticks")() if low <= tick <= high]


@pytest.mark.parametrize(("epochs", "ticks"), [(1, [1.0]), (2, [1.0, 2.0]), (3, [1.0, 2.0, 3.0])])
def test_a_few_epochs_get_one_whole_number_tick_each(epochs, ticks):
    data, architecture, layers, history, _ = trained("circles", (3, 3), epochs)
    figure = training_figure(history, layers, architecture, data)
    figure.canvas.draw()
    assert visible_ticks(figure.axes[0], "x") == ticks


def test_a_loss_within_a_factor_of_ten_is_on_a_plain_axis_with_plain_labels():
    data, architecture, layers, _, _ = trained("circles", (3, 3), 1)
    history = History(loss=[0.1300], test_loss=[0.1265])  # the one epoch
    figure = training_figure(history, layers, architecture, data)
    figure.canvas.draw()
    axis = figure.axes[0]
    assert axis.get_yscale() == "linear"
    labels = [label.get_text() for label in axis.get_yticklabels() if label.get_text()]
    assert labels and all(re.fullmatch(r"0\.\d+", label) for label in labels), labels
    assert axis.yaxis.get_offset_text().get_text() == ""


def test_a_loss_over_a_decade_or_more_is_on_a_log_axis():
    data, architecture, layers, _, _ = trained("circles", (3, 3), 1)
    history = History(loss=[1.0, 0.3, 0.09], test_loss=[0.9, 0.2, 0.1])
    figure = training_figure(history, layers, architecture, data)
    assert figure.axes[0].get_yscale() == "log"


def test_principal_component_axes_give_each_frame_s_own_share_of_its_variance():
    data, architecture, _, _, snapshots = trained("step", (4,), 3)
    animation = hidden_animation(snapshots, architecture, data)
    axis = animation.figure.axes[0]
    hidden = [forward(layers, data.x_train, "sigmoid", "sigmoid")[-2].a for layers in snapshots]
    final = hidden[-1] - hidden[-1].mean(axis=1, keepdims=True)
    basis = np.linalg.svd(final, full_matrices=False)[0][:, :2]
    pattern = r"principal component (\d) of the last frame \((\d+|<1)% of this frame's variance\)"
    shown = []
    for frame, h in enumerate(hidden):
        animation.draw(frame)
        centred = h - h.mean(axis=1, keepdims=True)
        shares = np.sum((basis.T @ centred) ** 2, axis=1) / np.sum(centred**2)
        for k, label in enumerate([axis.get_xlabel(), axis.get_ylabel()]):
            number, share = re.fullmatch(pattern, label).groups()
            assert int(number) == k + 1
            assert share == ("<1" if 0 < shares[k] < 0.005 else f"{round(100 * shares[k])}")
        shown.append((axis.get_xlabel(), axis.get_ylabel()))
    assert len(set(shown)) > 1  # the shares change as the network trains
