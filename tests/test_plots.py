"""Tests for typedbackprop.plots: what each picture draws, read back from the figure."""

import re
from typing import get_args

import matplotlib
import numpy as np
import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.path import Path
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image

from typedbackprop import History, forward, init_layers, load_dataset, train
from typedbackprop import plots as plots_module
from typedbackprop.datasets import Dataset
from typedbackprop.models import Architecture
from typedbackprop.nn.affine import Dense
from typedbackprop.nn.losses import LossName
from typedbackprop.nn.network import ActivationName, OutputActivationName
from typedbackprop.plots import (
    ACTIVATION_WORDS,
    JITTER,
    LOSS_WORDS,
    accuracy_limits,
    animate_hidden,
    class_colours,
    confusion_colours,
    figure_title,
    hidden_animation,
    plot_training,
    robust_limits,
    training_figure,
    written_atomically,
)
from typedbackprop.training import accuracy

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
    loss_axis, accuracy_axis = figure.axes[0], accuracy_panel(figure)
    texts = [text.get_text() for text in loss_axis.get_legend().get_texts()]
    assert texts == ["training loss", "test loss"]
    assert [line.get_label() for line in loss_axis.get_lines()] == texts
    assert [line.get_label() for line in accuracy_axis.get_lines()] == ["test accuracy"]
    assert accuracy_axis.get_ylabel() == "test accuracy"
    assert accuracy_axis.get_xlabel() == "epoch"
    figure.canvas.draw()
    for axis in (loss_axis, accuracy_axis):
        ticks = visible_ticks(axis, "x")
        assert len(ticks) >= 3 and all(float(tick).is_integer() for tick in ticks)


def test_the_accuracy_axis_spans_the_accuracies_reached_not_0_to_1():
    data, architecture, layers, _, _ = trained("circles", (3, 3), 1)
    reached = [0.922, 0.958, 0.953, 0.961, 0.975]  # digits' first epochs, in the issue
    history = History(loss=[0.5, 0.2, 0.1, 0.05, 0.04], test_loss=[0.3, 0.2, 0.2, 0.2, 0.2])
    history.test_accuracy.extend(reached)
    figure = training_figure(history, layers, architecture, data)
    accuracy_axis = accuracy_panel(figure)
    low, high = accuracy_axis.get_ylim()
    assert (low, high) == pytest.approx(accuracy_limits(reached))
    assert low < min(reached) and max(reached) < high
    assert (max(reached) - min(reached)) / (high - low) >= 0.7  # 0.05 on the 0-1 axis
    figure.canvas.draw()
    labels = [
        label.get_text() for label in accuracy_axis.get_yticklabels()
        if low <= label.get_position()[1] <= high
    ]  # fmt: skip
    assert len(labels) >= 3 and all(re.fullmatch(r"9\d%", label) for label in labels), labels


@pytest.mark.parametrize(("reached", "expected"), [
    ([0.5, 1.0], (0.45, 1.0125)),  # at 100%: a quarter margin above, no tick at 105%
    ([0.99, 1.0, 1.0], (0.98, 1.0025)),  # the margin is at least a point in a hundred
    ([0.004, 0.3], (0.0, 0.3296)),  # never below 0
    ([0.6], (0.59, 0.61)),  # one epoch
])  # fmt: skip
def test_accuracy_limits_leave_a_margin_within_0_and_just_above_1(reached, expected):
    assert accuracy_limits(reached) == pytest.approx(expected)


def test_without_test_accuracy_the_loss_panel_carries_the_epoch_label():
    data, architecture, layers, _, _ = trained("circles", (3, 3), 1)
    figure = training_figure(History(loss=[0.3, 0.2, 0.1]), layers, architecture, data)
    assert len(figure.axes) == 2 and figure.axes[0].get_xlabel() == "epoch"


def accuracy_panel(figure):
    """The panel of the test accuracy per epoch."""
    (axis,) = [axis for axis in figure.axes if axis.get_ylabel() == "test accuracy"]
    return axis


def every_text(figure):
    """Every string a reader sees on ``figure``: titles, labels, ticks, legends, annotations."""
    figure.canvas.draw()
    return [text.get_text() for text in figure.findobj(Text) if text.get_text()]


@pytest.mark.parametrize(("name", "hidden", "activation", "output", "loss", "title"), [
    ("digits", (8,), "relu", "softmax", "cross_entropy",
     "Digits: 64 inputs, one hidden layer of 8 ReLU units, 10 softmax outputs; "
     "cross-entropy loss"),
    ("circles", (3, 4), "leaky_relu", "sigmoid", "binary_cross_entropy",
     "Circles: 2 inputs, hidden layers of 3 and 4 leaky ReLU units, 1 sigmoid output; "
     "binary cross-entropy loss"),
    ("step", (5,), "tanh", "identity", "squared_error",
     "Step: 1 input, one hidden layer of 5 tanh units, 1 linear output; squared error loss"),
])  # fmt: skip
def test_the_figure_speaks_plain_words_not_code_names(
    name, hidden, activation, output, loss, title
):
    data, architecture, layers, history, _ = trained(name, hidden, 1, activation, output, loss)
    figure = training_figure(history, layers, architecture, data)
    assert figure_title(architecture, data) == title
    assert figure.get_suptitle() == title
    texts = every_text(figure)
    code_names = [key for key, words in {**ACTIVATION_WORDS, **LOSS_WORDS}.items() if key != words]
    for text in texts:
        assert "_" not in text or text.startswith("$"), text  # $x_1$ is drawn x₁
        assert not any(re.search(rf"\b{code}\b", text) for code in code_names), text
    assert f"{LOSS_WORDS[loss]}\n(mean per example)" in texts


def test_every_activation_and_loss_has_words():
    names = get_args(ActivationName) + get_args(OutputActivationName) + get_args(LossName)
    assert set(names) == set(ACTIVATION_WORDS) | set(LOSS_WORDS)
    none_hidden = Architecture((4, 3), "relu", "softmax", "cross_entropy")
    data = load_dataset("iris", seed=0)
    assert figure_title(none_hidden, data) == (
        "Iris: 4 inputs, no hidden layer, 3 softmax outputs; cross-entropy loss"
    )


def test_no_empty_loss_panel_when_nothing_was_trained():
    data, architecture, layers, _, _ = trained("circles", (3, 3), 2)
    figure = training_figure(History(), layers, architecture, data)
    assert len(figure.axes) == 1  # the decision regions alone
    assert figure.axes[0].get_title() == "decision regions, training data"
    assert not figure.axes[0].get_lines()


def points_box(axis, collections):
    """The bounding box, in pixels, of every point of ``collections`` (scatter plots)."""
    offsets = np.concatenate([collection.get_offsets() for collection in collections])
    pixels = axis.transData.transform(offsets)
    return Bbox([pixels.min(axis=0), pixels.max(axis=0)])


@pytest.mark.parametrize(("name", "hidden"), [("circles", (3, 3)), ("step", (4,))])
def test_the_legend_covers_no_point_and_is_not_cut_off(name, hidden):
    data, architecture, layers, history, _ = trained(name, hidden, 3)
    figure = training_figure(history, layers, architecture, data)
    axis = learned_panel(figure)
    figure.canvas.draw()
    legend = axis.get_legend()
    names = [text.get_text() for text in legend.get_texts()]
    points = [collection for collection in axis.collections if collection.get_label() in names]
    assert sum(len(collection.get_offsets()) for collection in points) == data.x_train.shape[1]
    box = legend.get_window_extent(figure.canvas.get_renderer())
    assert not box.overlaps(points_box(axis, points))
    assert not box.overlaps(axis.bbox)  # nor the line, nor the regions
    assert inside_figure(figure, legend)


def test_the_step_s_output_line_is_drawn_over_faint_jittered_points():
    data, architecture, layers, history, _ = trained("step", (4,), 3)
    axis = learned_panel(training_figure(history, layers, architecture, data))
    (line,) = axis.get_lines()
    labels = data.y_train[0]
    for label, collection in enumerate(axis.collections):
        assert collection.get_zorder() < line.get_zorder()
        assert collection.get_alpha() <= 0.5
        x, y = collection.get_offsets().T
        np.testing.assert_array_equal(x, data.x_train[0, labels == label])
        assert np.all(np.abs(y - label) <= JITTER) and np.ptp(y) > JITTER  # spread, but near
    low, high = axis.get_ylim()
    assert low <= -JITTER and high >= 1 + JITTER


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
    legend = output_axis.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == [
        "x ≤ 0: target 0", "x > 0: target 1", "network output",
    ]  # fmt: skip
    assert legend.get_title().get_text() == f"training data\n(jittered ±{JITTER:g})"


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
    wrong = total - right
    mistakes = "" if not wrong else f"; {wrong} mistake{'' if wrong == 1 else 's'} in red"
    assert matrix.get_title() == f"test set: {right} of {total} right ({share:.1%}){mistakes}"


def confusion_counts(layers, architecture, data):
    """``counts[true, predicted]`` on the test set, from the package's own predictions."""
    from typedbackprop import predict

    outputs = predict(layers, data.x_test, architecture.activation, architecture.output_activation)
    counts = np.zeros((data.classes, data.classes), dtype=int)
    np.add.at(counts, (data.y_test, np.argmax(outputs, axis=0)), 1)
    return counts


def test_the_confusion_matrix_shows_every_mistake_as_large_as_the_rest_and_in_red():
    data, architecture, layers, history, _ = trained(
        "digits", (8,), 1, activation="relu", output="softmax", loss="cross_entropy"
    )
    matrix = learned_panel(training_figure(history, layers, architecture, data))
    counts = confusion_counts(layers, architecture, data)
    mistakes = [
        (row, column) for row, column in zip(*np.nonzero(counts), strict=True) if row != column
    ]
    assert mistakes  # one epoch of 8 hidden units: some digits are confused
    shown = {(round(text.get_position()[1]), round(text.get_position()[0])): text
             for text in matrix.texts}  # fmt: skip
    assert set(shown) == {
        tuple(cell) for cell in zip(*np.nonzero(counts), strict=True)
    }  # every nonzero cell
    for (row, column), text in shown.items():
        assert int(text.get_text()) == counts[row, column]
        assert text.get_fontsize() >= 9  # the 7-point off-diagonal counts, unreadable
    colours = matrix.get_images()[0].get_array()
    for row, column in mistakes:
        red, green, blue, _ = colours[row, column]
        assert red > blue and min(green, blue) < 0.8  # a red, not a near-white square
    for label in range(data.classes):
        red, green, blue, _ = colours[label, label]
        if counts[label, label]:
            assert blue > red
    np.testing.assert_array_equal(colours[counts == 0], 1.0)  # white where nothing fell


def test_confusion_colours_shade_one_mistake_visibly_and_leave_empty_cells_white():
    counts = np.array([[35, 1, 0], [0, 30, 0], [2, 0, 31]])
    colours = confusion_colours(counts)
    assert colours.shape == (3, 3, 4)
    one_in_36, two_in_33 = colours[0, 1], colours[2, 0]
    assert one_in_36[0] > one_in_36[2] and one_in_36[1] < 0.8
    assert two_in_33[1] < one_in_36[1]  # a larger share of mistakes is a deeper red
    np.testing.assert_array_equal(colours[0, 2], [1.0, 1.0, 1.0, 1.0])


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


def test_robust_limits_are_not_stretched_by_a_few_outliers_but_show_a_whole_tail():
    rng = np.random.default_rng(3)
    spread = rng.standard_normal((2, 2000))
    outliers = np.array([[40.0, 55.0, -70.0], [0.0, 30.0, 0.0]])
    low, high = robust_limits(np.concatenate([spread, outliers], axis=1))
    assert np.all(high < 5) and np.all(low > -5)  # the axes, stretched to a third
    assert np.all(low < np.quantile(spread, 0.01, axis=1))
    assert np.all(high > np.quantile(spread, 0.99, axis=1))
    bounded = rng.uniform(0.0, 1.0, size=(3, 500))  # sigmoid units: nothing is left out
    low, high = robust_limits(bounded)
    assert np.all(low < bounded.min(axis=1)) and np.all(high > bounded.max(axis=1))


def hand_made_outliers():
    """Two features drawn as they are (identity hidden layer), three examples far out."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2000))
    x[:, :3] = [[60.0, -45.0, 50.0], [0.0, 35.0, -40.0]]
    labels = (x[0] > 0).astype(float)[np.newaxis, :]
    data = Dataset("outliers", "binary", 2, x, labels, x[:, :7], labels[:, :7])
    architecture = Architecture((2, 2, 1), "identity", "sigmoid", "binary_cross_entropy")
    layers = [Dense(np.eye(2), np.zeros(2)), Dense(np.ones((1, 2)), np.zeros(1))]
    shrunk = [Dense(np.eye(2) / 2, np.zeros(2)), layers[1]]
    return data, architecture, [shrunk, layers]


def test_the_hidden_axes_come_from_robust_limits_and_say_how_many_points_lie_beyond():
    data, architecture, snapshots = hand_made_outliers()
    animation = hidden_animation(snapshots, architecture, data, ["start", "end"])
    axis = animation.figure.axes[0]
    low, high = robust_limits(np.concatenate([data.x_train / 2, data.x_train], axis=1))
    assert axis.get_xlim() == pytest.approx((low[0], high[0]))
    assert axis.get_ylim() == pytest.approx((low[1], high[1]))
    assert high[0] < 10  # not 60: the other 1997 points fill the picture
    for frame, scale in enumerate((0.5, 1.0)):
        animation.draw(frame)
        points = data.x_train * scale
        beyond = np.sum(np.any((points < low[:, None]) | (points > high[:, None]), axis=0))
        title = axis.get_title().splitlines()
        assert title[0] == f"Outliers: the last hidden layer (2 units), {['start', 'end'][frame]}"
        assert title[1:] == [f"{beyond} of 2000 points lie beyond the axes"]
        assert beyond >= 3


def test_no_point_beyond_the_axes_and_the_title_says_nothing_of_it():
    data, architecture, _, _, snapshots = trained("circles", (3, 3), 2)
    animation = hidden_animation(snapshots, architecture, data)
    axis = animation.figure.axes[0]
    for frame in range(animation.frames):
        animation.draw(frame)
        x, y, z = axis.collections[0]._offsets3d
        for values, limits in zip(
            (x, y, z), (axis.get_xlim(), axis.get_ylim(), axis.get_zlim()), strict=True
        ):
            assert limits[0] < np.min(values) and np.max(values) < limits[1]
        assert len(axis.get_title().splitlines()) == 1


def visible_tick_labels(axis, which):
    """The tick labels of a 3-D ``which`` axis as last drawn: inside the limits, with text.

    Read from the ticks themselves: ``get_ticklabels()`` would first move them back to where a
    2-D axis puts them.
    """
    low, high = sorted(getattr(axis, f"get_{which}lim")())
    side = getattr(axis, f"{which}axis")
    return [
        tick.label1 for tick in side.majorTicks
        if low <= tick.get_loc() <= high and tick.label1.get_text()
    ]  # fmt: skip


def text_corners(text, renderer):
    """The corners, in pixels, of the rectangle ``text`` is drawn in, turned as it is drawn.

    ``get_window_extent`` gives the upright box around a turned text, far larger than the
    text when it is turned by 45°: two such boxes overlap where the texts do not.
    """
    rotation = text.get_rotation()
    turned = text.get_window_extent(renderer)
    text.set_rotation(0)
    upright = text.get_window_extent(renderer)
    text.set_rotation(rotation)
    angle = np.deg2rad(rotation)
    half = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [upright.width, upright.height] / 2
    turn = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.array([turned.x0 + turned.x1, turned.y0 + turned.y1]) / 2 + half @ turn.T


def texts_overlap(first, second, renderer):
    one, other = Path(text_corners(first, renderer)), Path(text_corners(second, renderer))
    return one.intersects_path(other, filled=True) or other.intersects_path(one, filled=True)


def cube_box(axis):
    """The box, in pixels, around the eight projected corners of a 3-D axis's cube."""
    from itertools import product

    from mpl_toolkits.mplot3d import proj3d

    corners = np.array(list(product(axis.get_xlim(), axis.get_ylim(), axis.get_zlim()))).T
    x, y, _ = proj3d.proj_transform(*corners, axis.get_proj())
    pixels = axis.transData.transform(np.column_stack([x, y]))
    return Bbox([pixels.min(axis=0), pixels.max(axis=0)])


def test_the_3d_picture_fills_the_figure_and_its_axis_names_touch_no_tick_label_in_any_frame():
    data, architecture, _, _, snapshots = trained("circles", (3, 3), 20)
    animation = hidden_animation(snapshots, architecture, data)
    figure, axis = animation.figure, animation.figure.axes[0]
    renderer = figure.canvas.get_renderer()
    assert animation.frames == 21
    width, height = figure.bbox.width, figure.bbox.height
    for frame in range(animation.frames):
        animation.draw(frame)
        figure.canvas.draw()
        for which in "xyz":
            name = getattr(axis, f"{which}axis").label
            assert inside_figure(figure, name), (frame, which)
            labels = visible_tick_labels(axis, which)
            assert len(labels) >= 3
            for label in labels:
                assert inside_figure(figure, label), (frame, which, label.get_text())
                assert not texts_overlap(name, label, renderer), (frame, which, label.get_text())
        cube = cube_box(axis)  # the issue's: a cube half the figure's height, left of centre
        assert cube.height >= 0.55 * height and cube.width >= 0.45 * width, frame
        assert abs((cube.x0 + cube.x1) / 2 - width / 2) <= 0.08 * width, frame
        legend = figure.legends[0].get_window_extent(renderer)
        title = axis.title.get_window_extent(renderer)
        assert not legend.overlaps(title) and inside_figure(figure, figure.legends[0])
        assert not legend.overlaps(cube) and not title.overlaps(cube)


def test_text_corners_tell_turned_texts_apart_where_their_upright_boxes_overlap():
    figure = pyplot.figure(figsize=(4, 4))
    renderer = figure.canvas.get_renderer()
    slanted = figure.text(0.5, 0.5, "hidden unit 1", rotation=45, ha="center", va="center")
    beside = figure.text(0.58, 0.42, "0.4", ha="center", va="center")
    on_it = figure.text(0.5, 0.5, "0.4", ha="center", va="center")
    assert slanted.get_window_extent(renderer).overlaps(beside.get_window_extent(renderer))
    assert not texts_overlap(slanted, beside, renderer)
    assert texts_overlap(slanted, on_it, renderer)


# --- files are written whole or not at all -----------------------------------------------------


def test_a_file_written_atomically_appears_only_once_whole(tmp_path):
    target = tmp_path / "picture.png"
    with written_atomically(target) as partial:
        assert partial.parent == tmp_path and partial.suffix == ".png" and partial != target
        partial.write_bytes(b"whole")
        assert not target.exists()
    assert target.read_bytes() == b"whole"
    assert list(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize("interruption", [KeyboardInterrupt, OSError])
def test_an_interrupted_write_leaves_neither_the_target_nor_a_temporary_file(
    tmp_path, interruption
):
    target = tmp_path / "picture.gif"
    with pytest.raises(interruption), written_atomically(target) as partial:
        partial.write_bytes(b"GIF89a half")
        raise interruption
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"the previous picture")
    with pytest.raises(interruption), written_atomically(target) as partial:
        partial.write_bytes(b"GIF89a half")
        raise interruption
    assert list(tmp_path.iterdir()) == [target]
    assert target.read_bytes() == b"the previous picture"


def test_ctrl_c_while_the_gif_is_written_leaves_no_gif(tmp_path, monkeypatch):
    data, architecture, _, _, snapshots = trained("circles", (3, 3), 4)
    real = hidden_animation
    drawn = []

    def interrupted(*args, **kwargs):
        animation = real(*args, **kwargs)

        def draw(frame):
            drawn.append(frame)
            if frame == 3:
                raise KeyboardInterrupt  # Ctrl-C after three frames were grabbed
            return animation.draw(frame)

        return plots_module.HiddenAnimation(animation.figure, draw, animation.frames)

    monkeypatch.setattr(plots_module, "hidden_animation", interrupted)
    with pytest.raises(KeyboardInterrupt):
        animate_hidden(tmp_path / "hidden.gif", snapshots, architecture, data)
    assert 3 in drawn
    assert list(tmp_path.iterdir()) == []  # matplotlib had written the 3 frames as a whole GIF
    monkeypatch.setattr(plots_module, "hidden_animation", real)
    animate_hidden(tmp_path / "hidden.gif", snapshots, architecture, data)
    assert [path.name for path in tmp_path.iterdir()] == ["hidden.gif"]
    with Image.open(tmp_path / "hidden.gif") as gif:
        assert gif.n_frames == len(snapshots)


def test_ctrl_c_while_the_plot_is_written_leaves_no_plot(tmp_path, monkeypatch):
    data, architecture, layers, history, _ = trained("circles", (3, 3), 2)
    real = Figure.savefig

    def interrupted(self, path, **kwargs):
        with open(path, "wb") as file:
            file.write(b"\x89PNG half")
        raise KeyboardInterrupt

    monkeypatch.setattr(Figure, "savefig", interrupted)
    with pytest.raises(KeyboardInterrupt):
        plot_training(tmp_path / "plot.png", history, layers, architecture, data)
    assert list(tmp_path.iterdir()) == []
    assert not pyplot.get_fignums()  # the figure is closed all the same
    monkeypatch.setattr(Figure, "savefig", real)
    plot_training(tmp_path / "plot.png", history, layers, architecture, data)
    assert [path.name for path in tmp_path.iterdir()] == ["plot.png"]
    with Image.open(tmp_path / "plot.png") as png:
        assert png.format == "PNG"
